// CPU ops on BF16 activations (backend_bf16.h). Values are widened exactly (a bf16 is the top
// half of an fp32), computed in fp32 and rounded to nearest even where torch rounds.
#include "backend/cpu/backend_bf16.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/kernels_forward.h"
#include "backend/cpu/simd.h"

namespace lorafit::cpu_bf16 {

namespace {

float r16(float x) { return bf16_to_f32(f32_to_bf16(x)); }
float ld(const uint16_t* p, int64_t i) { return bf16_to_f32(p[i]); }

void check_bf16(const Tensor& t, const char* what) {
  LF_CHECK(t.data != nullptr && t.dtype == DType::BF16 && t.device == Device::CPU,
           "{}: expected a CPU BF16 tensor (bf16 run), got {} {}", what, dtype_name(t.dtype), t.shape_str());
}

// n floats of scratch from a per-thread pool, given back when it goes. The bf16 ops widen
// (N, C) activations on every call; a fresh vector each time would fault its pages in and
// zero them each time (measured: several % of a bf16 forward), a pooled one keeps them.
class PooledFloats {
 public:
  PooledFloats() = default;
  explicit PooledFloats(size_t n) {
    auto& pool = free_list();
    if (!pool.empty()) {
      buf_ = std::move(pool.back());
      pool.pop_back();
    }
    buf_.resize(n);
  }
  PooledFloats(PooledFloats&& o) noexcept : buf_(std::move(o.buf_)) { o.buf_ = {}; }
  PooledFloats& operator=(PooledFloats&&) = delete;
  PooledFloats(const PooledFloats&) = delete;
  ~PooledFloats() {
    if (buf_.capacity() > 0) free_list().push_back(std::move(buf_));
  }
  float* data() { return buf_.data(); }
  size_t size() const { return buf_.size(); }
  float& operator[](size_t i) { return buf_[i]; }

 private:
  static std::vector<std::vector<float>>& free_list() {
    thread_local std::vector<std::vector<float>> pool;
    return pool;
  }
  std::vector<float> buf_;
};

// An fp32 tensor with t's shape: t itself when it is F32, else a widened copy (kCopy), zeros
// (kZero), or scratch the caller overwrites whole (kOutput: a full output of the fp32 op).
enum class Init { kCopy, kZero, kOutput };
struct Wide {
  PooledFloats buf;
  Tensor t;
};
// dst (n floats) = src widened: the vector conversions for BF16/F16 in parallel chunks (the
// tensor layer's convert_to_f32 is a scalar loop).
void widen_into(float* dst, const void* src, DType t, int64_t n) {
  if (t != DType::BF16 && t != DType::F16) return convert_to_f32(dst, src, t, static_cast<size_t>(n));
  constexpr int64_t kChunk = 1 << 16;
  const auto* s = static_cast<const uint16_t*>(src);
#pragma omp parallel for schedule(static) if (n > kChunk)
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t m = std::min(kChunk, n - c0);
    if (t == DType::BF16)
      cpu::convert_bf16_to_f32(dst + c0, s + c0, m);
    else
      cpu::convert_f16_to_f32(dst + c0, s + c0, m);
  }
}

// dst (n bf16) = src rounded to nearest even, in parallel chunks.
void narrow_into(uint16_t* dst, const float* src, int64_t n) {
  constexpr int64_t kChunk = 1 << 16;
#pragma omp parallel for schedule(static) if (n > kChunk)
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) cpu::convert_f32_to_bf16(dst + c0, src + c0, std::min(kChunk, n - c0));
}

Wide wide(const Tensor& t, Init init = Init::kCopy) {
  Wide w;
  w.t = t;
  if (t.empty() || t.dtype == DType::F32) return w;
  PooledFloats buf(static_cast<size_t>(t.numel()));
  if (init == Init::kCopy)
    widen_into(buf.data(), t.data, t.dtype, t.numel());
  else if (init == Init::kZero)
    std::fill(buf.data(), buf.data() + buf.size(), 0.f);
  w.t.data = buf.data();
  w.t.dtype = DType::F32;
  return Wide{std::move(buf), w.t};
}

// dst = src (F32) in dst's dtype; nothing to do when dst is src.
void narrow(const Tensor& dst, const Tensor& src) {
  if (dst.data != src.data) convert(dst, src);
}

