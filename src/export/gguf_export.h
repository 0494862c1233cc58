// `lorafit export --format gguf|gguf-lora`: a model (merged with an adapter) or an adapter
// alone as llama.cpp's convert_hf_to_gguf.py / convert_lora_to_gguf.py write them.
//
// Model file (gguf_model.cpp): general.* (architecture, type, name, size_label, file_type,
// quantization_version), the family's hyperparameter keys read from config.json as the
// converter reads them, the tokenizer (gguf_vocab.h), and the tensors renamed to llama.cpp's
// names (token_embd, blk.N.attn_q, ..., output_norm, output) in the converter's order
// (safetensors file, then name). Llama/Mistral q/k rows are permuted per head as llama.cpp's
// rotary layout needs (LlamaModel.permute: row h·D + a·D/2 + b moves to h·D + 2b + a).
// Norms and 1-D tensors are F32; 2-D weights take the outtype, except Q8_0 of a row length
// not a multiple of 32, which falls back to F16 as the converter does. Merged weights are
// lora/lora_merge.h's W' (rounded to the base dtype, as `lorafit merge` writes them), so an
// export with --adapter equals the export of the merged folder.
//
// Adapter file (gguf_lora.cpp): general.type "adapter", adapter.type "lora",
// adapter.lora.alpha, tensors blk.N.<name>.weight.lora_a (A, ggml dims [I, r]) and .lora_b
// (B, dims [r, O], q/k rows permuted like the weight). llama.cpp scales by alpha/r; for an
// rsLoRA adapter (s = alpha/√r) alpha is written as s·r so that llama.cpp applies the scale
// PEFT does (the converter ignores use_rslora and would write alpha).
//
// Both stream one tensor at a time (never the whole model in memory) into an atomic file.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "export/gguf_vocab.h"
#include "formats/gguf.h"
#include "util/file.h"

namespace lorafit {

enum class GgufOutType { F32, F16, BF16, Q8_0 };
// "f32", "f16", "bf16", "q8_0"; Error naming the value and the choices otherwise.
GgufOutType parse_gguf_outtype(const std::string& s);
// convert_hf_to_gguf's --outtype auto: the type of the first 2-D BF16 or F16 tensor, else F16.
GgufOutType gguf_auto_outtype(const fs::path& model_dir);

struct GgufExportOptions {
  fs::path model_dir;
  fs::path adapter_dir;  // empty: the model alone
  fs::path output;       // the .gguf file
  GgufOutType outtype = GgufOutType::F16;
  bool overwrite = false;
  GgufProgress progress;  // bytes written so far, total
};

struct GgufExportResult {
  std::string arch;              // "qwen2", "llama", ...
  int merged_modules = 0;        // adapted modules merged (0 without an adapter)
  int tensors = 0;
  int fallback_f16 = 0;          // Q8_0 requested but the row length is not a multiple of 32
  uint64_t bytes = 0;            // tensor data written
  GgufVocabInfo vocab;           // tokenizer facts (for the Modelfile)
  fs::path tokenizer_dir;        // where the tokenizer files were read
};

// Checks everything (family, dtypes, tokenizer, adapter) before creating any file; refuses an
// existing output unless overwrite. Throws Error naming the file or tensor.
GgufExportResult export_gguf_model(const GgufExportOptions& o);
GgufExportResult export_gguf_lora(const GgufExportOptions& o);

// Python's str.title() per word as gguf-py's Metadata.id_to_title (the converter's
// general.name from a folder name): "qwen2-tok" -> "Qwen2 Tok"; words with capitals or
// starting with a digit or "v<digit>" are kept.
std::string gguf_title_from_id(const std::string& id);

// gguf-py's size_label: "1.2M", "7.6B", "121K".
std::string gguf_size_label(uint64_t params);

}  // namespace lorafit
