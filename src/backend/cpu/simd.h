// The CPU backend's vectorized loops (Highway, runtime dispatch: one build runs the best of
// SSE4 / AVX2 / AVX-512 the CPU has). Each function has a plain scalar reference — the
// templated kernels in kernels_*.h or the inline reference loops in tests/unit/test_backend_simd.cpp —
// and the test states whether the two are equal exactly (same operations in the same order)
// or within a bound derived from the operations that differ (the vector exp, a summation order).
// All pointers are dense arrays; n counts elements.
#pragma once
#include <cstdint>
#include <string>

namespace lorafit::cpu {

// Exact conversions: bf16/f16 → fp32 widen; fp32 → bf16 rounds to nearest even, NaN → quiet NaN
// (bit for bit tensor/dtype.h's f32_to_bf16).
void convert_bf16_to_f32(float* dst, const uint16_t* src, int64_t n);
void convert_f16_to_f32(float* dst, const uint16_t* src, int64_t n);
void convert_f32_to_bf16(uint16_t* dst, const float* src, int64_t n);

// out = silu(gate) · up, silu(g) = g / (1 + e^-g), with a vector exp (≤ 1 ulp).
void swiglu_forward_f32(float* out, const float* gate, const float* up, int64_t n);
// dgate = dout·up·σ(g)·(1 + g·(1 − σ(g))), dup = dout·silu(g), as cpu::swiglu_backward_kernel.
void swiglu_backward_f32(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);

// bf16 elementwise ops, exactly the scalar widen-compute-round (one rounding each), in parallel:
// x ← bf16(x·s) (zeros when s = 0); out = bf16(a + b) (out may alias a or b).
void scale_bf16(uint16_t* x, int64_t n, float s);
void add_bf16(uint16_t* out, const uint16_t* a, const uint16_t* b, int64_t n);

// One position of the bf16 rotary embedding over H heads of D elements, with that position's
// bf16 cos/sin (D/2 each): x1' = bf16(bf16(x1·c) − bf16(x2·s)), x2' = bf16(bf16(x2·c) + bf16(x1·s))
// for sign > 0, the transposed rotation (+, −) otherwise; exactly the scalar loop.
void rope_row_bf16(uint16_t* x, int64_t H, int64_t D, const float* c, const float* s, int sign);

// The bf16 activation path's SwiGLU and its backward (backend.h's "bf16:" lines): inputs widened
// exactly, fp32 arithmetic with the vector exp (≤ 1 ulp), rounded to bf16 where torch rounds.
void swiglu_forward_bf16(uint16_t* out, const uint16_t* gate, const uint16_t* up, int64_t n);
void swiglu_backward_bf16(uint16_t* dgate, uint16_t* dup, const uint16_t* dout, const uint16_t* gate,
                          const uint16_t* up, int64_t n);

// The bf16 attention's per-query kernels, each equal bit for bit to the scalar loop it replaces
// (products of widened bf16 are exact in fp32, and every sum runs in the scalar order):
// p[s] = scale · Σ_d q[d]·kt[d·ldkt + s] for n keys stored transposed (fp32, D rows), kt's rows
// zero-padded to a multiple of kAttnKeyPad columns (ldkt ≥ that) and p with room for as many;
// acc (D) = Σ_s w[s]·v_s over n bf16 rows v_s = v + s·ld in key order, rows with w[s] == 0 skipped.
constexpr int64_t kAttnKeyPad = 64;  // floats: four vectors of the widest target
inline int64_t attn_key_pad(int64_t n) { return (n + kAttnKeyPad - 1) / kAttnKeyPad * kAttnKeyPad; }
void attn_scores_t(float* p, const float* q, const float* kt, int64_t ldkt, int64_t n, int64_t D, float scale);
void attn_weighted_sum_bf16(float* acc, const float* w, const uint16_t* v, int64_t ld, int64_t n, int64_t D);

// One row of RMSNorm: r = 1/sqrt(Σx²/C + eps) with Σx² in double, out = w·(x·r) in fp32; returns r.
float rmsnorm_row_f32(float* out, const float* x, const float* w, int64_t C, float eps);

// z[i] ← exp(z[i] − m) in place; returns Σ of the new z[i] in double.
double exp_shift_sum_f32(float* z, int64_t n, float m);
// Σ exp(z[i] − m) in double; z unchanged.
double sum_exp_f32(const float* z, int64_t n, float m);
// z[i] ← s · exp(z[i] − m) in place.
void exp_shift_scale_f32(float* z, int64_t n, float m, float s);

// Σ x² in double.
double sum_squares_f32(const float* x, int64_t n);

// torch's single-tensor AdamW step in fp32, operation for operation as cpu::adamw_kernel
// (so equal to it bit for bit): the scalars are those the kernel derives from AdamWParams.
struct AdamWScalars {
  float step_size, bc2_sqrt, decay, w1, b2, w2, eps;
  bool decay_on;
};
void adamw_f32(float* p, const float* g, float* m, float* v, int64_t n, const AdamWScalars& s);

// y (M, O) = alpha · x (M, I) · W (O, I)ᵀ + beta · y for a few rows (M ≤ kMatvecRows, batch-1
// decode): each weight row is read once for all M rows and never converted to a buffer.
// W is fp32 or bf16 (w_bf16); x and y are fp32. Products and sums in fp32 (FMA), in lanes.
constexpr int64_t kMatvecRows = 4;
void matvec_f32(float* y, const float* x, const void* W, bool w_bf16, int64_t M, int64_t O, int64_t I, float alpha,
                float beta);

// The bf16 activation path's decode GEMV: y (M, O) = alpha · x (M, I) · W (O, I)ᵀ + beta · y with
// bf16 x and W, M ≤ kMatvecRows. Where the CPU has AVX512-BF16 it runs vdpbf16ps (bf16 × bf16
// products are exact in fp32; each instruction adds two products per fp32 lane, rounding after
// each, bf16 denormals read as zero); elsewhere x and W are widened to fp32 (exactly) and summed
// by FMA. y is fp32, or bf16 (y_bf16) rounded once at the end.
void matvec_bf16(void* y, bool y_bf16, const uint16_t* x, const uint16_t* W, int64_t M, int64_t O, int64_t I,
                 float alpha, float beta);
// Whether matvec_bf16 uses vdpbf16ps on this CPU (cpuid: AVX512F + AVX512_BF16 with ZMM state
// enabled by the OS). set_bf16_dot_for_test(false) forces the fallback.
bool cpu_has_bf16_dot();
void set_bf16_dot_for_test(bool on);

// The Highway target the dispatch chose on this CPU ("AVX3", "AVX2", "SSE4", ...).
std::string simd_target_name();

}  // namespace lorafit::cpu
