#include "lora/lora_linear.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "util/error.h"

namespace lorafit {

namespace {

// DoRA's elementwise steps run on host memory: DoRA is CPU-only with fp32 activations.
void require_dora_cpu(Backend& be, DType act) {
  if (be.device() != Device::CPU || act != DType::F32)
    throw Error("a DoRA adapter (use_dora) runs on the CPU backend with fp32 activations only, not {} with {}; use "
                "--device cpu and --dtype f32 (or merge it into the weights: --merge)",
                be.name(), dtype_name(act));
}

// c (O) = m / n, as PEFT's mag_norm_scale.
std::vector<float> dora_scale(const LoraWeights& l) {
  const int64_t O = l.m.numel();
  const float* m = l.m.as<float>();
  const float* n = l.norm.as<float>();
  std::vector<float> c(static_cast<size_t>(O));
  for (int64_t o = 0; o < O; ++o) c[static_cast<size_t>(o)] = m[o] / n[o];
  return c;
}

// The first rows·cols elements of a scratch buffer as a (rows, cols) matrix.
Tensor part(Tensor buf, int64_t rows, int64_t cols) {
  LF_CHECK(!buf.empty() && buf.numel() >= rows * cols, "LoRA scratch {} for ({}, {})", buf.shape_str(), rows, cols);
  return Tensor(buf.data, buf.dtype, {rows, cols}, buf.device);
}

// y (N,O) = x·Wᵀ + b, the base projection every row shares.
void base_forward(Backend& be, Tensor y, Tensor x, Tensor W, Tensor bias) {
  if (y.dtype == DType::BF16 && !bias.empty()) {  // y = bf16(x·Wᵀ + b), one rounding as torch's addmm
    be.scale(y, 0.f);
    be.add_bias(y, bias);
    be.matmul(y, x, false, W, true, 1.f, 1.f);
  } else {
    be.matmul(y, x, false, W, true, 1.f, 0.f);
    if (!bias.empty()) be.add_bias(y, bias);
  }
}

// y (N,O) += s·((in·Aᵀ)·Bᵀ): the LoRA branch, the one place its arithmetic lives. xa (N, r) is
// written (the backward reads it); branch (≥ N·O) is the bf16 runs' scratch for t.
void add_branch(Backend& be, Tensor y, Tensor in, const LoraWeights& lora, Tensor xa, Tensor branch) {
  be.matmul(xa, in, false, lora.A, true, 1.f, 0.f);  // (N, r)
  if (y.dtype != DType::BF16) {
    be.matmul(y, xa, false, lora.B, true, lora.scale, 1.f);  // y += s · xa·Bᵀ
    return;
  }
  const Tensor t = part(branch, y.dim(0), y.dim(1));  // (N, O)
  be.matmul(t, xa, false, lora.B, true, 1.f, 0.f);    // t = lora_B(xa)
  be.scale(t, lora.scale);                            // · scaling
  be.add(y, y, t);                                    // result + ...
}

}  // namespace

void linear_forward(Backend& be, Tensor y, Tensor x, Tensor W, Tensor bias, const LoraWeights* lora,
                    LoraSaved* saved, bool training) {
  base_forward(be, y, x, W, bias);
  if (lora == nullptr || lora->empty()) return;
  LF_CHECK(saved != nullptr && !saved->xa.empty(), "LoRA forward needs a saved xa buffer");
  if (lora->dora()) {
    dora_weight_norm(be, W, *lora);
    dora_forward(be, y, x, W, *lora, *saved, training);
    return;
  }
  Tensor in = x;
  if (training && lora->dropout > 0.f) {
    LF_CHECK(!saved->xdrop.empty(), "LoRA dropout needs a saved xdrop buffer");
    be.dropout(saved->xdrop, x, lora->dropout, saved->dropout_seed);
    in = saved->xdrop;
  }
  add_branch(be, y, in, *lora, saved->xa, saved->branch);
}

void linear_forward(Backend& be, Tensor y, Tensor x, Tensor W, Tensor bias, std::span<const LoraRows> groups,
                    const LoraSaved& scratch) {
  base_forward(be, y, x, W, bias);
  int64_t prev_end = 0;
  for (const LoraRows& g : groups) {
    LF_CHECK(g.begin >= prev_end && g.begin < g.end && g.end <= y.dim(0), "LoRA row group [{}, {}) of {} rows",
             g.begin, g.end, y.dim(0));
    prev_end = g.end;
    if (g.w == nullptr || g.w->empty()) continue;
    const Tensor xa = part(scratch.xa, g.end - g.begin, g.w->A.dim(0));  // (rows, r) of this adapter's rank
    if (g.w->dora()) {  // the same DoRA branch as the single-adapter form, on this group's rows
      LoraSaved s;
      s.xa = xa;
      s.dora = scratch.dora;
      dora_weight_norm(be, W, *g.w);
      dora_forward(be, y.rows(g.begin, g.end), x.rows(g.begin, g.end), W, *g.w, s, false);
      continue;
    }
    add_branch(be, y.rows(g.begin, g.end), x.rows(g.begin, g.end), *g.w, xa, scratch.branch);
  }
}

void dora_weight_norm(Backend& be, Tensor W, const LoraWeights& lora) {
  require_dora_cpu(be, DType::F32);
  const int64_t O = W.dim(0), I = W.dim(1), r = lora.A.dim(0);
  LF_CHECK(lora.norm.numel() == O && lora.B.dim(0) == O && lora.A.dim(1) == I, "DoRA norm shapes");
  constexpr int64_t kRows = 64;  // rows of B·A per GEMM: bounded scratch for any O
  std::vector<float> ba(static_cast<size_t>(kRows * I));  // (rows, I) B[rows]·A
  std::vector<float> w(static_cast<size_t>(I));           // (I) one row of W in fp32
  float* n = lora.norm.as<float>();
  const size_t esz = dtype_size(W.dtype);
  for (int64_t o0 = 0; o0 < O; o0 += kRows) {
    const int64_t rows = std::min(kRows, O - o0);
    const Tensor Bs(lora.B.as<float>() + o0 * r, DType::F32, {rows, r}, be.device());
    be.matmul(Tensor(ba.data(), DType::F32, {rows, I}), Bs, false, lora.A, false, 1.f, 0.f);
    for (int64_t i = 0; i < rows; ++i) {
      convert_to_f32(w.data(), static_cast<const uint8_t*>(W.data) + static_cast<size_t>((o0 + i) * I) * esz, W.dtype,
                     w.size());
      double ss = 0;
      for (int64_t k = 0; k < I; ++k) {
        const float v = w[static_cast<size_t>(k)] + lora.scale * ba[static_cast<size_t>(i * I + k)];  // weight + scaling·lora_weight
        ss += static_cast<double>(v) * v;
      }
      n[o0 + i] = static_cast<float>(std::sqrt(ss));
    }
  }
}

void dora_forward(Backend& be, Tensor y, Tensor x, Tensor W, const LoraWeights& lora, LoraSaved& saved, bool training) {
  require_dora_cpu(be, y.dtype);
  const int64_t N = y.dim(0), O = y.dim(1);
  Tensor in = x;  // xd: PEFT drops x out once, for both W and the LoRA branch
  if (training && lora.dropout > 0.f) {
    LF_CHECK(!saved.xdrop.empty(), "LoRA dropout needs a saved xdrop buffer");
    be.dropout(saved.xdrop, x, lora.dropout, saved.dropout_seed);
    in = saved.xdrop;
  }
  be.matmul(saved.xa, in, false, lora.A, true, 1.f, 0.f);  // (N, r)
  const Tensor u = part(saved.dora, N, O);                 // (N, O)
  const std::vector<float> c = dora_scale(lora);
  float* py = y.as<float>();
  const float* pu = u.as<float>();
  be.matmul(u, in, false, W, true, 1.f, 0.f);  // F.linear(xd, W): no bias
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) py[n * O + o] += (c[static_cast<size_t>(o)] - 1.f) * pu[n * O + o];
  be.matmul(u, saved.xa, false, lora.B, true, 1.f, 0.f);  // lora_B(lora_A(xd))
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) py[n * O + o] += c[static_cast<size_t>(o)] * pu[n * O + o] * lora.scale;
}

