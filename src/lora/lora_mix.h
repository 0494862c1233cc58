// Per-request adapters inside one batched forward (`lorafit serve`): which rows of the batch
// decode with which adapter, as each projection's LoraRows for linear_forward's grouped form,
// and the scratch their branches share. The caller orders its batch so that the rows of one
// adapter are one range (punica / S-LoRA's segments); the base GEMM stays one for all rows.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "lora/lora_config.h"
#include "lora/lora_linear.h"

namespace lorafit {

class LoraParams;

// Rows [begin, end) of the batch use `lora` (null: the base model alone).
struct LoraRowGroup {
  int64_t begin = 0, end = 0;
  const LoraParams* lora = nullptr;
};

class LoraMix {
 public:
  // Scratch in `act` (the model's activation dtype) on `be`, grown by set() as needed.
  LoraMix(Backend& be, int num_layers, DType act);
  ~LoraMix();
  LoraMix(const LoraMix&) = delete;
  LoraMix& operator=(const LoraMix&) = delete;

  // The groups of the next forward: ascending, disjoint ranges (the adapters must outlive
  // the forward). Grows the scratch to the largest group × its rank (and × O in bf16 runs).
  void set(std::span<const LoraRowGroup> groups);
  // Layer `layer`'s projection p: the groups whose adapter adapts it, with its weights.
  std::span<const LoraRows> rows(int layer, Proj p) const;
  const LoraSaved& scratch() const { return scratch_; }  // xa, branch: flat, viewed per group

 private:
  void grow(void*& buf, int64_t& have, int64_t need, Tensor& view);
  Backend& be_;
  int num_layers_;
  DType act_;
  std::vector<std::vector<LoraRows>> table_;  // (num_layers · kNumProj)
  void* xa_buf_ = nullptr;                    // (≥ rows · r) act dtype
  void* branch_buf_ = nullptr;                // (≥ rows · O) act dtype, bf16 runs only
  void* dora_buf_ = nullptr;                  // (≥ rows · O) DoRA adapters (fp32 runs only)
  int64_t xa_have_ = 0, branch_have_ = 0, dora_have_ = 0;  // elements
  LoraSaved scratch_;
};

}  // namespace lorafit
