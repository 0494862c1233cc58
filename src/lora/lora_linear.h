// The one place LoRA touches the model (docs/DESIGN.md §4):
//   y = x·Wᵀ + b + s·((drop(x)·Aᵀ)·Bᵀ),  s = alpha/r (alpha/√r with rsLoRA)
// and with DoRA (PEFT 0.13.2 lora/layer.py + dora.py; xd = drop(x), dropped once):
//   y = x·Wᵀ + b + (c − 1)⊙(xd·Wᵀ) + c⊙(s·(xd·Aᵀ)·Bᵀ),  c = m / n,  n = ‖W + s·B·A‖ per row,
// n detached (no gradient flows through it), m (O) trained. fp32 or bf16 activations (bf16: the
// rounding points of PEFT under torch.autocast, docs/precision.md). The arithmetic between the
// GEMMs is the backend's dora_* ops (backend.h).
// Layer code calls linear_forward for every projection, with or without an adapter.
#pragma once
#include <cstdint>
#include <span>

#include "backend/backend.h"

namespace lorafit {

// One adapted projection. A and B are views into the flat fp32 LoRA buffer.
struct LoraWeights {
  Tensor A;  // (r, I) F32
  Tensor B;  // (O, r) F32
  Tensor dA;  // (r, I) F32 gradient, accumulated (+=); may be empty for inference
  Tensor dB;  // (O, r) F32 gradient, accumulated (+=)
  Tensor m;     // (O) F32 DoRA magnitude; empty without DoRA
  Tensor dm;    // (O) F32 its gradient, accumulated (+=)
  Tensor norm;  // (O) F32 DoRA: n = ‖W + s·B·A‖ per row, written by linear_forward (detached)
  float scale = 0.f;    // s
  float dropout = 0.f;  // p; applied only when training
  bool empty() const { return A.empty(); }
  bool dora() const { return !m.empty(); }
};

// Activations the LoRA branch keeps for its backward.
struct LoraSaved {
  Tensor xa;      // (N, r)  drop(x)·Aᵀ
  Tensor xdrop;   // (N, I)  drop(x); empty when p == 0 or not training
  Tensor branch;  // (N, ≥ O) bf16 runs only: scratch for s·(xa·Bᵀ), viewed as (N, O)
  Tensor dora;    // DoRA only, scratch for t1 = xd·Wᵀ and t2 = xa·Bᵀ: ≥ 2·N·O of y's dtype
  uint64_t dropout_seed = 0;
};

// y (N,O) = x (N,I) · W (O,I)ᵀ + bias (O, may be empty) + LoRA branch (if lora non-null and
// non-empty). `saved` provides the LoRA buffers (xa always, xdrop when dropout is active).
// With BF16 activations the rounding points are PEFT's under torch.autocast(bf16)
// (docs/precision.md): y = bf16(x·Wᵀ + b) (one rounding, as addmm), xa = bf16(drop(x)·bf16(A)ᵀ),
// t = bf16(xa·bf16(B)ᵀ), u = bf16(t·s), y = bf16(y + u); saved->branch holds t and u.
void linear_forward(Backend& be, Tensor y, Tensor x, Tensor W, Tensor bias, const LoraWeights* lora,
                    LoraSaved* saved, bool training);

// Rows [begin, end) of a batch and the adapter they decode with (null: the base model alone).
struct LoraRows {
  int64_t begin = 0, end = 0;
  const LoraWeights* w = nullptr;
};

// Per-request adapters in one batched forward (inference; as punica / S-LoRA batch them):
// y (N,O) = x·Wᵀ + b once for all N rows (the base GEMM is shared), then each group's rows get
// their own adapter's branch, computed exactly as the single-adapter form above computes it
// for those rows. Groups are ascending, disjoint row ranges; rows in none are base only.
// scratch.xa holds ≥ rows·r and (bf16) scratch.branch ≥ rows·O elements for every group.
void linear_forward(Backend& be, Tensor y, Tensor x, Tensor W, Tensor bias, std::span<const LoraRows> groups,
                    const LoraSaved& scratch);

// DoRA: lora.norm (O) = ‖W + s·B·A‖ per output row, as PEFT's get_weight_norm in fp32:
// v = w + s·(B·A) elementwise in fp32, the row's sum of squares in double, rounded once.
// act BF16 (autocast): v = w + bf16(s·bf16(bf16(B)·bf16(A))) (lora_weight is a bf16 GEMM's output).
// W (O, I) F32/BF16/F16 on the backend. linear_forward calls it every time.
void dora_weight_norm(Backend& be, Tensor W, const LoraWeights& lora, DType act = DType::F32);
// DoRA's branch on top of y = x·Wᵀ + b with lora.norm as it stands (linear_forward computes it
// first; finite-difference tests hold it fixed, as PEFT's detach does).
void dora_forward(Backend& be, Tensor y, Tensor x, Tensor W, const LoraWeights& lora, LoraSaved& saved, bool training);

// Scratch the LoRA backward needs (from the caller's arena).
struct LoraGradScratch {
  Tensor dxa;  // (N, r)
  Tensor dxin; // (N, I) gradient of drop(x); needed only when dropout was active
  Tensor dys;  // (N, ≥ max(O, I)) bf16 runs: s·dy rounded to bf16, then the bf16 dx piece
  Tensor dw;   // (≥ max(O·r, r·I)) bf16 runs: the micro-batch's dB or dA in bf16 before += into F32
  Tensor dora;  // DoRA: ≥ 2·N·O F32: xd·(W + s·B·A)ᵀ, then c⊙dy | (c − 1)⊙dy;
                // bf16 runs: ≥ 2·N·max(O, I) F32 (t1, t2 and the input-gradient pieces)
};

// The backward of linear_forward with frozen W and bias:
//   dx (N,I) = dy (N,O) · W (O,I)  [+ the LoRA branch's drop⁻¹(s · dy·B·A)]   (overwritten)
//   lora->dB (O,r) += s · dyᵀ · xa ; lora->dA (r,I) += (s · dy·B)ᵀ · drop(x)   (accumulated)
// x, saved and training must be what the forward saw (xdrop/xa as it saved them).
// BF16 activations (autograd of the forward's bf16 ops): g = bf16(s·dy); dB += bf16(gᵀ·xa);
// dxa = bf16(g·bf16(B)); dA += bf16(dxaᵀ·drop(x)); dx = bf16(dx + drop⁻¹(bf16(dxa·bf16(A)))).
// dx may be empty when the caller does not need it (then only dA/dB are computed).
// DoRA (n from the forward, detached; xd = drop(x); g = c⊙dy):
//   dm += Σ_rows dy⊙(xd·Wᵀ + s·xa·Bᵀ) / n;  dB += s·gᵀ·xa;  dxa = s·g·B;  dA += dxaᵀ·xd;
//   dx = dy·W + drop⁻¹(((c − 1)⊙dy)·W + dxa·A).
// DoRA with BF16 activations: the roundings of autograd under autocast (lora_linear.cpp).
void linear_backward(Backend& be, Tensor dx, Tensor dy, Tensor x, Tensor W, const LoraWeights* lora,
                     const LoraSaved* saved, bool training, LoraGradScratch scratch);

}  // namespace lorafit
