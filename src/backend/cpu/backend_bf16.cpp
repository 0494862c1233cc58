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

namespace lorafit::cpu_bf16 {

namespace {

float r16(float x) { return bf16_to_f32(f32_to_bf16(x)); }
float ld(const uint16_t* p, int64_t i) { return bf16_to_f32(p[i]); }

void check_bf16(const Tensor& t, const char* what) {
  LF_CHECK(t.data != nullptr && t.dtype == DType::BF16 && t.device == Device::CPU,
           "{}: expected a CPU BF16 tensor (bf16 run), got {} {}", what, dtype_name(t.dtype), t.shape_str());
}

// An fp32 tensor with t's shape: t itself when it is F32, else a widened copy (or zeros).
struct Wide {
  std::vector<float> buf;
  Tensor t;
};
Wide wide(const Tensor& t, bool copy = true) {
  Wide w;
  w.t = t;
  if (t.empty() || t.dtype == DType::F32) return w;
  w.buf.assign(static_cast<size_t>(t.numel()), 0.f);
  if (copy) convert_to_f32(w.buf.data(), t.data, t.dtype, w.buf.size());
  w.t.data = w.buf.data();
  w.t.dtype = DType::F32;
  return w;
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
// fp32 sums) × D^-½, max and Σ exp in fp32, P = bf16(exp(s − max)) for the P·V GEMM, out =
// bf16(P·V / Σ), lse = max + log Σ (fp32, for the backward).
void attend(uint16_t* out, float* lse, const uint16_t* q, const uint16_t* k, const uint16_t* v, const int32_t* seg,
            int64_t B, int64_t Tq, int64_t S, int64_t H, int64_t Hkv, int64_t D, int64_t p0) {
  const int64_t group = H / Hkv;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
#pragma omp parallel
  {
    std::vector<float> p(static_cast<size_t>(S));    // scores, then bf16 weights, of one query
    std::vector<float> qf(static_cast<size_t>(D));   // the query, widened
    std::vector<float> acc(static_cast<size_t>(D));  // Σ_s P·v
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t h = 0; h < H; ++h) {
        const int64_t hk = h / group;
        for (int64_t t = 0; t < Tq; ++t) {
          const int64_t last = p0 + t;
          const uint16_t* qr = q + ((b * Tq + t) * H + h) * D;
          for (int64_t d = 0; d < D; ++d) qf[static_cast<size_t>(d)] = ld(qr, d);
          auto allowed = [&](int64_t s) { return !seg || seg[b * S + s] == seg[b * S + last]; };
          float mx = -std::numeric_limits<float>::infinity();
          for (int64_t s = 0; s <= last; ++s) {
            if (!allowed(s)) continue;
            const uint16_t* kr = k + ((b * S + s) * Hkv + hk) * D;
            float dot = 0.f;
            for (int64_t d = 0; d < D; ++d) dot += qf[static_cast<size_t>(d)] * ld(kr, d);
            p[static_cast<size_t>(s)] = dot * scale;
            mx = std::max(mx, p[static_cast<size_t>(s)]);
          }
          float sum = 0.f;
          std::fill(acc.begin(), acc.end(), 0.f);
          for (int64_t s = 0; s <= last; ++s) {
            if (!allowed(s)) continue;
            const float e = std::exp(p[static_cast<size_t>(s)] - mx);
            sum += e;
            const float pe = r16(e);
            const uint16_t* vr = v + ((b * S + s) * Hkv + hk) * D;
            for (int64_t d = 0; d < D; ++d) acc[static_cast<size_t>(d)] += pe * ld(vr, d);
          }
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
  if (out.dtype == DType::F32) {
    convert_to_f32(out.as<float>(), in.data, in.dtype, static_cast<size_t>(n));
    return;
  }
  const Wide w = wide(in);
  const float* src = w.t.as<const float>();
  uint16_t* dst = out.as<uint16_t>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

void embedding_forward(CpuBackend& be, Tensor out, Tensor ids, Tensor table) {
  Wide o = wide(out, false);
  be.embedding_forward(o.t, ids, table);
  narrow(out, o.t);
}

void rmsnorm_forward(CpuBackend& be, Tensor out, Tensor rstd, Tensor x, Tensor w, float eps) {
  check_bf16(out, "rmsnorm out");
  const int64_t C = x.dim(-1), N = x.numel() / C;
  LF_CHECK(out.numel() == N * C && w.numel() == C, "rmsnorm: out {} x {} w {}", out.shape_str(), x.shape_str(),
           w.shape_str());
  const Wide xw = wide(x);
  std::vector<float> ones(static_cast<size_t>(C), 1.f), h(static_cast<size_t>(N * C));
  be.rmsnorm_forward(Tensor(h.data(), DType::F32, {N, C}), rstd, xw.t.view({N, C}),
                     Tensor(ones.data(), DType::F32, {C}), eps);  // h = x·rstd in fp32
  const std::vector<float> wf = floats_of(w);
  uint16_t* o = out.as<uint16_t>();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      o[n * C + c] = f32_to_bf16(wf[static_cast<size_t>(c)] * r16(h[static_cast<size_t>(n * C + c)]));
}

void matmul_f32_rounded(CpuBackend& be, Tensor out, Tensor a, bool trans_a, Tensor b, bool trans_b, float alpha,
                        float beta) {
  Wide o = wide(out, beta != 0.f);
  be.matmul(o.t, a, trans_a, b, trans_b, alpha, beta);
  narrow(out, o.t);
}

void add_bias(CpuBackend& be, Tensor out, Tensor bias) {
  Wide o = wide(out);
  be.add_bias(o.t, bias);
  narrow(out, o.t);
}

void rope(Tensor x, Tensor pos, const RopeTable& rope, int sign) {
  check_bf16(x, "rope x");
  LF_CHECK(x.ndim >= 3 && pos.dtype == DType::I32, "rope x {} pos {}", x.shape_str(), dtype_name(pos.dtype));
  const int64_t H = x.dim(-2), D = x.dim(-1), N = x.numel() / (H * D), half = D / 2;
  LF_CHECK(D % 2 == 0 && pos.numel() == N && static_cast<int64_t>(rope.inv_freq.size()) == half,
           "rope: x {} pos {} inv_freq {}", x.shape_str(), pos.shape_str(), rope.inv_freq.size());
  const std::vector<float>& inv_freq = rope.inv_freq;
  const float scale = rope.attention_scaling;
  const int32_t* ps = pos.as<const int32_t>();
  uint16_t* xp = x.as<uint16_t>();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(ps[n]) * inv_freq[static_cast<size_t>(i)];
      // cos/sin times attention_scaling in fp32, then .to(bf16) (the rotary embedding's order)
      const float c = r16(std::cos(angle) * scale), s = r16(std::sin(angle) * scale);
      for (int64_t h = 0; h < H; ++h) {
        uint16_t* xh = xp + (n * H + h) * D;
        const float x1 = bf16_to_f32(xh[i]), x2 = bf16_to_f32(xh[i + half]);
        if (sign > 0) {  // (x·cos) + (rotate_half(x)·sin), rotate_half(x) = (−x2, x1)
          xh[i] = f32_to_bf16(r16(x1 * c) - r16(x2 * s));
          xh[i + half] = f32_to_bf16(r16(x2 * c) + r16(x1 * s));
        } else {  // the autograd of the same three ops: d·cos plus rotate_halfᵀ(d·sin)
          xh[i] = f32_to_bf16(r16(x1 * c) + r16(x2 * s));
          xh[i + half] = f32_to_bf16(r16(x2 * c) - r16(x1 * s));
        }
      }
    }
  }
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
  const uint16_t *g = gate.as<const uint16_t>(), *u = up.as<const uint16_t>();
  uint16_t* o = out.as<uint16_t>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float gv = ld(g, i);
    o[i] = f32_to_bf16(r16(gv / (1.f + std::exp(-gv))) * ld(u, i));
  }
}

void add(CpuBackend& be, Tensor out, Tensor a, Tensor b) {
  const Wide aw = wide(a), bw = wide(b);
  Wide o = wide(out, false);
  be.add(o.t, aw.t, bw.t);
  narrow(out, o.t);
}

void scale(Tensor x, float s) {
  check_bf16(x, "scale x");
  uint16_t* p = x.as<uint16_t>();
  const int64_t n = x.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] = s == 0.f ? 0 : f32_to_bf16(ld(p, i) * s);
}

void dropout(CpuBackend& be, Tensor out, Tensor x, float p, uint64_t seed) {
  const Wide xw = wide(x);
  Wide o = wide(out, false);
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
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const uint16_t* z = z16.data() + n * nc;  // (nc)
      float mc = -INFINITY;
      for (int64_t j = 0; j < nc; ++j) mc = std::max(mc, ld(z, j));
      const double m = std::max(mx[n], static_cast<double>(mc));
      double s = 0;  // Σ exp in double, as the fp32 op
      for (int64_t j = 0; j < nc; ++j) s += std::exp(static_cast<double>(ld(z, j)) - m);
      s += sum[n] * std::exp(mx[n] - m);
      mx[n] = m;
      sum[n] = s;
      if (tg[n] >= v0 && tg[n] < v1) zt[n] = ld(z, tg[n] - v0);
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
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      uint16_t* z = z16.data() + n * nc;
      const bool live = tg[n] != -100 && dl[n] != 0.f;
      for (int64_t j = 0; j < nc; ++j) {
        float d = 0.f;
        if (live) d = dl[n] * (std::exp(ld(z, j) - ls[n]) - (tg[n] == v0 + j ? 1.f : 0.f));
        z[j] = f32_to_bf16(d);
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
  std::vector<float> g(static_cast<size_t>(N * C)), ones(static_cast<size_t>(C), 1.f), d(g.size());
  const float* go = dw.t.as<const float>();
#pragma omp parallel for schedule(static)
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
  Wide dqw = wide(dq, false), dkw = wide(dk, false), dvw = wide(dv, false);
  be.attention_backward(dqw.t, dkw.t, dvw.t, gw.t, qw.t, kw.t, vw.t, ow.t, lse, seg);
  narrow(dq, dqw.t);
  narrow(dk, dkw.t);
  narrow(dv, dvw.t);
}

void swiglu_backward(Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up) {
  for (const Tensor* t : {&dgate, &dup, &dout, &gate, &up}) check_bf16(*t, "swiglu_backward");
  const int64_t n = gate.numel();
  LF_CHECK(dgate.numel() == n && dup.numel() == n && dout.numel() == n && up.numel() == n);
  const uint16_t *g = gate.as<const uint16_t>(), *u = up.as<const uint16_t>(), *go = dout.as<const uint16_t>();
  uint16_t *dg = dgate.as<uint16_t>(), *du = dup.as<uint16_t>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float gv = ld(g, i), sig = 1.f / (1.f + std::exp(-gv)), a = r16(gv / (1.f + std::exp(-gv))), d = ld(go, i);
    const float d_act = r16(d * ld(u, i));  // the product's backward, in bf16
    du[i] = f32_to_bf16(d * a);
    dg[i] = f32_to_bf16(d_act * sig * (1.f + gv * (1.f - sig)));  // silu's backward
  }
}

}  // namespace lorafit::cpu_bf16
