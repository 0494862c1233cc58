#include "lora/lora_linear.h"

namespace lorafit {

void linear_forward(Backend& be, Tensor y, Tensor x, Tensor W, Tensor bias, const LoraWeights* lora,
                    LoraSaved* saved, bool training) {
  be.matmul(y, x, false, W, true, 1.f, 0.f);
  if (!bias.empty()) be.add_bias(y, bias);
  if (lora == nullptr || lora->empty()) return;
  LF_CHECK(saved != nullptr && !saved->xa.empty(), "LoRA forward needs a saved xa buffer");
  Tensor in = x;
  if (training && lora->dropout > 0.f) {
    LF_CHECK(!saved->xdrop.empty(), "LoRA dropout needs a saved xdrop buffer");
    be.dropout(saved->xdrop, x, lora->dropout, saved->dropout_seed);
    in = saved->xdrop;
  }
  be.matmul(saved->xa, in, false, lora->A, true, 1.f, 0.f);           // (N, r)
  be.matmul(y, saved->xa, false, lora->B, true, lora->scale, 1.f);    // y += s · xa·Bᵀ
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
  be.matmul(lora->dB, dy, true, saved->xa, false, lora->scale, 1.f);  // dB += s·dyᵀ·xa
  be.matmul(scratch.dxa, dy, false, lora->B, false, lora->scale, 0.f);  // dxa = s·dy·B
  be.matmul(lora->dA, scratch.dxa, true, in, false, 1.f, 1.f);        // dA += dxaᵀ·drop(x)
  if (dx.empty()) return;
  if (!dropped) {
    be.matmul(dx, scratch.dxa, false, lora->A, false, 1.f, 1.f);  // dx += dxa·A
    return;
  }
  LF_CHECK(!scratch.dxin.empty(), "LoRA backward with dropout needs a dxin scratch buffer");
  be.matmul(scratch.dxin, scratch.dxa, false, lora->A, false, 1.f, 0.f);  // d drop(x)
  be.dropout(scratch.dxin, scratch.dxin, lora->dropout, saved->dropout_seed);  // same mask, same 1/(1−p)
  be.add(dx, dx, scratch.dxin);
}

}  // namespace lorafit
