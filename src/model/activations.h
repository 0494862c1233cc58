// The activation arena of a forward pass (llm.c style): one allocation on the backend,
// described by one table of named buffers (name, dtype, shape, offset). It is sized once for
// the longest batch of a run (capacity B·T rows) and reshape(B, T) takes (B, T) views of the
// same memory for each micro-batch, so nothing is reallocated when the padded length changes.
// Per-layer views come only from layer(); every buffer can be dumped by name (save()), so a
// mismatch with the reference is found one layer at a time.
//
// Activations have the run's dtype (F32 or BF16, docs/precision.md); rstd, lse, losses stay F32.
// With `grads` the backward's gradient scratch ("grad.*") is part of the same table.
//
// Letters: B batch, T time, N = B·T, C hidden, H heads, Hkv kv heads, D head dim, F ffn, r LoRA rank.
// Names: "ids", "pos", "seg", "residual.{i}" (i = 0..L: 0 = embeddings, i = output of layer
// i−1), "final_rstd", "hidden" (after the final norm), "layers.{j}.{attn_norm, q, ...}",
// "lora_branch" (bf16 runs with LoRA), "grad.{dres0, dres1, ...}", "kv.{i}.{k, v}" (generation's
// KV cache, ArenaSpec::kv_capacity: fixed shape, not a (B, T) view).
#pragma once
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "formats/model_config.h"
#include "lora/lora_config.h"
#include "lora/lora_linear.h"

namespace lorafit {

class LoraParams;

// What one decoder layer's forward saves (views into the arena).
struct LayerActs {
  Tensor attn_norm;  // (N, C)       rmsnorm(x)
  Tensor attn_rstd;  // (N)
  Tensor q_raw;      // (B, T, H, D)   q_proj output (Qwen3 only: the input of q_norm)
  Tensor k_raw;      // (B, T, Hkv, D) k_proj output (Qwen3 only)
  Tensor q_rstd;     // (N, H) F32     q_norm's rstd (Qwen3 only)
  Tensor k_rstd;     // (N, Hkv) F32   k_norm's rstd (Qwen3 only)
  Tensor q;          // (B, T, H, D)   after (q_norm and) RoPE
  Tensor k;          // (B, T, Hkv, D) after (k_norm and) RoPE
  Tensor v;          // (B, T, Hkv, D)
  Tensor attn;       // (B, T, H, D)   attention output, input of o_proj
  Tensor lse;        // (B, H, T)
  Tensor attn_proj;  // (N, C)       o_proj output
  Tensor resid_mid;  // (N, C)       x + attn_proj
  Tensor mlp_norm;   // (N, C)       rmsnorm(resid_mid)
  Tensor mlp_rstd;   // (N)
  Tensor gate;       // (N, F)
  Tensor up;         // (N, F)
  Tensor mlp_act;    // (N, F)       silu(gate)·up
  Tensor mlp_out;    // (N, C)       down_proj output
  std::array<LoraSaved, kNumProj> lora;  // xa (N, r), xdrop (N, I): adapted projections only
};

// The gradient scratch of the backward (views into the arena; "grad.*" buffers).
struct GradBufs {
  Tensor dres[2];  // (N, C) gradient w.r.t. the residual stream, ping-pong across layers
  Tensor d_mid;    // (N, C) w.r.t. resid_mid
  Tensor d_norm;   // (N, C) w.r.t. a norm output (attn_norm, mlp_norm, hidden)
  Tensor tmp;      // (N, C) a second contribution before it is added
  Tensor d_act;    // (N, F) w.r.t. mlp_act
  Tensor d_gate;   // (N, F)
  Tensor d_up;     // (N, F)
  Tensor d_attn;   // (B, T, H, D) w.r.t. the attention output
  Tensor dq;       // (B, T, H, D)
  Tensor dk, dv;   // (B, T, Hkv, D)
  Tensor loss, lse, dloss;  // (N) F32
  Tensor targets;           // (N) I32
  LoraGradScratch lora;     // dxa (N, r); dxin (N, max I) with dropout; dys, dw in bf16 runs
};

// What an arena holds, sized for its capacity (the longest batch of the run).
struct ArenaSpec {
  int64_t B = 1, T = 1;    // capacity: B·T rows
  int layer_sets = 1;      // num_layers (inference, no checkpointing) or 1 (checkpointing)
  DType act = DType::F32;  // activation dtype
  const LoraParams* lora = nullptr;  // LoRA buffers for its adapted projections
  bool lora_dropout = false;         // xdrop buffers (and grad.dxin)
  bool grads = false;                // the backward's GradBufs
  // Generation: the KV cache in the same table, (kv_rows, kv_capacity, Hkv, D) per layer for
  // k and v (model/kv_cache.h views them). 0: none.
  int64_t kv_rows = 0, kv_capacity = 0;
};

class ActivationArena {
 public:
  // Dimensions of a buffer's shape: a size, or one of these placeholders for the current
  // batch (a view's shape) or the capacity (the table's shape).
  static constexpr int64_t kB = -1, kT = -2, kN = -3;
  struct Buffer {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;  // at capacity
    size_t offset;               // bytes from the arena start, 64-aligned
    std::vector<int64_t> dims;   // shape with kB/kT/kN placeholders
  };