// A weight vector (F32, BF16 or F16) as floats.
std::vector<float> floats_of(const Tensor& w) {
  std::vector<float> v(static_cast<size_t>(w.numel()));
  convert_to_f32(v.data(), w.data, w.dtype, v.size());
  return v;
}

// Causal GQA attention over BF16 q (B,Tq,H,D) and k/v (B,S,Hkv,D): query t sits at position
// p0 + t and attends keys s ≤ p0 + t (with seg[b,s] == seg[b,t] when seg is given; only with
// Tq = S, p0 = 0). torch's CPU flash attention for bf16: fp32 scores (exact bf16 products,
// fp32 sums) × D^-½, max and Σ exp in fp32 (here: the sum in double, rounded once), P =
// bf16(exp(s − max)) for the P·V GEMM, out = bf16(P·V / Σ), lse = max + log Σ (fp32, for the
// backward). One query at a time, whatever Tq is, so a cached decode step computes exactly what
// the full forward computes for that row, and a packed sample's rows what the sample alone gets.
void attend(uint16_t* out, float* lse, const uint16_t* q, const uint16_t* k, const uint16_t* v, const int32_t* seg,
            int64_t B, int64_t Tq, int64_t S, int64_t H, int64_t Hkv, int64_t D, int64_t p0) {
  const int64_t group = H / Hkv, ldkv = Hkv * D;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  // Work below ~2^16 multiply-adds (a decode step at a short context) stays on this thread.
#pragma omp parallel if (B * H * (p0 + Tq) * D > (int64_t{1} << 16))
  {
    // scores, then bf16 weights (0 for masked keys), of one query; room for the padded key block
    std::vector<float> p(static_cast<size_t>(cpu::attn_key_pad(p0 + Tq)));
    std::vector<float> qf(static_cast<size_t>(D));   // the query, widened
    std::vector<float> acc(static_cast<size_t>(D));  // Σ_s P·v
    const int64_t nk = p0 + Tq, ldkt = cpu::attn_key_pad(nk);  // keys any query of this call attends
    std::vector<float> kt(static_cast<size_t>(D * ldkt), 0.f);   // (D, ldkt) this head's keys, widened, transposed, padded
    int64_t kt_of = -1;                                          // the (b, kv head) kt holds
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t h = 0; h < H; ++h) {
        const uint16_t* kb = k + (b * S * Hkv + h / group) * D;  // (S, D) at row stride Hkv·D
        const uint16_t* vb = v + (b * S * Hkv + h / group) * D;  // (S, D) at row stride Hkv·D
        if (kt_of != b * Hkv + h / group) {  // the heads of one kv group share it: transposed once per thread
          kt_of = b * Hkv + h / group;
          for (int64_t s = 0; s < nk; ++s)
            for (int64_t d = 0; d < D; ++d) kt[static_cast<size_t>(d * ldkt + s)] = ld(kb + s * ldkv, d);
        }
        for (int64_t t = 0; t < Tq; ++t) {
          const int64_t last = p0 + t, n = last + 1;
          const uint16_t* qr = q + ((b * Tq + t) * H + h) * D;
          for (int64_t d = 0; d < D; ++d) qf[static_cast<size_t>(d)] = ld(qr, d);
          auto allowed = [&](int64_t s) { return !seg || seg[b * S + s] == seg[b * S + last]; };
          cpu::attn_scores_t(p.data(), qf.data(), kt.data(), ldkt, n, D, scale);
          float mx = -std::numeric_limits<float>::infinity();
          for (int64_t s = 0; s < n; ++s)
            if (allowed(s)) mx = std::max(mx, p[static_cast<size_t>(s)]);
          float sum = 0.f;
          // The allowed keys are one run s0..last (always without packing): the vector exp, its
          // sum in double lanes rounded to fp32 once; a sample split in pieces: the scalar loop.
          const int64_t s0 = seg ? cpu::allowed_run_start(seg + b * S, last) : 0;
          if (s0 >= 0) {
            std::fill(p.begin(), p.begin() + s0, 0.f);
            sum = static_cast<float>(cpu::exp_shift_sum_f32(p.data() + s0, n - s0, mx));
            for (int64_t s = s0; s < n; ++s) p[static_cast<size_t>(s)] = r16(p[static_cast<size_t>(s)]);
          } else {
            for (int64_t s = 0; s < n; ++s) {
              float& ps = p[static_cast<size_t>(s)];
              if (!allowed(s)) {
                ps = 0.f;
                continue;
              }
              const float e = std::exp(ps - mx);
              sum += e;
              ps = r16(e);
            }
          }
          cpu::attn_weighted_sum_bf16(acc.data(), p.data(), vb, ldkv, n, D);
          uint16_t* orow = out + ((b * Tq + t) * H + h) * D;
          for (int64_t d = 0; d < D; ++d) orow[d] = f32_to_bf16(acc[static_cast<size_t>(d)] / sum);
          if (lse) lse[(b * H + h) * Tq + t] = mx + std::log(sum);
        }
      }
    }
  }
}

