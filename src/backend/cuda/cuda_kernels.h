// The CUDA kernels' host-side launchers: plain functions over raw device pointers, so the
// .cu files (nvcc, C++17) need no project headers and the backend class (g++, C++20) needs
// no CUDA device code. Each launcher enqueues on the default stream and returns
// cudaGetLastError() of the launch; the caller checks it (execution errors surface at the
// next synchronising call, which is checked too).
//
// Letters as in backend/backend.h. Every kernel follows the CPU reference of the same name in
// backend/cpu/kernels_*.h; activations are fp32 or bf16 in memory, arithmetic is fp32.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace lorafit::cuda {

// Element types the kernels read/write. Activations: F32, BF16; weights: F32, BF16, F16.
enum class ET : int { F32 = 0, BF16 = 1, F16 = 2 };

// Attention head dims up to this run on CUDA (the shared-memory tiles are sized for it).
constexpr int64_t kMaxHeadDim = 128;
// RoPE inverse frequencies travel as a kernel argument (D/2 ≤ kMaxHeadDim), with the factor
// cos and sin are multiplied by (yarn's attention factor; 1 otherwise).
struct RopeFreqs {
  float inv_freq[kMaxHeadDim];
  float attention_scaling;
};
// torch AdamW's scalars, precomputed on the host exactly as cpu::adamw_kernel does.
struct AdamWScalars {
  float step_size, bc2_sqrt, decay, w1, b2, w2, eps;
  int apply_decay;
};
// Attention geometry: q/out (B,Tq,H,D); k/v (B,S,Hkv,D) with S ≥ p0 + Tq; query t sits at
// position p0 + t. The training forward is Tq = S, p0 = 0; decode reads a cache of capacity S.
struct AttnShape {
  int64_t B, Tq, S, H, Hkv, D, p0;
};

// ---- 4-bit dequantization (kernels_quant.cu) ----
// out (n) F32 or BF16 = code4[q_i] · absmax(i/64); nested != null: absmax is (nb) U8 codes and
// absmax(b) = code8[q8_b]·nested[b/256] + offset, else (nb) F32. formats/quant4.h's layout.
cudaError_t dequantize_4bit(void* out, ET ot, const uint8_t* packed, const void* absmax, const float* nested,
                            const float* code4, const float* code8, float offset, int64_t n);

// ---- DoRA (kernels_dora.cu; backend.h "DoRA", cpu/backend_dora.cpp) ----
// n (R) = ‖w_r + s·ba_r‖ per row of w (R,I) and ba (R,I) F32; bf16_lora: w + bf16(s·bf16(ba)).
cudaError_t dora_norm(float* n, const void* w, ET wt, const float* ba, float s, bool bf16_lora, int64_t R, int64_t I);
// y (N,O) += the DoRA terms from t1, t2 (N,O) of y's type, c = m/n (O).
cudaError_t dora_combine(void* y, const void* t1, const void* t2, ET at, const float* m, const float* n, float s,
                         int64_t N, int64_t O);
// dm (O) += its gradient; a, b (N,O) rewritten as the scaled gradients (backend.h).
cudaError_t dora_backward_scale(float* dm, void* a, void* b, const void* dy, ET at, const float* m, const float* n,
                                float s, int64_t N, int64_t O);

// ---- elementwise / row kernels (kernels_rows.cu) ----
cudaError_t convert(void* dst, ET dt, const void* src, ET st, int64_t n);
// *first_bad (device int, preset to n by the caller) = lowest i with v[i] ∉ [0, hi) (−100 is
// allowed when allow_ignore).
cudaError_t first_out_of_range(int* first_bad, const int32_t* v, int64_t n, int32_t hi, bool allow_ignore);
cudaError_t embedding_forward(void* out, ET at, const int32_t* ids, const void* table, ET wt, int64_t N, int64_t C);
cudaError_t rmsnorm_forward(void* out, float* rstd, const void* x, ET at, const void* w, ET wt, int64_t N,
                            int64_t C, float eps);
cudaError_t rmsnorm_backward(void* dx, const void* dout, const void* x, ET at, const void* w, ET wt,
                             const float* rstd, int64_t N, int64_t C);
cudaError_t add_bias(void* out, ET at, const void* bias, ET wt, int64_t N, int64_t O);
cudaError_t bias_grad(float* dbias, const void* dout, ET at, int64_t N, int64_t O);
cudaError_t rope_rotate(void* x, ET at, const int32_t* pos, int64_t N, int64_t H, int64_t D, const RopeFreqs& f,
                        int sign);
cudaError_t swiglu_forward(void* out, const void* gate, const void* up, ET at, int64_t n);
cudaError_t swiglu_backward(void* dgate, void* dup, const void* dout, const void* gate, const void* up, ET at,
                            int64_t n);
cudaError_t add(void* out, const void* a, const void* b, ET at, int64_t n);
cudaError_t scale(void* x, ET at, float s, int64_t n);
cudaError_t dropout(void* out, const void* x, ET at, float p, float inv_keep, uint64_t seed, int64_t n);
cudaError_t adamw(float* p, const float* g, float* m, float* v, int64_t n, AdamWScalars s);
// *result (device double) = Σ x²; partials: kSumSquaresBlocks device doubles of scratch.
constexpr int kSumSquaresBlocks = 256;
cudaError_t sum_squares(double* result, double* partials, const float* x, int64_t n);

// ---- fused lm-head + cross-entropy pieces (kernels_rows.cu) ----
// run_max/run_sum (N) double: the online log-sum-exp state; zt (N) F32 the target's logit.
cudaError_t ce_init(double* run_max, double* run_sum, float* zt, int64_t N);
// Folds one chunk of logits (N, nc) F32 (vocabulary rows [v0, v0+nc)) into the state.
cudaError_t ce_chunk_stats(double* run_max, double* run_sum, float* zt, const float* logits,
                           const int32_t* targets, int64_t N, int64_t nc, int64_t v0);
cudaError_t ce_finish(float* loss, float* lse, const double* run_max, const double* run_sum, const float* zt,
                      const int32_t* targets, int64_t N);
// dlogits (N, nc) of type dt = dloss·(softmax − onehot), 0 for ignored rows; may alias logits when dt is F32.
cudaError_t ce_dlogits(void* dlogits, ET dt, const float* logits, const float* dloss, const float* lse,
                       const int32_t* targets, int64_t N, int64_t nc, int64_t v0);

// ---- attention (kernels_attention.cu) ----
// out (B,Tq,H,D), lse (B,H,Tq) F32 or null, seg (B,S) or null (only with Tq = S, p0 = 0).
cudaError_t attention_forward(void* out, float* lse, const void* q, const void* k, const void* v,
                              const int32_t* seg, ET at, AttnShape s);
// Tq = S = T, p0 = 0. delta: (B,H,T) F32 scratch. dq/dk/dv overwritten.
cudaError_t attention_backward(void* dq, void* dk, void* dv, const void* dout, const void* q, const void* k,
                               const void* v, const void* out, const float* lse, const int32_t* seg,
                               float* delta, ET at, AttnShape s);

}  // namespace lorafit::cuda
