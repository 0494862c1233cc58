#include "train/nonfinite.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "tensor/dtype.h"
#include "train/train_step.h"

namespace lorafit {

int64_t first_non_finite(Backend& be, Tensor t) {
  if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16) return -1;
  const int64_t n = t.numel();
  const size_t es = dtype_size(t.dtype);
  constexpr int64_t kChunk = 1 << 20;  // elements per download: bounded host memory
  std::vector<uint8_t> raw;            // (chunk · es) bytes as stored
  std::vector<float> f;                // (chunk)
  for (int64_t b = 0; b < n; b += kChunk) {
    const int64_t m = std::min(kChunk, n - b);
    raw.resize(static_cast<size_t>(m) * es);
    f.resize(static_cast<size_t>(m));
    be.download(raw.data(), static_cast<const uint8_t*>(t.data) + static_cast<size_t>(b) * es, raw.size());
    convert_to_f32(f.data(), raw.data(), t.dtype, static_cast<size_t>(m));
    for (int64_t i = 0; i < m; ++i)
      if (!std::isfinite(f[static_cast<size_t>(i)])) return b + i;
  }
  return -1;
}

namespace {

const char* kind_of(Backend& be, Tensor t, int64_t i) {  // "NaN" or "Inf" at element i
  std::vector<uint8_t> raw(dtype_size(t.dtype));
  be.download(raw.data(), static_cast<const uint8_t*>(t.data) + static_cast<size_t>(i) * raw.size(), raw.size());
  float v = 0;
  convert_to_f32(&v, raw.data(), t.dtype, 1);
  return std::isnan(v) ? "NaN" : "Inf";
}

// A bad input: names it and says training cannot be the cause.
std::string base_weight_message(const Model& m) {
  Backend& be = m.backend();
  for (const ParamInfo& p : m.weights().params()) {
    if (p.quant) continue;  // 4-bit codes hold no NaN; their absmax came from checked 16-bit weights
    const int64_t i = first_non_finite(be, p.tensor);
    if (i >= 0)
      return fmt::format("the base model's weight {} holds {} (element {}): the model files are damaged, so this is "
                         "bad input, not training; re-download or re-convert the model",
                         p.name, kind_of(be, p.tensor, i), i);
  }
  return "";
}

std::string lora_message(const LoraParams& lora, Backend& be, int64_t updates_done) {
  struct Section {
    Tensor t;
    const char* what;
  };
  for (const Section& s : {Section{lora.params(), "LoRA weight"}, Section{lora.adam_m(), "optimizer state exp_avg of"},
                           Section{lora.adam_v(), "optimizer state exp_avg_sq of"}}) {
    for (const LoraTensor& t : lora.tensors()) {
      const Tensor v = lora.view(s.t, t);
      const int64_t i = first_non_finite(be, v);
      if (i < 0) continue;
      if (updates_done == 0)
        return fmt::format("the {} {} holds {} before this run changed it: the adapter or checkpoint it was loaded "
                           "from is damaged, so this is bad input, not training; use another checkpoint or adapter",
                           s.what, t.key, kind_of(be, v, i));
      return fmt::format("training diverged: the {} {} became {} after {} optimizer steps; lower learning_rate, "
                         "raise warmup_steps, keep max_grad_norm at 1.0, or train in fp32",
                         s.what, t.key, kind_of(be, v, i), updates_done);
    }
  }
  return "";
}

// The forward's saved activations in the order they were computed, with their names.
std::string forward_message(const Model& m, ModelBackward& passes, bool all_layers_kept) {
  Backend& be = m.backend();
  const ActivationArena& a = passes.activations();
  const int L = m.config().num_layers;
  auto bad = [&](Tensor t) { return t.data && first_non_finite(be, t) >= 0; };
  auto diverged = [&](const std::string& where) {
    return fmt::format("the forward pass first produced NaN/Inf in {} while every weight, the adapter and the "
                       "optimizer state are finite, so training diverged (or the data drives activations past the "
                       "dtype's range); lower learning_rate, check the data, or train in fp32",
                       where);
  };
  if (bad(a.residual(0))) return diverged("the embeddings (residual.0)");
  for (int i = 0; i < L; ++i) {
    if (!bad(a.residual(i + 1))) continue;
    // The arena keeps layer i's internals when every layer is kept, or when i is the last
    // layer computed (gradient checkpointing keeps one set).
    if (all_layers_kept || i == L - 1) {
      const LayerActs la = a.layer(i);
      const std::pair<const char*, Tensor> order[] = {
          {"attn_norm", la.attn_norm}, {"q", la.q},         {"k", la.k},           {"v", la.v},
          {"attn", la.attn},           {"o_proj", la.attn_proj}, {"resid_mid", la.resid_mid},
          {"mlp_norm", la.mlp_norm},   {"gate", la.gate},   {"up", la.up},         {"mlp_act", la.mlp_act},
          {"down_proj", la.mlp_out}};
      for (const auto& [name, t] : order)
        if (bad(t)) return diverged(fmt::format("layer {} ({} output)", i, name));
    }
    return diverged(fmt::format("layer {} (its output, residual.{}; set gradient_checkpointing: false to name the "
                                "op inside the layer)",
                                i, i + 1));
  }
  if (bad(a.hidden())) return diverged("the final norm");
  return "";
}

}  // namespace

std::string diagnose_non_finite(const Model& m, const LoraParams& lora, ModelBackward& passes, const MicroBatch& mb,
                                const std::vector<int32_t>& targets, uint64_t seed, int64_t updates_done) {
  Backend& be = m.backend();
  if (std::string s = base_weight_message(m); !s.empty()) return s;
  if (std::string s = lora_message(lora, be, updates_done); !s.empty()) return s;
  const std::vector<float> loss = passes.forward(mb.B, mb.T, mb.ids, mb.pos, mb.seg, targets, /*training=*/true, seed);
  const bool all_layers_kept = passes.activations().layer_sets() == m.config().num_layers;
  if (std::string s = forward_message(m, passes, all_layers_kept); !s.empty()) return s;
  for (size_t i = 0; i < loss.size(); ++i)
    if (targets[i] != -100 && !std::isfinite(loss[i]))
      return fmt::format("the lm head's cross-entropy is {} at token {} while every activation before it is finite, "
                         "so training diverged; lower learning_rate, or train in fp32",
                         std::isnan(loss[i]) ? "NaN" : "Inf", i);
  return "";  // the forward is finite: the NaN/Inf is in the backward (the caller names the gradient)
}

}  // namespace lorafit
