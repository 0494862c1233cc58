// Highway implementations of simd.h, compiled once per x86 target (foreach_target.h re-includes
// this file) and chosen at run time by HWY_DYNAMIC_DISPATCH from the CPU's features.
// Every loop is the scalar reference's arithmetic, vectorized: the same operations in the same
// order per element, except where simd.h says otherwise (vector exp, double sums in lanes).
// Compiled with -ffp-contract=off (CMakeLists.txt): GCC would otherwise fuse a Mul and an Add
// into one FMA on AVX2 targets and the results would no longer equal the scalar loop's.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/simd.h"
#include "tensor/dtype.h"

HWY_BEFORE_NAMESPACE();
namespace lorafit::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DU32 = hn::RebindToUnsigned<DF>;
using DI32 = hn::RebindToSigned<DF>;
using DU16 = hn::Rebind<uint16_t, DF>;  // as many u16 lanes as DF has floats
using DD = hn::ScalableTag<double>;
using DFH = hn::Rebind<float, DD>;  // as many floats as DD has doubles

// Elements per parallel chunk of the elementwise loops: big enough that the OpenMP overhead
// is small, a multiple of every vector width. A loop of one chunk runs on the calling thread
// (`if (n > kChunk)`): waking the team costs more than it saves there (a decode step's ops).
constexpr int64_t kChunk = 16384;

HWY_INLINE hn::Vec<DF> load_bf16(DF d, const uint16_t* p) {
  return hn::BitCast(d, hn::ShiftLeft<16>(hn::PromoteTo(DU32(), hn::LoadU(DU16(), p))));
}