// Vocabulary rows per lm-head chunk (as the fp32 op).
constexpr int64_t kVocabChunk = 4096;

}  // namespace

void convert(Tensor out, Tensor in) {
  LF_CHECK(out.numel() == in.numel(), "convert: out {} in {}", out.shape_str(), in.shape_str());
  LF_CHECK((out.dtype == DType::F32 || out.dtype == DType::BF16) && dtype_is_float(in.dtype),
           "convert {} -> {}", dtype_name(in.dtype), dtype_name(out.dtype));
  const int64_t n = in.numel();
  if (out.dtype == in.dtype) {
    if (out.data != in.data) std::memmove(out.data, in.data, in.nbytes());
    return;
  }
  if (out.dtype == DType::F32) return widen_into(out.as<float>(), in.data, in.dtype, n);
  const Wide w = wide(in);
  narrow_into(out.as<uint16_t>(), w.t.as<const float>(), n);
}

void embedding_forward(CpuBackend& be, Tensor out, Tensor ids, Tensor table) {
  Wide o = wide(out, Init::kOutput);
  be.embedding_forward(o.t, ids, table);
  narrow(out, o.t);
}

namespace {

// rmsnorm_forward for a BF16 x, one parallel pass over the rows: per row the fp32 op's
// arithmetic (cpu::rmsnorm_row_f32 with unit weights: h = x·rstd), then bf16(w · bf16(h)).
void rmsnorm_rows_bf16(Tensor out, Tensor rstd, Tensor x, Tensor w, float eps) {
  const int64_t C = x.dim(-1), N = x.numel() / C;
  LF_CHECK(rstd.empty() || (rstd.dtype == DType::F32 && rstd.numel() == N), "rmsnorm rstd {} for N={}",
           rstd.shape_str(), N);
  const std::vector<float> ones(static_cast<size_t>(C), 1.f), wf = floats_of(w);
  const uint16_t* xp = x.as<const uint16_t>();
  uint16_t* o = out.as<uint16_t>();
  float* rs = rstd.empty() ? nullptr : rstd.as<float>();
#pragma omp parallel if (N > 1)
  {
    std::vector<float> xr(static_cast<size_t>(C)), h(static_cast<size_t>(C));  // (C) x widened, x·rstd
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      cpu::convert_bf16_to_f32(xr.data(), xp + n * C, C);
      const float r = cpu::rmsnorm_row_f32(h.data(), xr.data(), ones.data(), C, eps);
      if (rs) rs[n] = r;
      for (int64_t c = 0; c < C; ++c)
        o[n * C + c] = f32_to_bf16(wf[static_cast<size_t>(c)] * r16(h[static_cast<size_t>(c)]));
    }
  }
}

}  // namespace

void rmsnorm_forward(CpuBackend& be, Tensor out, Tensor rstd, Tensor x, Tensor w, float eps) {
  check_bf16(out, "rmsnorm out");
  const int64_t C = x.dim(-1), N = x.numel() / C;
  LF_CHECK(out.numel() == N * C && w.numel() == C, "rmsnorm: out {} x {} w {}", out.shape_str(), x.shape_str(),
           w.shape_str());
  if (x.dtype == DType::BF16) return rmsnorm_rows_bf16(out, rstd, x, w, eps);
  const Wide xw = wide(x);
  std::vector<float> ones(static_cast<size_t>(C), 1.f);
  PooledFloats h(static_cast<size_t>(N * C));  // (N, C) x·rstd
  be.rmsnorm_forward(Tensor(h.data(), DType::F32, {N, C}), rstd, xw.t.view({N, C}),
                     Tensor(ones.data(), DType::F32, {C}), eps);  // h = x·rstd in fp32
  const std::vector<float> wf = floats_of(w);
  uint16_t* o = out.as<uint16_t>();
#pragma omp parallel for schedule(static) if (N > 1)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      o[n * C + c] = f32_to_bf16(wf[static_cast<size_t>(c)] * r16(h[static_cast<size_t>(n * C + c)]));
}

