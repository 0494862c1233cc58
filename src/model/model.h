// The decoder-only transformer (Qwen2, Qwen3, Llama, Mistral) on any backend, with F32 or BF16
// activations (one dtype per run, docs/precision.md) from F32/BF16/F16 weights. The forward is
//   embedding → L × layer_forward → final rmsnorm → (lm head on selected rows only)
// and layer_forward(i, ...) is a function of its input and its saved activations alone, so the
// backward can call it again to recompute a layer (gradient checkpointing). Inference,
// generation and the training forward all run this one layer loop (forward()).
//
// Letters: B batch, T time, N = B·T, C hidden, H heads, Hkv kv heads, D head dim, F ffn, V vocab.
#pragma once
#include <array>
#include <memory>
#include <optional>
#include <string_view>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "formats/model_config.h"
#include "lora/lora_config.h"
#include "lora/lora_linear.h"
#include "model/activations.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace lorafit {

class LoraParams;
class LoraMix;

// The adapters of one layer's seven projections (Proj order); null = not adapted.
using LayerLora = std::array<const LoraWeights*, kNumProj>;
LayerLora layer_lora(const LoraParams* lora, int layer);  // all null without lora

// The saved activations of layer i with each adapted projection's LoRA dropout seed derived
// from `seed`: every (layer, projection) draws an independent mask (PEFT has one nn.Dropout
// per adapted module), and recomputing a layer with the same seed redraws the same masks.
LayerActs layer_acts(const ActivationArena& acts, int i, uint64_t seed);

class Model {
 public:
  // Reads `dir`/config.json and binds the weights of the Hugging Face folder `dir`. Throws
  // Error for a missing folder or config, an unsupported architecture or mismatched tensors.
  // act = BF16: a bf16 run; weights that are not BF16 are rounded to bf16 once here (as
  // from_pretrained(torch_dtype=torch.bfloat16) does), see weights_rounded().
  // quant.enabled: QLoRA's 4-bit base weights (ModelWeights), dequantized to `act` per layer.
  Model(Backend& be, const fs::path& dir, DType act = DType::F32, const QuantConfig& quant = {});

  const ModelConfig& config() const { return cfg_; }
  const ModelWeights& weights() const { return *weights_; }
  ModelWeights& weights() { return *weights_; }  // to rebind merged weights
  Backend& backend() const { return be_; }
  const RopeTable& rope() const { return rope_; }  // the rotary frequencies config.json implies
  DType act_dtype() const { return act_; }  // of every activation, gradient and KV cache
  // The checkpoint's linear-weight dtype, and whether a bf16 run rounded the weights at load.
  DType checkpoint_dtype() const { return checkpoint_dtype_; }
  bool weights_rounded() const { return checkpoint_dtype_ != weights_->dtype(); }
  const fs::path& dir() const { return dir_; }

  // Checks a token sequence before it reaches the backend: ids in [0, V), and a length the
  // model computes exactly as transformers does (no sliding window in effect). `what` names
  // the input in messages ("--input_ids").
  void check_input(std::span<const int32_t> ids, int64_t T, const std::string& what) const;

  // The whole forward over acts.ids() (set with set_tokens): fills residual.0..L and hidden.
  // `lora` adapts the projections it selects (null: base model); training enables LoRA dropout.
  // With `cache` (generation, B = cache B): acts holds the next T tokens at positions
  // cache->length() + t (set_tokens(ids, cache->length())); their keys/values are appended to
  // the cache and they attend over all cached positions; the cache then advances by T.
  // With `rows` too (batched generation, one KvRow per batch row): row r's tokens go to cache
  // row rows[r].slot at positions rows[r].p0 + t (the caller set them with set_tokens(ids, pos,
  // seg) and updates the row lengths); the cache's own length() is left alone.
  // seg (B,T) I32 (packed rows) or empty; dropout_seed seeds the LoRA dropout of training.
  void forward(ActivationArena& acts, const LoraParams* lora = nullptr, bool training = false,
               KvCache* cache = nullptr, std::span<const KvRow> rows = {}, Tensor seg = Tensor(),
               uint64_t dropout_seed = 0) const;
  // Batched generation with per-row adapters (`lorafit serve`): as above with `rows`, each row
  // adapted by the adapter of its LoraMix group (no dropout, no LoRA buffers in acts).
  void forward(ActivationArena& acts, const LoraMix& mix, KvCache& cache, std::span<const KvRow> rows) const;

  // One decoder layer: x_out (N,C) = x_in + attn(...) + mlp(...), saving into `a`.
  // pos (N) I32 positions; seg (B,T) I32 or empty. x_out must not alias x_in.
  // kv non-null: k/v go into the cache at kv->p0.. and attention runs over the cache.
  // mix non-null: per-row adapters (then `lora` is unused).
  void layer_forward(int i, Tensor x_out, Tensor x_in, const LayerActs& a, const LayerLora& lora, Tensor pos,
                     Tensor seg, bool training, const KvLayer* kv = nullptr, const LoraMix* mix = nullptr) const;

  // logits (R, V) F32 = rows (R, C) · lm_headᵀ, for just the rows that are needed. BF16 rows:
  // the logits are rounded to bf16 (the bf16 lm_head output, then .float() as generate does).
  void logits(Tensor out, Tensor rows) const;

 private:
  void run_layers(ActivationArena& acts, const LoraParams* lora, const LoraMix* mix, bool training, KvCache* cache,
                  std::span<const KvRow> rows, Tensor seg, uint64_t dropout_seed) const;
  Backend& be_;
  fs::path dir_;
  DType act_;
  DType checkpoint_dtype_ = DType::F32;
  ModelConfig cfg_;
  RopeTable rope_;
  std::unique_ptr<ModelWeights> weights_;
};

// The activation dtype a user asked for: "bf16" (also bfloat16) → BF16, "f32" (fp32, float32)
// → F32, "auto" → nullopt (the caller's default). Throws Error naming `what` otherwise.
std::optional<DType> parse_act_dtype(std::string_view choice, std::string_view what);
// --dtype auto of generate/chat/score: the checkpoint's dtype on a GPU (bf16 when config.json's
// torch_dtype is bfloat16), f32 on the CPU (its fp32 path is the reference; bf16 only when asked).
// `dir` is the model folder (a missing one is reported by the Model constructor).
DType inference_act_dtype(std::string_view choice, std::string_view device, const fs::path& dir);

// Next-token negative log-likelihoods of one sequence (n ≥ 2 ids): entry i = −log p(ids[i+1] |
// ids[0..i]), through the fused lm-head + cross-entropy op (never the (n, V) logits).
std::vector<double> token_nll(const Model& m, const std::vector<int32_t>& ids);
// The same from the final hidden states (n, C) of a forward already run over `ids`.
std::vector<double> token_nll_from_hidden(const Model& m, Tensor hidden, const std::vector<int32_t>& ids);

}  // namespace lorafit