  ActivationArena(Backend& be, const ModelConfig& cfg, const ArenaSpec& spec);
  // layer_sets: num_layers keeps every layer's activations (inference, training without
  // checkpointing); 1 keeps one set that each layer reuses (gradient checkpointing).
  // With `lora`, LoRA buffers are added for the adapted projections (xdrop when
  // lora_dropout is set).
  ActivationArena(Backend& be, const ModelConfig& cfg, int64_t B, int64_t T, int layer_sets,
                  const LoraParams* lora = nullptr, bool lora_dropout = false, DType act = DType::F32);
  ~ActivationArena();
  ActivationArena(const ActivationArena&) = delete;
  ActivationArena& operator=(const ActivationArena&) = delete;

  int64_t B() const { return B_; }
  int64_t T() const { return T_; }
  int64_t capacity() const { return cap_; }  // rows (B·T) the buffers hold
  // Views for a batch of (B, T) from now on (B·T ≤ capacity()); the memory is not touched.
  void reshape(int64_t B, int64_t T);
  DType act_dtype() const { return act_; }
  int layer_sets() const { return layer_sets_; }
  size_t bytes() const { return bytes_; }
  const std::vector<Buffer>& buffers() const { return buffers_; }
  bool has(const std::string& name) const { return !view_or_empty(name).empty(); }
  void visit(const std::function<void(const Buffer&, Tensor)>& f) const;
  Tensor get(const std::string& name) const;  // LF_CHECKs that the name exists

  Tensor ids() const { return get("ids"); }  // (B, T) I32
  Tensor pos() const { return get("pos"); }  // (N) I32
  Tensor seg() const { return get("seg"); }  // (B, T) I32: sample index within a packed row
  Tensor residual(int i) const;              // (N, C), i = 0..L
  Tensor hidden() const { return get("hidden"); }          // (N, C) after the final norm
  Tensor final_rstd() const { return get("final_rstd"); }  // (N)
  // The saved activations of layer i (set i, or set 0 when only one set is kept).
  LayerActs layer(int i) const;
  // The gradient scratch (arena made with grads).
  GradBufs grads() const;

  // Uploads ids (B·T) and positions p0..p0+T−1 of each row (no packing: seg unused); p0 > 0
  // for the tokens after a KV cache's p0 positions.
  void set_tokens(const std::vector<int32_t>& ids, int64_t p0 = 0);
  // Packed rows: ids, per-token positions (restarting at 0 in each sample) and seg, all (B·T).
  void set_tokens(const std::vector<int32_t>& ids, const std::vector<int32_t>& pos, const std::vector<int32_t>& seg);

  // Writes every buffer (host copies, I32 and F32 as they are) to a safetensors file.
  void save(const fs::path& path) const;

 private:
  Tensor view(const Buffer& b) const;
  Tensor view_or_empty(const std::string& name) const;
  Backend& be_;
  int64_t B_, T_, cap_;
  DType act_;
  int layer_sets_;
  bool grads_;
  bool qk_norm_;  // the q_norm / k_norm buffers exist (Qwen3)
  std::vector<Buffer> buffers_;
  std::vector<size_t> layer_first_;  // index in buffers_ of each layer set's first buffer
  size_t bytes_ = 0;
  char* base_ = nullptr;
};

}  // namespace lorafit