void Bf16ToF32(float* dst, const uint16_t* src, int64_t n) {
  const DF d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(load_bf16(d, src + i), d, dst + i);
  for (; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

// Vectorized where the target has the F16C conversion instructions (AVX2 and up); Highway's
// emulation on older targets turns f16 inf/NaN into finite values, so those use the scalar loop.
void F16ToF32(float* dst, const uint16_t* src, int64_t n) {
  int64_t i = 0;
#if HWY_TARGET <= HWY_AVX2
  const DF d;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  for (; i + L <= n; i += L)
    hn::StoreU(hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(src) + i)), d, dst + i);
#endif
  for (; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

// The bf16 bits (≤ 0xffff, in u32 lanes) of v rounded to nearest even, as f32_to_bf16:
// u + 0x7fff + lsb, NaN → (u >> 16) | 0x40.
HWY_INLINE hn::Vec<DU32> bf16_bits(hn::Vec<DF> v) {
  const DU32 du;
  const DI32 di;
  const auto u = hn::BitCast(du, v);
  const auto is_nan = hn::Gt(hn::BitCast(di, hn::And(u, hn::Set(du, 0x7fffffffu))),
                             hn::BitCast(di, hn::Set(du, 0x7f800000u)));  // both ≥ 0: signed compare is exact
  const auto lsb = hn::And(hn::ShiftRight<16>(u), hn::Set(du, 1u));
  const auto rounded = hn::ShiftRight<16>(hn::Add(u, hn::Add(hn::Set(du, 0x7fffu), lsb)));
  const auto nan = hn::Or(hn::ShiftRight<16>(u), hn::Set(du, 0x40u));
  return hn::IfThenElse(hn::RebindMask(du, is_nan), nan, rounded);
}
// v rounded to bf16 and widened back: bf16_to_f32(f32_to_bf16(v)) per lane.
HWY_INLINE hn::Vec<DF> round_bf16(DF d, hn::Vec<DF> v) { return hn::BitCast(d, hn::ShiftLeft<16>(bf16_bits(v))); }
HWY_INLINE void store_bf16(hn::Vec<DF> v, uint16_t* p) {
  hn::StoreU(hn::DemoteTo(DU16(), hn::BitCast(DI32(), bf16_bits(v))), DU16(), p);
}

void F32ToBf16(uint16_t* dst, const float* src, int64_t n) {
  const DF d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + L <= n; i += L) store_bf16(hn::LoadU(d, src + i), dst + i);
  for (; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

// Runs body(i, n_valid) over [i0, i1) one vector at a time; the last partial vector goes through
// the same body on zero-padded copies (tail_in/tail_out), so every element, wherever it sits in
// the array, gets the same vector arithmetic (a packed sample's rows must equal the sample alone).
constexpr size_t kMaxFloats = HWY_MAX_BYTES / sizeof(float);

template <class Body>
HWY_INLINE void for_vectors(int64_t i0, int64_t i1, int64_t L, Body&& body) {
  int64_t i = i0;
  for (; i + L <= i1; i += L) body(i, L);
  if (i < i1) body(i, i1 - i);
}

// Loads n ≤ Lanes(d) floats from p (zeros beyond n); stores n lanes of v to p.
HWY_INLINE hn::Vec<DF> load_n(DF d, const float* p, int64_t n) {
  if (n == static_cast<int64_t>(hn::Lanes(d))) return hn::LoadU(d, p);
  HWY_ALIGN float buf[kMaxFloats] = {};
  std::copy(p, p + n, buf);
  return hn::Load(d, buf);
}
HWY_INLINE void store_n(DF d, hn::Vec<DF> v, float* p, int64_t n) {
  if (n == static_cast<int64_t>(hn::Lanes(d))) return hn::StoreU(v, d, p);
  HWY_ALIGN float buf[kMaxFloats];
  hn::Store(v, d, buf);
  std::copy(buf, buf + n, p);
}

// Loads n ≤ Lanes(d) bf16 values from p widened (zeros beyond n); stores n lanes of v rounded to bf16.
HWY_INLINE hn::Vec<DF> load_bf16_n(DF d, const uint16_t* p, int64_t n) {
  if (n == static_cast<int64_t>(hn::Lanes(d))) return load_bf16(d, p);
  HWY_ALIGN uint16_t buf[kMaxFloats] = {};
  std::copy(p, p + n, buf);
  return load_bf16(d, buf);
}
HWY_INLINE void store_bf16_n(DF d, hn::Vec<DF> v, uint16_t* p, int64_t n) {
  if (n == static_cast<int64_t>(hn::Lanes(d))) return store_bf16(v, p);
  HWY_ALIGN uint16_t buf[kMaxFloats];
  store_bf16(v, buf);
  std::copy(buf, buf + n, p);
}

// exp with the argument clamped to ≤ 100: Highway's Exp is specified up to 104 and exp(100)
// already overflows fp32 to +inf, as std::exp does.
HWY_INLINE hn::Vec<DF> exp_clamped(DF d, hn::Vec<DF> x) { return hn::Exp(d, hn::Min(x, hn::Set(d, 100.f))); }

void SwigluForward(float* out, const float* gate, const float* up, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kChunk)
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const DF d;
    const auto one = hn::Set(d, 1.f);
    for_vectors(c0, std::min(n, c0 + kChunk), static_cast<int64_t>(hn::Lanes(d)), [&](int64_t i, int64_t k) {
      const auto g = load_n(d, gate + i, k);
      const auto e = exp_clamped(d, hn::Neg(g));
      store_n(d, hn::Mul(hn::Div(g, hn::Add(one, e)), load_n(d, up + i, k)), out + i, k);  // g/(1+e)·up
    });
  }
}

void SwigluBackward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kChunk)
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const DF d;
    const auto one = hn::Set(d, 1.f);
    for_vectors(c0, std::min(n, c0 + kChunk), static_cast<int64_t>(hn::Lanes(d)), [&](int64_t i, int64_t k) {
      const auto gv = load_n(d, gate + i, k), go = load_n(d, dout + i, k), u = load_n(d, up + i, k);
      const auto sig = hn::Div(one, hn::Add(one, exp_clamped(d, hn::Neg(gv))));
      const auto du = hn::Mul(go, hn::Mul(gv, sig));
      // go·up·sig·(1 + g·(1 − sig)), left to right as the reference
      const auto dg = hn::Mul(hn::Mul(hn::Mul(go, u), sig), hn::Add(one, hn::Mul(gv, hn::Sub(one, sig))));
      store_n(d, dg, dgate + i, k);
      store_n(d, du, dup + i, k);
    });
  }
}

// x ← bf16(x · s) (s = 0: zeros), as the scalar loop of cpu_bf16::scale.
void ScaleBf16(uint16_t* x, int64_t n, float s) {
#pragma omp parallel for schedule(static) if (n > kChunk)
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const DF d;
    const int64_t c1 = std::min(n, c0 + kChunk);
    if (s == 0.f) {
      std::fill(x + c0, x + c1, uint16_t{0});
      continue;
    }
    const auto sv = hn::Set(d, s);
    for_vectors(c0, c1, static_cast<int64_t>(hn::Lanes(d)), [&](int64_t i, int64_t k) {
      store_bf16_n(d, hn::Mul(load_bf16_n(d, x + i, k), sv), x + i, k);
    });
  }
}