namespace {

void dora_backward(Backend& be, Tensor dx, Tensor dy, Tensor in, const LoraWeights& lora, const LoraSaved& saved,
                   bool dropped, Tensor W, const LoraGradScratch& scratch) {
  require_dora_cpu(be, dy.dtype);
  LF_CHECK(!lora.dm.empty(), "DoRA backward needs a dm view");
  const int64_t N = dy.dim(0), O = dy.dim(1);
  const Tensor S = part(scratch.dora, N, O);  // (N, O)
  float* ps = S.as<float>();
  const float* pdy = dy.as<float>();
  const float* n = lora.norm.as<float>();
  const std::vector<float> c = dora_scale(lora);
  // dm = Σ_rows dy⊙v / n, v = xd·Wᵀ + s·xa·Bᵀ (what c multiplies; ∂c/∂m = 1/n).
  be.matmul(S, in, false, W, true, 1.f, 0.f);
  be.matmul(S, saved.xa, false, lora.B, true, lora.scale, 1.f);
  std::vector<double> dc(static_cast<size_t>(O), 0.0);
  for (int64_t r = 0; r < N; ++r)
    for (int64_t o = 0; o < O; ++o) dc[static_cast<size_t>(o)] += static_cast<double>(pdy[r * O + o]) * ps[r * O + o];
  float* dm = lora.dm.as<float>();
  for (int64_t o = 0; o < O; ++o) dm[o] += static_cast<float>(dc[static_cast<size_t>(o)] / n[o]);
  // The LoRA branch sees g = c⊙dy.
  for (int64_t r = 0; r < N; ++r)
    for (int64_t o = 0; o < O; ++o) ps[r * O + o] = c[static_cast<size_t>(o)] * pdy[r * O + o];
  be.matmul(lora.dB, S, true, saved.xa, false, lora.scale, 1.f);     // dB += s·gᵀ·xa
  be.matmul(scratch.dxa, S, false, lora.B, false, lora.scale, 0.f);  // dxa = s·g·B
  be.matmul(lora.dA, scratch.dxa, true, in, false, 1.f, 1.f);        // dA += dxaᵀ·xd
  if (dx.empty()) return;
  // The (c − 1)⊙(xd·Wᵀ) term's input gradient joins the branch's before drop⁻¹.
  for (int64_t r = 0; r < N; ++r)
    for (int64_t o = 0; o < O; ++o) ps[r * O + o] = (c[static_cast<size_t>(o)] - 1.f) * pdy[r * O + o];
  Tensor d = dx;
  if (dropped) {
    LF_CHECK(!scratch.dxin.empty(), "LoRA backward with dropout needs a dxin scratch buffer");
    d = scratch.dxin;
    be.matmul(d, S, false, W, false, 1.f, 0.f);
  } else {
    be.matmul(d, S, false, W, false, 1.f, 1.f);
  }
  be.matmul(d, scratch.dxa, false, lora.A, false, 1.f, 1.f);
  if (!dropped) return;
  be.dropout(d, d, lora.dropout, saved.dropout_seed);  // same mask, same 1/(1−p)
  be.add(dx, dx, d);
}

}  // namespace

