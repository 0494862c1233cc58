// Pre-quantized bitsandbytes 4-bit checkpoints, read as transformers 4.57 + bitsandbytes 0.50
// read them (docs/quantization.md "Pre-quantized checkpoints").
//
// config.json carries `quantization_config` (BitsAndBytesConfig: load_in_4bit,
// bnb_4bit_quant_type, bnb_4bit_use_double_quant, llm_int8_skip_modules, ...). Every Linear that
// transformers' replace_with_bnb_linear converts is stored as the parameter `W.weight` (the
// packed codes, ceil(n/2) bytes in any quant_storage dtype, shape (·, 1)) with its QuantState
// beside it (bitsandbytes' QuantState.as_dict(packed=True)):
//   W.weight.absmax            (nb) F32, or (nb) U8 codes with double quantization
//   W.weight.quant_map         (16) F32 (not read by bitsandbytes' 4-bit kernels: they use the
//                              quant_type's code book; checked for size only)
//   W.weight.nested_absmax     (nn) F32     double quantization only
//   W.weight.nested_quant_map  (256) F32    double quantization only: the code of the absmax codes
//   W.weight.quant_state.bitsandbytes__<bnb_4bit_quant_type>  U8 bytes of a JSON object
//       {quant_type, blocksize, dtype, shape, [nested_blocksize, nested_dtype, nested_offset]}
// Letters: n = O·I elements, nb = ceil(n/64), nn = ceil(nb/256).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "formats/json_util.h"
#include "formats/quant4.h"
#include "formats/safetensors.h"

namespace lorafit {

// What config.json's quantization_config says about a bitsandbytes 4-bit checkpoint.
struct Bnb4bitConfig {
  Quant4Type quant_type = Quant4Type::NF4;  // bnb_4bit_quant_type: names the quant_state tensor
  bool double_quant = false;                // bnb_4bit_use_double_quant: nested_* tensors present
  std::optional<std::vector<std::string>> skip_modules;  // llm_int8_skip_modules (null: transformers' default)
  std::string compute_dtype;                // bnb_4bit_compute_dtype (recorded; lorafit computes in the run's dtype)
  std::string quant_storage = "uint8";      // bnb_4bit_quant_storage (the packed weight's element dtype)
};

// config.json's quantization_config (`config` is the whole config.json object; `label` names the
// file in messages): nullopt when there is none (or it is null); a Bnb4bitConfig for a
// bitsandbytes 4-bit one. Every other scheme is refused with an Error naming the file, the
// quant_method and what lorafit supports: bitsandbytes 8-bit (load_in_8bit), GPTQ, AWQ, AQLM,
// EETQ, HQQ, fp8, compressed-tensors, torchao, ... Method detection is transformers'
// AutoQuantizationConfig.from_dict: load_in_4bit (then load_in_8bit) decide before quant_method.
std::optional<Bnb4bitConfig> parse_quantization_config(const ordered_json& config, const std::string& label);

// Whether transformers keeps the Linear module `module` ("model.layers.1.mlp.down_proj") unquantized:
// its name (or last component) is in the skip list, or an entry `k` matches as `k == module` or
// `k + "."` inside it (replace_with_bnb_linear). Without llm_int8_skip_modules the list is
// get_keys_to_not_convert's: the lm head; with it, only the given entries (not the lm head).
bool bnb_skips_module(const Bnb4bitConfig& c, const std::string& module);

// The names of the QuantState tensors stored beside `weight_name` (what transformers collects for
// it: bnb_keys), in the order above.
std::vector<std::string> bnb4_state_names(const std::string& weight_name, const Bnb4bitConfig& c);

// Reads the 4-bit weight `weight_name` (expected (rows, cols) from config.json) and its QuantState
// from `files`, checks every tensor and the JSON (sizes, dtypes, blocksize 64 / nested 256, shape),
// and returns CPU views into the mapping (code4 the built-in code book of the JSON quant_type, as
// bitsandbytes' kernels use; code8 the checkpoint's nested_quant_map). `where` names the model's
// weights file for missing tensors. Throws Error naming the tensor and what was expected.
Quant4View read_bnb4_weight(const SafetensorsSet& files, const std::string& weight_name, int64_t rows, int64_t cols,
                            const Bnb4bitConfig& c, const std::string& where);

// For what needs 16/32-bit weights (merge, GGUF export): throws Error naming `config_label`, the
// 4-bit scheme and `what_to_do` when `c` is set.
void refuse_4bit_checkpoint(const std::optional<Bnb4bitConfig>& c, const std::string& config_label,
                            const std::string& what_to_do);

}  // namespace lorafit