// out = bf16(a + b) for bf16 a, b (out may alias either): the widen-add-round of cpu_bf16::add.
void AddBf16(uint16_t* out, const uint16_t* a, const uint16_t* b, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kChunk)
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const DF d;
    for_vectors(c0, std::min(n, c0 + kChunk), static_cast<int64_t>(hn::Lanes(d)), [&](int64_t i, int64_t k) {
      store_bf16_n(d, hn::Add(load_bf16_n(d, a + i, k), load_bf16_n(d, b + i, k)), out + i, k);
    });
  }
}

// One position's rotary embedding in bf16 over H heads of D (cpu_bf16::rope): with bf16 c, s
// (half values each), x1' = bf16(bf16(x1·c) ∓ bf16(x2·s)), x2' = bf16(bf16(x2·c) ± bf16(x1·s)),
// upper signs for sign > 0 (the forward), lower for the backward: the scalar loop's operations.
void RopeRowBf16(uint16_t* x, int64_t H, int64_t D, const float* c, const float* s, int sign) {
  const DF d;
  const int64_t half = D / 2;
  for (int64_t h = 0; h < H; ++h) {
    uint16_t* xh = x + h * D;  // (D)
    for_vectors(0, half, static_cast<int64_t>(hn::Lanes(d)), [&](int64_t i, int64_t m) {
      const auto x1 = load_bf16_n(d, xh + i, m), x2 = load_bf16_n(d, xh + half + i, m);
      const auto cv = load_n(d, c + i, m), sv = load_n(d, s + i, m);
      const auto x1c = round_bf16(d, hn::Mul(x1, cv)), x2s = round_bf16(d, hn::Mul(x2, sv));
      const auto x2c = round_bf16(d, hn::Mul(x2, cv)), x1s = round_bf16(d, hn::Mul(x1, sv));
      store_bf16_n(d, sign > 0 ? hn::Sub(x1c, x2s) : hn::Add(x1c, x2s), xh + i, m);
      store_bf16_n(d, sign > 0 ? hn::Add(x2c, x1s) : hn::Sub(x2c, x1s), xh + half + i, m);
    });
  }
}

// The bf16 path's SwiGLU (cpu_bf16::swiglu_forward): out = bf16(bf16(silu(g)) · up), silu(g) =
// g / (1 + e^-g) in fp32 with the vector exp.
void SwigluForwardBf16(uint16_t* out, const uint16_t* gate, const uint16_t* up, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kChunk)
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const DF d;
    const auto one = hn::Set(d, 1.f);
    for_vectors(c0, std::min(n, c0 + kChunk), static_cast<int64_t>(hn::Lanes(d)), [&](int64_t i, int64_t k) {
      const auto g = load_bf16_n(d, gate + i, k);
      const auto a = round_bf16(d, hn::Div(g, hn::Add(one, exp_clamped(d, hn::Neg(g)))));
      store_bf16_n(d, hn::Mul(a, load_bf16_n(d, up + i, k)), out + i, k);
    });
  }
}

// Its backward (cpu_bf16::swiglu_backward): a = bf16(silu(g)), dup = bf16(dout·a),
// dgate = bf16(bf16(dout·up) · σ(g) · (1 + g·(1 − σ(g)))), left to right.
void SwigluBackwardBf16(uint16_t* dgate, uint16_t* dup, const uint16_t* dout, const uint16_t* gate, const uint16_t* up,
                        int64_t n) {
#pragma omp parallel for schedule(static) if (n > kChunk)
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const DF d;
    const auto one = hn::Set(d, 1.f);
    for_vectors(c0, std::min(n, c0 + kChunk), static_cast<int64_t>(hn::Lanes(d)), [&](int64_t i, int64_t k) {
      const auto g = load_bf16_n(d, gate + i, k), go = load_bf16_n(d, dout + i, k), u = load_bf16_n(d, up + i, k);
      const auto e1 = hn::Add(one, exp_clamped(d, hn::Neg(g)));
      const auto sig = hn::Div(one, e1), a = round_bf16(d, hn::Div(g, e1));
      const auto d_act = round_bf16(d, hn::Mul(go, u));
      store_bf16_n(d, hn::Mul(go, a), dup + i, k);
      store_bf16_n(d, hn::Mul(hn::Mul(d_act, sig), hn::Add(one, hn::Mul(g, hn::Sub(one, sig)))), dgate + i, k);
    });
  }
}