void matmul_f32_rounded(CpuBackend& be, Tensor out, Tensor a, bool trans_a, Tensor b, bool trans_b, float alpha,
                        float beta) {
  Wide o = wide(out, beta != 0.f ? Init::kCopy : Init::kOutput);
  be.matmul(o.t, a, trans_a, b, trans_b, alpha, beta);
  narrow(out, o.t);
}

void add_bias(CpuBackend& be, Tensor out, Tensor bias) {
  const int64_t O = bias.numel();
  if (out.dtype == DType::BF16 && bias.dtype == DType::BF16 && O > 0 && out.numel() % O == 0) {
    // bf16(out + bias) row by row: (N, O) is small next to its GEMM, no team to wake
    uint16_t* op = out.as<uint16_t>();
    for (int64_t n = 0; n < out.numel() / O; ++n) cpu::add_bf16(op + n * O, op + n * O, bias.as<const uint16_t>(), O);
    return;
  }
  Wide o = wide(out);
  be.add_bias(o.t, bias);
  narrow(out, o.t);
}

namespace {

// The bf16 cos/sin of each position (N, half), as floats: cos/sin times attention_scaling in fp32,
// then .to(bf16) (the rotary embedding's order). Every layer rotates q and k at the same
// positions, so the last table is kept (per thread) and reused when the positions, frequencies
// and scaling are equal: computed once per forward instead of 2 × layers times.
struct RopeCosSin {
  std::vector<int32_t> pos;
  std::vector<float> inv_freq, c, s;
  float scale = 0.f;
};
const RopeCosSin& rope_cos_sin(const int32_t* ps, int64_t N, const RopeTable& rope) {
  thread_local RopeCosSin t;
  const int64_t half = static_cast<int64_t>(rope.inv_freq.size());
  if (t.scale == rope.attention_scaling && t.inv_freq == rope.inv_freq && static_cast<int64_t>(t.pos.size()) == N &&
      std::equal(ps, ps + N, t.pos.begin()))
    return t;
  t.pos.assign(ps, ps + N);
  t.inv_freq = rope.inv_freq;
  t.scale = rope.attention_scaling;
  t.c.resize(static_cast<size_t>(N * half));
  t.s.resize(t.c.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(ps[n]) * rope.inv_freq[static_cast<size_t>(i)];
      t.c[static_cast<size_t>(n * half + i)] = r16(std::cos(angle) * t.scale);
      t.s[static_cast<size_t>(n * half + i)] = r16(std::sin(angle) * t.scale);
    }
  return t;
}

}  // namespace

// (x·cos) + (rotate_half(x)·sin), rotate_half(x) = (−x2, x1), in three bf16 ops; sign < 0: the
// autograd of the same three ops (d·cos plus rotate_halfᵀ(d·sin)).
void rope(Tensor x, Tensor pos, const RopeTable& rope, int sign) {
  check_bf16(x, "rope x");
  LF_CHECK(x.ndim >= 3 && pos.dtype == DType::I32, "rope x {} pos {}", x.shape_str(), dtype_name(pos.dtype));
  const int64_t H = x.dim(-2), D = x.dim(-1), N = x.numel() / (H * D), half = D / 2;
  LF_CHECK(D % 2 == 0 && pos.numel() == N && static_cast<int64_t>(rope.inv_freq.size()) == half,
           "rope: x {} pos {} inv_freq {}", x.shape_str(), pos.shape_str(), rope.inv_freq.size());
  const RopeCosSin& cs = rope_cos_sin(pos.as<const int32_t>(), N, rope);
  uint16_t* xp = x.as<uint16_t>();
#pragma omp parallel for schedule(static) if (N > 1)
  for (int64_t n = 0; n < N; ++n)
    cpu::rope_row_bf16(xp + n * H * D, H, D, cs.c.data() + n * half, cs.s.data() + n * half, sign);
}

void attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor seg) {
  for (const Tensor* t : {&out, &q, &k, &v}) check_bf16(*t, "attention");
  LF_CHECK(q.ndim == 4 && k.ndim == 4 && v.shape == k.shape && out.shape == q.shape, "attention: q {} k {} out {}",
           q.shape_str(), k.shape_str(), out.shape_str());
  const int64_t B = q.dim(0), S = q.dim(1), H = q.dim(2), D = q.dim(3), Hkv = k.dim(2);
  LF_CHECK(k.dim(0) == B && k.dim(1) == S && k.dim(3) == D && Hkv > 0 && H % Hkv == 0, "attention: q {} k {}",
           q.shape_str(), k.shape_str());
  LF_CHECK(lse.empty() || (lse.dtype == DType::F32 && lse.numel() == B * H * S), "attention lse {}", lse.shape_str());
  LF_CHECK(seg.empty() || (seg.dtype == DType::I32 && seg.numel() == B * S), "attention seg {}", seg.shape_str());
  attend(out.as<uint16_t>(), lse.empty() ? nullptr : lse.as<float>(), q.as<const uint16_t>(),
         k.as<const uint16_t>(), v.as<const uint16_t>(), seg.empty() ? nullptr : seg.as<const int32_t>(), B, S, S, H,
         Hkv, D, 0);
}

void attention_decode(Tensor out, Tensor q, Tensor k_cache, Tensor v_cache, int64_t p0) {
  for (const Tensor* t : {&out, &q, &k_cache, &v_cache}) check_bf16(*t, "attention_decode");
  LF_CHECK(q.ndim == 4 && k_cache.ndim == 4 && out.shape == q.shape && v_cache.shape == k_cache.shape,
           "attention_decode: q {} cache {}", q.shape_str(), k_cache.shape_str());
  const int64_t B = q.dim(0), T = q.dim(1), H = q.dim(2), D = q.dim(3), S = k_cache.dim(1), Hkv = k_cache.dim(2);
  LF_CHECK(k_cache.dim(0) == B && k_cache.dim(3) == D && Hkv > 0 && H % Hkv == 0 && p0 >= 0 && p0 + T <= S,
           "attention_decode: q {} cache {} p0 {}", q.shape_str(), k_cache.shape_str(), p0);
  attend(out.as<uint16_t>(), nullptr, q.as<const uint16_t>(), k_cache.as<const uint16_t>(),
         v_cache.as<const uint16_t>(), nullptr, B, T, S, H, Hkv, D, p0);
}

void swiglu_forward(Tensor out, Tensor gate, Tensor up) {
  for (const Tensor* t : {&out, &gate, &up}) check_bf16(*t, "swiglu");
  const int64_t n = gate.numel();
  LF_CHECK(out.numel() == n && up.numel() == n, "swiglu: out {} gate {} up {}", out.shape_str(), gate.shape_str(),
           up.shape_str());
  cpu::swiglu_forward_bf16(out.as<uint16_t>(), gate.as<const uint16_t>(), up.as<const uint16_t>(), n);
}

void add(CpuBackend& be, Tensor out, Tensor a, Tensor b) {
  if (out.dtype == DType::BF16 && a.dtype == DType::BF16 && b.dtype == DType::BF16 && a.numel() == out.numel() &&
      b.numel() == out.numel())
    return cpu::add_bf16(out.as<uint16_t>(), a.as<const uint16_t>(), b.as<const uint16_t>(), out.numel());
  const Wide aw = wide(a), bw = wide(b);
  Wide o = wide(out, Init::kOutput);
  be.add(o.t, aw.t, bw.t);
  narrow(out, o.t);
}

void scale(Tensor x, float s) {
  check_bf16(x, "scale x");
  cpu::scale_bf16(x.as<uint16_t>(), x.numel(), s);
}

void dropout(CpuBackend& be, Tensor out, Tensor x, float p, uint64_t seed) {
  const Wide xw = wide(x);
  Wide o = wide(out, Init::kOutput);
  be.dropout(o.t, xw.t, p, seed);
  narrow(out, o.t);
}

