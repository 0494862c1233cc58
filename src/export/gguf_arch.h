// What llama.cpp's converter does per family: the GGUF architecture name, tensor names, and
// the Llama q/k row permutation. Shared by the model and the adapter export.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "formats/gguf.h"
#include "formats/model_config.h"

namespace lorafit {

struct GgufArch {
  std::string name;         // general.architecture
  bool permute_qk = false;  // LlamaModel.undo_permute
  int n_head = 0, n_kv = 0;
};

// qwen2 → "qwen2"; llama, mistral → "llama" (permuted). Others: Error naming the family.
GgufArch gguf_arch_for(const ModelConfig& cfg, const std::string& config_file);

// llama.cpp's name for an HF tensor ("model.layers.3.self_attn.q_proj.weight" →
// "blk.3.attn_q.weight"); nullopt for tensors the converter drops (rotary inv_freq).
// Error naming the tensor and file for anything else it cannot map.
std::optional<std::string> gguf_tensor_name(const std::string& hf_name, const std::string& file);

// Heads whose rows the Llama permutation reorders for this HF tensor (q: n_head, k: n_kv),
// 0 when the tensor is not permuted.
int gguf_permute_heads(const GgufArch& a, const std::string& hf_name);

// In place on rows (O, I): within each of `heads` blocks of D = O/heads rows, row a·D/2 + b
// moves to 2b + a (a ∈ {0, 1}, b < D/2).
void gguf_permute_rows(float* w, int64_t O, int64_t I, int heads);

// The ggml type a 2-D weight of row length `row` gets for the outtype (Q8_0 falls back to F16
// for rows not a multiple of 32); 1-D tensors and *_norm.weight are always F32.
GgmlType gguf_tensor_type(const std::string& gguf_name, int n_dims, int64_t row, GgmlType want, bool* fell_back);

}  // namespace lorafit