// Attention scores of one query against n keys stored transposed (kt (D, ldkt) floats, widened
// bf16, zero-padded to kAttnKeyPad columns): p[s] = scale · Σ_d q[d]·kt[d][s]. Lanes run across
// keys and each key's sum runs over d in order, with exact products (q and k are widened bf16):
// every score is bit for bit the scalar loop `dot += q[d]·k[d]; p = dot·scale`. Whole blocks of
// four vectors (four add chains hide the add latency); the pad makes the last block whole too.
void AttnScoresT(float* p, const float* q, const float* kt, int64_t ldkt, int64_t n, int64_t D, float scale) {
  const DF d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  static_assert(kAttnKeyPad % (4 * HWY_MAX_BYTES / 4) == 0, "a pad of whole four-vector blocks");
  const auto sv = hn::Set(d, scale);
  for (int64_t s = 0; s < n; s += 4 * L) {
    auto a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t e = 0; e < D; ++e) {
      const auto qe = hn::Set(d, q[e]);
      const float* row = kt + e * ldkt + s;
      a0 = hn::Add(a0, hn::Mul(qe, hn::LoadU(d, row)));
      a1 = hn::Add(a1, hn::Mul(qe, hn::LoadU(d, row + L)));
      a2 = hn::Add(a2, hn::Mul(qe, hn::LoadU(d, row + 2 * L)));
      a3 = hn::Add(a3, hn::Mul(qe, hn::LoadU(d, row + 3 * L)));
    }
    hn::StoreU(hn::Mul(a0, sv), d, p + s);
    hn::StoreU(hn::Mul(a1, sv), d, p + s + L);
    hn::StoreU(hn::Mul(a2, sv), d, p + s + 2 * L);
    hn::StoreU(hn::Mul(a3, sv), d, p + s + 3 * L);
  }
}

// acc (D) = Σ_s w[s] · v_s over n bf16 rows at row stride ld, in row order; rows with w[s] == 0
// are skipped (as masked keys). w is bf16-rounded, so each product is exact and the fused
// multiply-add equals the scalar loop's multiply, then add: the result is the scalar loop's.
void AttnWeightedSumBf16(float* acc, const float* w, const uint16_t* v, int64_t ld, int64_t n, int64_t D) {
  const DF d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  // Columns [c, c + 4L) of acc stay in registers over all rows; the rest one vector at a time.
  int64_t c = 0;
  for (; c + 4 * L <= D; c += 4 * L) {
    auto a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t s = 0; s < n; ++s) {
      if (w[s] == 0.f) continue;
      const uint16_t* vs = v + s * ld + c;
      const auto ws = hn::Set(d, w[s]);
      a0 = hn::MulAdd(ws, load_bf16(d, vs), a0);
      a1 = hn::MulAdd(ws, load_bf16(d, vs + L), a1);
      a2 = hn::MulAdd(ws, load_bf16(d, vs + 2 * L), a2);
      a3 = hn::MulAdd(ws, load_bf16(d, vs + 3 * L), a3);
    }
    hn::StoreU(a0, d, acc + c);
    hn::StoreU(a1, d, acc + c + L);
    hn::StoreU(a2, d, acc + c + 2 * L);
    hn::StoreU(a3, d, acc + c + 3 * L);
  }
  for_vectors(c, D, L, [&](int64_t i, int64_t m) {
    auto a = hn::Zero(d);
    for (int64_t s = 0; s < n; ++s)
      if (w[s] != 0.f) a = hn::MulAdd(hn::Set(d, w[s]), load_bf16_n(d, v + s * ld + i, m), a);
    store_n(d, a, acc + i, m);
  });
}

// Σ x² in double lanes (x widened exactly, squares exact in double).
double SumSquaresSerial(const float* x, int64_t n) {
  const DD dd;
  const DFH dfh;
  const int64_t L = static_cast<int64_t>(hn::Lanes(dd));
  auto acc = hn::Zero(dd);
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const auto v = hn::PromoteTo(dd, hn::LoadU(dfh, x + i));
    acc = hn::MulAdd(v, v, acc);
  }
  double s = hn::GetLane(hn::SumOfLanes(dd, acc));
  for (; i < n; ++i) s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return s;
}