void lmhead_ce_forward(CpuBackend& be, Tensor loss, Tensor lse, Tensor x, Tensor w, Tensor targets) {
  check_bf16(x, "lmhead_ce_forward x");
  LF_CHECK(loss.dtype == DType::F32 && lse.dtype == DType::F32 && targets.dtype == DType::I32 && w.ndim == 2);
  const int64_t V = w.dim(0), C = w.dim(1), N = x.numel() / C;
  LF_CHECK(x.numel() == N * C && loss.numel() == N && lse.numel() == N && targets.numel() == N);
  const int32_t* tg = targets.as<const int32_t>();  // (N)
  check_lmhead_targets(tg, N, V);
  const int64_t VC = std::min(kVocabChunk, V);
  std::vector<uint16_t> z16(static_cast<size_t>(N * VC));  // (N, VC) bf16 logits of a chunk
  std::vector<double> mx(static_cast<size_t>(N), -INFINITY), sum(static_cast<size_t>(N), 0.0);
  std::vector<float> zt(static_cast<size_t>(N), 0.f);  // (N) the target's (rounded) logit
  for (int64_t v0 = 0; v0 < V; v0 += VC) {
    const int64_t v1 = std::min(V, v0 + VC), nc = v1 - v0;
    be.matmul(Tensor(z16.data(), DType::BF16, {N, nc}), x.view({N, C}), false, w.rows(v0, v1), true, 1.f, 0.f);
#pragma omp parallel
    {
      std::vector<float> zf(static_cast<size_t>(nc));  // (nc) one row's logits, widened
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const uint16_t* z = z16.data() + n * nc;  // (nc)
      cpu::convert_bf16_to_f32(zf.data(), z, nc);
      float mc = -INFINITY;
      for (int64_t j = 0; j < nc; ++j) mc = std::max(mc, zf[static_cast<size_t>(j)]);
      const double m = std::max(mx[n], static_cast<double>(mc));
      // Σ exp as the fp32 op: exp in float (its argument z − m exact: m is a logit), sum in double.
      double s = cpu::sum_exp_f32(zf.data(), nc, static_cast<float>(m));
      s += sum[n] * std::exp(mx[n] - m);
      mx[n] = m;
      sum[n] = s;
      if (tg[n] >= v0 && tg[n] < v1) zt[n] = ld(z, tg[n] - v0);
    }
    }
  }
  float* lo = loss.as<float>();
  float* ls = lse.as<float>();
  for (int64_t n = 0; n < N; ++n) {
    const double l = mx[n] + std::log(sum[n]);
    ls[n] = static_cast<float>(l);
    lo[n] = tg[n] == -100 ? 0.f : static_cast<float>(l - static_cast<double>(zt[n]));
  }
}

void lmhead_ce_backward(CpuBackend& be, Tensor dx, Tensor dloss, Tensor x, Tensor w, Tensor targets, Tensor lse) {
  check_bf16(x, "lmhead_ce_backward x");
  check_bf16(dx, "lmhead_ce_backward dx");
  LF_CHECK(dloss.dtype == DType::F32 && lse.dtype == DType::F32 && targets.dtype == DType::I32 && w.ndim == 2);
  const int64_t V = w.dim(0), C = w.dim(1), N = x.numel() / C;
  LF_CHECK(dx.numel() == N * C && dloss.numel() == N && lse.numel() == N && targets.numel() == N);
  const int32_t* tg = targets.as<const int32_t>();
  check_lmhead_targets(tg, N, V);
  const float* dl = dloss.as<const float>();
  const float* ls = lse.as<const float>();
  const int64_t VC = std::min(kVocabChunk, V);
  std::vector<uint16_t> z16(static_cast<size_t>(N * VC));  // (N, VC) logits, then dlogits, bf16
  std::vector<float> acc(static_cast<size_t>(N * C));      // (N, C) dx in fp32 across chunks
  const Tensor acc_t(acc.data(), DType::F32, {N, C});
  for (int64_t v0 = 0; v0 < V; v0 += VC) {
    const int64_t v1 = std::min(V, v0 + VC), nc = v1 - v0;
    const Tensor zt(z16.data(), DType::BF16, {N, nc});
    be.matmul(zt, x.view({N, C}), false, w.rows(v0, v1), true, 1.f, 0.f);
#pragma omp parallel
    {
      std::vector<float> zf(static_cast<size_t>(nc));  // (nc) one row's logits, then its dlogits
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      uint16_t* z = z16.data() + n * nc;
      if (tg[n] == -100 || dl[n] == 0.f) {
        std::fill(z, z + nc, uint16_t{0});
        continue;
      }
      // dl·(exp(z − lse) − [j = target]) in fp32 (the vector exp, as the fp32 op), then bf16.
      cpu::convert_bf16_to_f32(zf.data(), z, nc);
      cpu::exp_shift_scale_f32(zf.data(), nc, ls[n], dl[n]);
      if (tg[n] >= v0 && tg[n] < v1)
        zf[static_cast<size_t>(tg[n] - v0)] = dl[n] * (std::exp(ld(z, tg[n] - v0) - ls[n]) - 1.f);
      cpu::convert_f32_to_bf16(z, zf.data(), nc);
    }
    }
    be.matmul(acc_t, zt, false, w.rows(v0, v1), false, 1.f, v0 == 0 ? 0.f : 1.f);  // dx += dz·w (fp32 sums)
  }
  convert(dx, acc_t);
}

