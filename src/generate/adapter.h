// PEFT adapters at inference (issue 4 §5): load an adapter folder for a base model, checked
// against it; apply it unmerged (LoraParams through linear_forward) or merged into the weights
// at load; and export a merged Hugging Face folder (`lorafit merge`).
//
// Merge: lora/lora_merge.h (W' = round_to_dtype(float32(W) + s·B·A)); biases unchanged.
// Letters: O/I out/in features, r rank.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lora/lora_merge.h"
#include "lora/lora_params.h"
#include "model/model.h"

namespace lorafit {

// dir/adapter_config.json's base_model_name_or_path ("" when absent or null). Throws Error
// when the folder or its adapter_config.json is missing.
std::string adapter_base_model(const fs::path& adapter_dir);

// The base model folder an adapter names: an absolute path as is; a relative one relative to
// the working directory when it exists there, else relative to the adapter folder. Throws
// Error when none is recorded or the folder does not exist.
fs::path resolve_base_model(const fs::path& adapter_dir);

// Reads dir/adapter_config.json + dir/adapter_model.safetensors for `model`: r, alpha and
// targets from the config; every target module must exist in the model, and every tensor key
// and shape must match it (Error naming the file and tensor otherwise). LoRA dropout is off.
std::unique_ptr<LoraParams> load_adapter(Backend& be, const ModelConfig& model, const fs::path& dir);

// Host buffers holding merged weights, alive as long as the model uses them.
class MergedWeights {
 public:
  MergedWeights() = default;
  MergedWeights(const MergedWeights&) = delete;
  MergedWeights& operator=(const MergedWeights&) = delete;
  std::vector<std::vector<uint8_t>> buffers;
};

// Rebinds every adapted weight of `model` to its merge with `p` (kept in `store`); the model
// then computes as base + adapter with no LoRA branch. CPU backend only.
void merge_adapter_into(Model& model, const LoraParams& p, MergedWeights& store);

// The warning for merging an adapter trained on 4-bit base weights (QLoRA) into the 16/32-bit
// `model_dir`, "" when there is nothing to warn about. The 4-bit base is known from the adapter's
// lorafit_base_model.json ("quantization", written by lorafit train), or for a PEFT-written
// adapter (no such file) from its base_model_name_or_path being a bitsandbytes 4-bit folder here;
// otherwise a PEFT adapter carries no mark of it and nothing is said.
std::string qlora_merge_warning(const fs::path& adapter_dir, const fs::path& model_dir);

struct MergeExportOptions {
  int64_t max_shard_bytes = int64_t{2} << 30;  // 2 GiB, as transformers' "2GB"-ish default
};

// Writes `output` (which must not exist) as a Hugging Face folder: the merged weights in
// model.safetensors, or model-0000k-of-0000n.safetensors shards + model.safetensors.index.json
// when they exceed max_shard_bytes; config.json, generation_config.json and the tokenizer files
// (from the adapter folder when it has them, else the base). Written into output.tmp, renamed
// when complete. Returns the number of merged modules.
int export_merged(const fs::path& model_dir, const fs::path& adapter_dir, const fs::path& output,
                  const MergeExportOptions& opts = {});

}  // namespace lorafit