float RmsnormRow(float* out, const float* x, const float* w, int64_t C, float eps) {
  const double ss = SumSquaresSerial(x, C);
  const float r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(C) + static_cast<double>(eps)));
  const DF d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  const auto rv = hn::Set(d, r);
  int64_t c = 0;
  for (; c + L <= C; c += L) hn::StoreU(hn::Mul(hn::LoadU(d, w + c), hn::Mul(hn::LoadU(d, x + c), rv)), d, out + c);
  for (; c < C; ++c) out[c] = w[c] * (x[c] * r);
  return r;
}

// z ← exp(z − m) (stored when `store`), Σ in double lanes: each vector's exps are widened
// half by half and added to two double accumulators.
template <bool store>
double ExpShift(float* z, const float* zin, int64_t n, float m) {
  const DF d;
  const DD dd;
  const DFH dfh;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d)), Ld = static_cast<int64_t>(hn::Lanes(dd));
  const auto mv = hn::Set(d, m);
  auto acc = hn::Zero(dd);
  HWY_ALIGN float e[kMaxFloats];  // (L) one vector of exps, 0 beyond the valid ones
  for_vectors(0, n, L, [&](int64_t i, int64_t k) {
    hn::Store(exp_clamped(d, hn::Sub(load_n(d, zin + i, k), mv)), d, e);
    std::fill(e + k, e + L, 0.f);
    if constexpr (store) std::copy(e, e + k, z + i);
    for (int64_t j = 0; j < L; j += Ld) acc = hn::Add(acc, hn::PromoteTo(dd, hn::Load(dfh, e + j)));
  });
  return hn::GetLane(hn::SumOfLanes(dd, acc));
}
double ExpShiftSum(float* z, int64_t n, float m) { return ExpShift<true>(z, z, n, m); }
double SumExp(const float* z, int64_t n, float m) { return ExpShift<false>(nullptr, z, n, m); }

void ExpShiftScale(float* z, int64_t n, float m, float s) {
  const DF d;
  const auto mv = hn::Set(d, m), sv = hn::Set(d, s);
  for_vectors(0, n, static_cast<int64_t>(hn::Lanes(d)), [&](int64_t i, int64_t k) {
    store_n(d, hn::Mul(sv, exp_clamped(d, hn::Sub(load_n(d, z + i, k), mv))), z + i, k);
  });
}

double SumSquares(const float* x, int64_t n) {
  double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (n > kChunk)
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) s += SumSquaresSerial(x + c0, std::min(kChunk, n - c0));
  return s;
}

// The AdamW update of cpu::adamw_kernel, one operation per line there, one per line here.
template <bool lerp_low>
void AdamWRange(float* p, const float* g, float* m, float* v, int64_t i0, int64_t i1, float step_size,
                float bc2_sqrt, float decay, float w1, float b2, float w2, float eps, bool decay_on) {
  const DF d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  const auto vdecay = hn::Set(d, decay), vw1 = hn::Set(d, w1), vomw1 = hn::Set(d, 1.f - w1);
  const auto vb2 = hn::Set(d, b2), vw2 = hn::Set(d, w2), vbc2 = hn::Set(d, bc2_sqrt), veps = hn::Set(d, eps);
  const auto vneg_step = hn::Set(d, -step_size);
  int64_t i = i0;
  for (; i + L <= i1; i += L) {
    auto pv = hn::LoadU(d, p + i);
    if (decay_on) pv = hn::Mul(pv, vdecay);
    const auto gi = hn::LoadU(d, g + i);
    auto mv = hn::LoadU(d, m + i);
    if constexpr (lerp_low)
      mv = hn::Add(mv, hn::Mul(vw1, hn::Sub(gi, mv)));
    else
      mv = hn::Sub(gi, hn::Mul(hn::Sub(gi, mv), vomw1));
    const auto vv = hn::Add(hn::Mul(hn::LoadU(d, v + i), vb2), hn::Mul(hn::Mul(vw2, gi), gi));
    const auto denom = hn::Add(hn::Div(hn::Sqrt(vv), vbc2), veps);
    pv = hn::Add(pv, hn::Div(hn::Mul(vneg_step, mv), denom));
    hn::StoreU(mv, d, m + i);
    hn::StoreU(vv, d, v + i);
    hn::StoreU(pv, d, p + i);
  }
  for (; i < i1; ++i) {
    if (decay_on) p[i] *= decay;
    const float gi = g[i];
    m[i] = lerp_low ? m[i] + w1 * (gi - m[i]) : gi - (gi - m[i]) * (1.f - w1);
    v[i] = v[i] * b2 + w2 * gi * gi;
    const float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
    p[i] = p[i] + (-step_size * m[i]) / denom;
  }
}

