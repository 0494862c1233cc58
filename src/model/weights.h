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
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "formats/model_config.h"
#include "formats/safetensors.h"

namespace lorafit {

// How the base weights became 4-bit: quantized at load (--quantization_bit 4) or read from a
// pre-quantized bitsandbytes checkpoint (for messages and the adapter's lorafit_base_model.json).
struct Quant4Source {
  Quant4Type type = Quant4Type::NF4;
  bool double_quant = false;
  bool from_checkpoint = false;
};

struct ParamInfo {
  std::string name;            // HF name, "model.layers.3.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // expected from config.json
  Tensor tensor;               // bound tensor: dtype F32, BF16 or F16, shape == `shape`; for a
                               // 4-bit weight data is null and dtype that of its dequantized form
  const Quant4View* quant = nullptr;  // the 4-bit weight (quantized at load), else null
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
  // A folder whose config.json has a bitsandbytes 4-bit quantization_config (cfg.bnb4) is read
  // as transformers reads it (formats/bnb_checkpoint.h): the projections it quantized are bound
  // as 4-bit weights from their stored codes, whatever `quant` says.
  // quant.enabled: the projections' weights (q, k, v, o, gate, up, down) are quantized to 4 bits
  // at load, one tensor at a time straight from the mapping (bitsandbytes' quantize_4bit; no
  // 16-bit copy of the model is made); layer(i) then dequantizes layer i's seven into one
  // per-layer scratch of dtype `dequant` (the run's compute dtype, F32 or BF16).
  ModelWeights(Backend& be, const ModelConfig& cfg, const fs::path& dir, const QuantConfig& quant = {},
               DType dequant = DType::F32);
  ~ModelWeights();
  ModelWeights(const ModelWeights&) = delete;
  ModelWeights& operator=(const ModelWeights&) = delete;

  const std::vector<ParamInfo>& params() const { return params_; }
  void visit(const std::function<void(const ParamInfo&)>& f) const {
    for (const auto& p : params_) f(p);
  }
  // Views of layer i's weights. With 4-bit weights the projections are dequantized into the
  // per-layer scratch (once per layer visited; the views stay valid until layer(j ≠ i)).
  LayerWeights layer(int i) const;
  bool quantized() const { return !quant_.empty(); }
  const std::optional<Quant4Source>& quant_source() const { return quant_source_; }  // set when quantized()
  size_t quantized_bytes() const;  // device bytes of the 4-bit weights (codes + absmax)
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
  // 4-bit weights: host data (CPU: the views point here), their views, and the scratch.
  std::vector<Quant4Host> quant_host_;
  std::vector<std::unique_ptr<Quant4View>> quant_;  // stable addresses (ParamInfo::quant)
  DType dequant_ = DType::F32;
  std::optional<Quant4Source> quant_source_;
  size_t scratch_bytes_ = 0;     // one layer's projections dequantized
  mutable void* scratch_ = nullptr;
  mutable int scratch_layer_ = -1;
  void quantize_projections(const QuantConfig& quant, DType act);
  // A pre-quantized (bitsandbytes 4-bit) checkpoint's weights: views into the mapping, uploaded
  // to the device when it is not the CPU.
  void install_prequantized(std::vector<std::pair<ParamInfo*, Quant4View>>& weights, DType dequant);
  void bind_quantized(ParamInfo& p, std::unique_ptr<Quant4View> view, DType dequant);
  void size_scratch();     // scratch_bytes_: the largest layer's 4-bit weights dequantized
  Tensor to_device(Tensor t);  // the CPU tensor t itself, or a device copy (owned here)
};

// The parameter names and shapes `cfg` implies, in table order (for messages and tests).
std::vector<ParamInfo> expected_params(const ModelConfig& cfg);
// The note for --quantization_bit 4 given with a pre-quantized checkpoint, which keeps its stored
// 4-bit weights (LLaMA-Factory: quantization_bit does not affect PTQ-quantized models); "" otherwise.
std::string quantization_bit_note(const ModelConfig& cfg, const QuantConfig& q);
// "4-bit nf4 with double quantization" (for messages).
std::string quant4_description(const Quant4Source& s);
// Whether `name` is a projection weight (q/k/v/o/gate/up/down_proj.weight): what QLoRA quantizes.
bool is_projection_weight(const std::string& name);

}  // namespace lorafit
