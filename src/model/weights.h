// The frozen base weights of a model, bound by their Hugging Face names.
//
// One table describes every parameter (HF name, expected shape, the bound tensor with its
// dtype and pointer); loading, checks, dumps and tests walk it with visit(). Per-layer views
// come only from layer(i). On the CPU backend the tensors point into the memory-mapped
// safetensors files (zero-copy, never converted); other backends get one upload per tensor.
//
// Letters: V vocab, C hidden, H heads, Hkv kv heads, D head dim, F ffn width.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "formats/model_config.h"
#include "formats/safetensors.h"

namespace lorafit {

struct ParamInfo {
  std::string name;            // HF name, "model.layers.3.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // expected from config.json
  Tensor tensor;               // bound tensor: dtype F32, BF16 or F16, shape == `shape`
};

// Views of one decoder layer's weights (empty Tensors for absent biases).
struct LayerWeights {
  Tensor attn_norm;       // (C)   input_layernorm
  Tensor q, q_bias;       // (H·D, C), (H·D)
  Tensor k, k_bias;       // (Hkv·D, C), (Hkv·D)
  Tensor v, v_bias;       // (Hkv·D, C), (Hkv·D)
  Tensor o, o_bias;       // (C, H·D), (C) (Llama, Qwen3 with attention_bias only)
  Tensor q_norm, k_norm;  // (D), (D)  Qwen3's per-head RMSNorm weights (empty otherwise)
  Tensor mlp_norm;        // (C)   post_attention_layernorm
  Tensor gate, up;        // (F, C)
  Tensor down;            // (C, F)
};

class ModelWeights {
 public:
  // Binds every tensor of the model folder `dir` (model.safetensors or an index + shards)
  // to the parameters `cfg` implies. Throws Error naming the file and tensor when one is
  // missing, unexpected, misshapen or of a dtype other than F32/BF16/F16.
  ModelWeights(Backend& be, const ModelConfig& cfg, const fs::path& dir);
  ~ModelWeights();
  ModelWeights(const ModelWeights&) = delete;
  ModelWeights& operator=(const ModelWeights&) = delete;

  const std::vector<ParamInfo>& params() const { return params_; }
  void visit(const std::function<void(const ParamInfo&)>& f) const {
    for (const auto& p : params_) f(p);
  }
  LayerWeights layer(int i) const;
  // Binds parameter `name` to `t` instead (same shape and dtype; the caller owns the memory and
  // keeps it alive), e.g. a weight with an adapter merged at load. Throws Error for an unknown
  // name, the tied embedding, or a different shape/dtype.
  void rebind(const std::string& name, Tensor t);
  // Rounds every tensor that is not BF16 to an owned BF16 copy, once (a bf16 run from an F32
  // or F16 checkpoint: the weights torch_dtype=bfloat16 would load).
  void round_to_bf16();
  Tensor embed() const { return params_[0].tensor; }       // (V, C)
  Tensor final_norm() const { return params_[1].tensor; }  // (C)
  Tensor lm_head() const { return lm_head_; }              // (V, C): the embedding when tied
  DType dtype() const { return dtype_; }                   // of the linear weights (for messages)
  int64_t num_params() const;                              // counting a tied matrix once

 private:
  Backend& be_;
  int globals_ = 0;    // table entries before layer 0
  int per_layer_ = 0;  // table entries per layer
  std::vector<ParamInfo> params_;  // [embed, final norm, (lm_head), layer 0 ..., layer 1 ...]
  Tensor lm_head_;
  DType dtype_ = DType::F32;
  std::unique_ptr<SafetensorsSet> files_;  // keeps the mappings alive
  std::vector<void*> device_copies_;       // non-CPU backends, and copies rounded to bf16
};

// The parameter names and shapes `cfg` implies, in table order (for messages and tests).
std::vector<ParamInfo> expected_params(const ModelConfig& cfg);

}  // namespace lorafit