void AdamW(float* p, const float* g, float* m, float* v, int64_t n, float step_size, float bc2_sqrt, float decay,
           float w1, float b2, float w2, float eps, bool decay_on) {
#pragma omp parallel for schedule(static) if (n > kChunk)
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t c1 = std::min(n, c0 + kChunk);
    if (w1 < 0.5f)
      AdamWRange<true>(p, g, m, v, c0, c1, step_size, bc2_sqrt, decay, w1, b2, w2, eps, decay_on);
    else
      AdamWRange<false>(p, g, m, v, c0, c1, step_size, bc2_sqrt, decay, w1, b2, w2, eps, decay_on);
  }
}

// Rows o of W against the M (≤ 4) rows of x: W row loaded once, one FMA per x row, two
// accumulators per row to hide the FMA latency.
template <int M, bool bf16>
void MatvecRows(float* y, const float* x, const void* W, int64_t O, int64_t I, float alpha, float beta) {
  const DF d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < O; ++o) {
    const float* wf = static_cast<const float*>(W) + (bf16 ? 0 : o * I);        // (I) when fp32
    const uint16_t* wb = static_cast<const uint16_t*>(W) + (bf16 ? o * I : 0);  // (I) when bf16
    hn::Vec<DF> a0[M], a1[M];
    for (int m = 0; m < M; ++m) a0[m] = a1[m] = hn::Zero(d);
    int64_t k = 0;
    for (; k + 2 * L <= I; k += 2 * L) {
      const auto w0 = bf16 ? load_bf16(d, wb + k) : hn::LoadU(d, wf + k);
      const auto w1 = bf16 ? load_bf16(d, wb + k + L) : hn::LoadU(d, wf + k + L);
      for (int m = 0; m < M; ++m) {
        a0[m] = hn::MulAdd(w0, hn::LoadU(d, x + m * I + k), a0[m]);
        a1[m] = hn::MulAdd(w1, hn::LoadU(d, x + m * I + k + L), a1[m]);
      }
    }
    for (int m = 0; m < M; ++m) {
      float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(a0[m], a1[m])));
      for (int64_t kk = k; kk < I; ++kk) s += x[m * I + kk] * (bf16 ? bf16_to_f32(wb[kk]) : wf[kk]);
      float& out = y[m * O + o];
      out = beta == 0.f ? alpha * s : alpha * s + beta * out;
    }
  }
}

