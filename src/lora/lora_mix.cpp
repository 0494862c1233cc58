#include "lora/lora_mix.h"

#include <algorithm>

#include "lora/lora_params.h"
#include "util/error.h"

namespace lorafit {

LoraMix::LoraMix(Backend& be, int num_layers, DType act)
    : be_(be), num_layers_(num_layers), act_(act), table_(static_cast<size_t>(num_layers) * kNumProj) {}

LoraMix::~LoraMix() {
  if (xa_buf_) be_.free(xa_buf_);
  if (branch_buf_) be_.free(branch_buf_);
  if (dora_buf_) be_.free(dora_buf_);
}

void LoraMix::grow(void*& buf, int64_t& have, int64_t need, Tensor& view) {
  if (need > have) {
    if (buf) be_.free(buf);
    buf = be_.alloc(static_cast<size_t>(need) * dtype_size(act_));
    have = need;
  }
  if (buf) view = Tensor(buf, act_, {have}, be_.device());
}

void LoraMix::set(std::span<const LoraRowGroup> groups) {
  for (size_t i = 0; i < groups.size(); ++i)
    LF_CHECK(groups[i].begin < groups[i].end && (i == 0 || groups[i].begin >= groups[i - 1].end),
             "LoRA row group {}: [{}, {})", i, groups[i].begin, groups[i].end);
  int64_t xa_need = 0, branch_need = 0, dora_need = 0;
  for (int l = 0; l < num_layers_; ++l)
    for (int p = 0; p < kNumProj; ++p) {
      auto& rows = table_[static_cast<size_t>(l * kNumProj + p)];
      rows.clear();
      for (const LoraRowGroup& g : groups) {
        const LoraWeights* w = g.lora ? g.lora->weights(l, static_cast<Proj>(p)) : nullptr;
        if (w == nullptr || w->empty()) continue;
        rows.push_back({g.begin, g.end, w});
        xa_need = std::max(xa_need, (g.end - g.begin) * w->A.dim(0));  // (rows, r)
        branch_need = std::max(branch_need, (g.end - g.begin) * w->B.dim(0));  // (rows, O)
        // DoRA: t1 and t2, two (rows, O) of the activation dtype
        if (w->dora()) dora_need = std::max(dora_need, 2 * (g.end - g.begin) * w->B.dim(0));
      }
    }
  grow(xa_buf_, xa_have_, xa_need, scratch_.xa);
  if (act_ == DType::BF16) grow(branch_buf_, branch_have_, branch_need, scratch_.branch);
  grow(dora_buf_, dora_have_, dora_need, scratch_.dora);
}

std::span<const LoraRows> LoraMix::rows(int layer, Proj p) const {
  LF_CHECK(layer >= 0 && layer < num_layers_, "LoraMix layer {} of {}", layer, num_layers_);
  return table_[static_cast<size_t>(layer * kNumProj + static_cast<int>(p))];
}

}  // namespace lorafit