void linear_backward(Backend& be, Tensor dx, Tensor dy, Tensor x, Tensor W, const LoraWeights* lora,
                     const LoraSaved* saved, bool training, LoraGradScratch scratch) {
  if (!dx.empty()) be.matmul(dx, dy, false, W, false, 1.f, 0.f);  // dx = dy·W
  if (lora == nullptr || lora->empty()) return;
  LF_CHECK(saved != nullptr && !saved->xa.empty() && !scratch.dxa.empty(),
           "LoRA backward needs the saved xa and a dxa scratch buffer");
  LF_CHECK(!lora->dA.empty() && !lora->dB.empty(), "LoRA backward needs dA/dB views");
  const bool dropped = training && lora->dropout > 0.f;
  const Tensor in = dropped ? saved->xdrop : x;  // (N, I) what A saw
  LF_CHECK(!in.empty(), "LoRA backward: the forward's drop(x) was not saved");
  if (lora->dora()) {
    dora_backward(be, dx, dy, in, *lora, *saved, dropped, W, scratch);
    return;
  }
  if (dy.dtype != DType::BF16) {
    be.matmul(lora->dB, dy, true, saved->xa, false, lora->scale, 1.f);   // dB += s·dyᵀ·xa
    be.matmul(scratch.dxa, dy, false, lora->B, false, lora->scale, 0.f);  // dxa = s·dy·B
    be.matmul(lora->dA, scratch.dxa, true, in, false, 1.f, 1.f);         // dA += dxaᵀ·drop(x)
  } else {
    const int64_t N = dy.dim(0), O = dy.dim(1), r = lora->A.dim(0), I = lora->A.dim(1);
    const Tensor g = part(scratch.dys, N, O);
    be.convert(g, dy);
    be.scale(g, lora->scale);                                     // g = bf16(s·dy)
    const Tensor dB16 = part(scratch.dw, O, r), dA16 = part(scratch.dw, r, I);
    be.matmul(dB16, g, true, saved->xa, false, 1.f, 0.f);         // bf16(gᵀ·xa)
    be.add(lora->dB, lora->dB, dB16);                             // dB += (fp32)
    be.matmul(scratch.dxa, g, false, lora->B, false, 1.f, 0.f);   // dxa = bf16(g·B)
    be.matmul(dA16, scratch.dxa, true, in, false, 1.f, 0.f);      // bf16(dxaᵀ·drop(x))
    be.add(lora->dA, lora->dA, dA16);                             // dA += (fp32)
  }
  if (dx.empty()) return;
  if (!dropped) {
    if (dx.dtype != DType::BF16) {
      be.matmul(dx, scratch.dxa, false, lora->A, false, 1.f, 1.f);  // dx += dxa·A
    } else {  // the LoRA input gradient is its own bf16 tensor before autograd adds it to dx
      const Tensor dd = part(scratch.dys, dx.dim(0), dx.dim(1));
      be.matmul(dd, scratch.dxa, false, lora->A, false, 1.f, 0.f);
      be.add(dx, dx, dd);
    }
    return;
  }
  LF_CHECK(!scratch.dxin.empty(), "LoRA backward with dropout needs a dxin scratch buffer");
  be.matmul(scratch.dxin, scratch.dxa, false, lora->A, false, 1.f, 0.f);  // d drop(x)
  be.dropout(scratch.dxin, scratch.dxin, lora->dropout, saved->dropout_seed);  // same mask, same 1/(1−p)
  be.add(dx, dx, scratch.dxin);
}

}  // namespace lorafit
