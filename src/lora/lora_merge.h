// Merging an adapter into its base weights (docs/SPEC.md "LoRA"), the inference-time twin of
// linear_forward's LoRA branch (lora_linear.h):
//   W' = round_to_dtype(float32(W) + s·B·A)
// the product and the sum in fp32 (one GEMM with beta = 1), rounded once to W's dtype; with
// DoRA (PEFT's merge) W' = round_to_dtype((m / n)·V), V = float32(W) + s·B·A, n = ‖V‖ per row.
// Used by merge at load (generate/adapter.h), `lorafit merge` and `lorafit export`.
// Letters: O/I out/in features, r rank.
#pragma once
#include <cstdint>
#include <vector>

#include "formats/safetensors.h"
#include "lora/lora_params.h"

namespace lorafit {

// The merged weight of adapted module `module`: bytes of dtype `W.dtype`, shape (O, I).
// host_params = p.download_params(); `cpu` a CPU backend (its sgemm computes the product).
// Throws Error naming the tensor for a dtype other than F32/BF16/F16.
std::vector<uint8_t> merged_weight(Backend& cpu, const TensorInfo& W, const LoraParams& p,
                                   const std::vector<float>& host_params, int module);

}  // namespace lorafit