void kv_cache_write(Tensor k_cache, Tensor v_cache, Tensor k, Tensor v, int64_t p0) {
  for (const Tensor* t : {&k_cache, &v_cache, &k, &v}) check_bf16(*t, "kv_cache_write");
  LF_CHECK(k.ndim == 4 && k_cache.ndim == 4 && v.shape == k.shape && v_cache.shape == k_cache.shape,
           "kv_cache_write: cache {} new {}", k_cache.shape_str(), k.shape_str());
  const int64_t B = k.dim(0), T = k.dim(1), row = k.dim(2) * k.dim(3), S = k_cache.dim(1);
  LF_CHECK(k_cache.dim(0) == B && k_cache.dim(2) * k_cache.dim(3) == row && p0 >= 0 && p0 + T <= S,
           "kv_cache_write: cache {} new {} p0 {}", k_cache.shape_str(), k.shape_str(), p0);
  for (auto [cache, x] : {std::pair{k_cache, k}, std::pair{v_cache, v}})
    for (int64_t b = 0; b < B; ++b)
      std::memcpy(cache.as<uint16_t>() + (b * S + p0) * row, x.as<const uint16_t>() + b * T * row,
                  static_cast<size_t>(T * row) * 2);
}

void rmsnorm_backward(CpuBackend& be, Tensor dx, Tensor dout, Tensor x, Tensor w, Tensor rstd) {
  check_bf16(dx, "rmsnorm_backward dx");
  const int64_t C = x.dim(-1), N = x.numel() / C;
  LF_CHECK(dx.numel() == N * C && dout.numel() == N * C && w.numel() == C);
  const Wide dw = wide(dout), xw = wide(x);
  const std::vector<float> wf = floats_of(w);
  std::vector<float> ones(static_cast<size_t>(C), 1.f);
  PooledFloats g(static_cast<size_t>(N * C)), d(g.size());  // (N, C) bf16(dout·w), dx in fp32
  const float* go = dw.t.as<const float>();
#pragma omp parallel for schedule(static) if (N > 1)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) g[n * C + c] = r16(go[n * C + c] * wf[static_cast<size_t>(c)]);
  const Tensor dt(d.data(), DType::F32, {N, C});
  be.rmsnorm_backward(dt, Tensor(g.data(), DType::F32, {N, C}), xw.t.view({N, C}), Tensor(ones.data(), DType::F32, {C}),
                      rstd);
  convert(dx, dt);
}

void bias_grad(CpuBackend& be, Tensor dbias, Tensor dout) {
  const Wide dw = wide(dout);
  be.bias_grad(dbias, dw.t);
}

void attention_backward(CpuBackend& be, Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v,
                        Tensor out, Tensor lse, Tensor seg) {
  const Wide gw = wide(dout), qw = wide(q), kw = wide(k), vw = wide(v), ow = wide(out);
  Wide dqw = wide(dq, Init::kZero), dkw = wide(dk, Init::kZero), dvw = wide(dv, Init::kZero);
  be.attention_backward(dqw.t, dkw.t, dvw.t, gw.t, qw.t, kw.t, vw.t, ow.t, lse, seg);
  narrow(dq, dqw.t);
  narrow(dk, dkw.t);
  narrow(dv, dvw.t);
}

void swiglu_backward(Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up) {
  for (const Tensor* t : {&dgate, &dup, &dout, &gate, &up}) check_bf16(*t, "swiglu_backward");
  const int64_t n = gate.numel();
  LF_CHECK(dgate.numel() == n && dup.numel() == n && dout.numel() == n && up.numel() == n);
  cpu::swiglu_backward_bf16(dgate.as<uint16_t>(), dup.as<uint16_t>(), dout.as<const uint16_t>(),
                            gate.as<const uint16_t>(), up.as<const uint16_t>(), n);
}

}  // namespace lorafit::cpu_bf16
