#include "lora/lora_linear.h"

namespace lorafit {

namespace {

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
    add_branch(be, y.rows(g.begin, g.end), x.rows(g.begin, g.end), *g.w, xa, scratch.branch);
  }
}

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