void Matvec(float* y, const float* x, const void* W, bool w_bf16, int64_t M, int64_t O, int64_t I, float alpha,
            float beta) {
  switch (M * 2 + (w_bf16 ? 1 : 0)) {
    case 2: return MatvecRows<1, false>(y, x, W, O, I, alpha, beta);
    case 3: return MatvecRows<1, true>(y, x, W, O, I, alpha, beta);
    case 4: return MatvecRows<2, false>(y, x, W, O, I, alpha, beta);
    case 5: return MatvecRows<2, true>(y, x, W, O, I, alpha, beta);
    case 6: return MatvecRows<3, false>(y, x, W, O, I, alpha, beta);
    case 7: return MatvecRows<3, true>(y, x, W, O, I, alpha, beta);
    case 8: return MatvecRows<4, false>(y, x, W, O, I, alpha, beta);
    case 9: return MatvecRows<4, true>(y, x, W, O, I, alpha, beta);
    default: break;
  }
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace lorafit::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "util/error.h"

namespace lorafit::cpu {

HWY_EXPORT(Bf16ToF32);
HWY_EXPORT(F16ToF32);
HWY_EXPORT(F32ToBf16);
HWY_EXPORT(SwigluForward);
HWY_EXPORT(SwigluBackward);
HWY_EXPORT(RopeRowBf16);
HWY_EXPORT(ScaleBf16);
HWY_EXPORT(AddBf16);
HWY_EXPORT(SwigluForwardBf16);
HWY_EXPORT(SwigluBackwardBf16);
HWY_EXPORT(AttnScoresT);
HWY_EXPORT(AttnWeightedSumBf16);
HWY_EXPORT(RmsnormRow);
HWY_EXPORT(ExpShiftSum);
HWY_EXPORT(SumExp);
HWY_EXPORT(ExpShiftScale);
HWY_EXPORT(SumSquares);
HWY_EXPORT(AdamW);
HWY_EXPORT(Matvec);
HWY_EXPORT(TargetName);

void convert_bf16_to_f32(float* dst, const uint16_t* src, int64_t n) { HWY_DYNAMIC_DISPATCH(Bf16ToF32)(dst, src, n); }
void convert_f16_to_f32(float* dst, const uint16_t* src, int64_t n) { HWY_DYNAMIC_DISPATCH(F16ToF32)(dst, src, n); }
void convert_f32_to_bf16(uint16_t* dst, const float* src, int64_t n) { HWY_DYNAMIC_DISPATCH(F32ToBf16)(dst, src, n); }
void swiglu_forward_f32(float* out, const float* gate, const float* up, int64_t n) {
  HWY_DYNAMIC_DISPATCH(SwigluForward)(out, gate, up, n);
}
void swiglu_backward_f32(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
  HWY_DYNAMIC_DISPATCH(SwigluBackward)(dgate, dup, dout, gate, up, n);
}
void rope_row_bf16(uint16_t* x, int64_t H, int64_t D, const float* c, const float* s, int sign) {
  HWY_DYNAMIC_DISPATCH(RopeRowBf16)(x, H, D, c, s, sign);
}
void scale_bf16(uint16_t* x, int64_t n, float s) { HWY_DYNAMIC_DISPATCH(ScaleBf16)(x, n, s); }
void add_bf16(uint16_t* out, const uint16_t* a, const uint16_t* b, int64_t n) {
  HWY_DYNAMIC_DISPATCH(AddBf16)(out, a, b, n);
}
void swiglu_forward_bf16(uint16_t* out, const uint16_t* gate, const uint16_t* up, int64_t n) {
  HWY_DYNAMIC_DISPATCH(SwigluForwardBf16)(out, gate, up, n);
}
void swiglu_backward_bf16(uint16_t* dgate, uint16_t* dup, const uint16_t* dout, const uint16_t* gate,
                          const uint16_t* up, int64_t n) {
  HWY_DYNAMIC_DISPATCH(SwigluBackwardBf16)(dgate, dup, dout, gate, up, n);
}
void attn_scores_t(float* p, const float* q, const float* kt, int64_t ldkt, int64_t n, int64_t D, float scale) {
  HWY_DYNAMIC_DISPATCH(AttnScoresT)(p, q, kt, ldkt, n, D, scale);
}
void attn_weighted_sum_bf16(float* acc, const float* w, const uint16_t* v, int64_t ld, int64_t n, int64_t D) {
  HWY_DYNAMIC_DISPATCH(AttnWeightedSumBf16)(acc, w, v, ld, n, D);
}
float rmsnorm_row_f32(float* out, const float* x, const float* w, int64_t C, float eps) {
  return HWY_DYNAMIC_DISPATCH(RmsnormRow)(out, x, w, C, eps);
}
double exp_shift_sum_f32(float* z, int64_t n, float m) { return HWY_DYNAMIC_DISPATCH(ExpShiftSum)(z, n, m); }
double sum_exp_f32(const float* z, int64_t n, float m) { return HWY_DYNAMIC_DISPATCH(SumExp)(z, n, m); }
void exp_shift_scale_f32(float* z, int64_t n, float m, float s) { HWY_DYNAMIC_DISPATCH(ExpShiftScale)(z, n, m, s); }
double sum_squares_f32(const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(SumSquares)(x, n); }
void adamw_f32(float* p, const float* g, float* m, float* v, int64_t n, const AdamWScalars& s) {
  HWY_DYNAMIC_DISPATCH(AdamW)(p, g, m, v, n, s.step_size, s.bc2_sqrt, s.decay, s.w1, s.b2, s.w2, s.eps, s.decay_on);
}
void matvec_f32(float* y, const float* x, const void* W, bool w_bf16, int64_t M, int64_t O, int64_t I, float alpha,
                float beta) {
  LF_CHECK(M >= 1 && M <= kMatvecRows, "matvec_f32: {} rows (at most {})", M, kMatvecRows);
  HWY_DYNAMIC_DISPATCH(Matvec)(y, x, W, w_bf16, M, O, I, alpha, beta);
}
std::string simd_target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

}  // namespace lorafit::cpu
#endif  // HWY_ONCE
