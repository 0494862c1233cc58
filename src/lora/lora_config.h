// LoRA settings (docs/SPEC.md "LoRA") and which Linear modules they adapt.
//
// Module names are Hugging Face's, e.g. "model.layers.3.self_attn.q_proj" and
// "model.layers.3.mlp.down_proj". A target is
//   - a list of names: a module matches a name exactly or as a dotted suffix (PEFT);
//   - "all-linear": every Linear of the decoder layers (lm_head is never adapted);
//   - a regex: the whole module name must match (PEFT uses re.fullmatch for a string).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "formats/model_config.h"

namespace lorafit {

// The seven projections of a decoder layer, in the order the parameter table stores them.
// proj_name / proj_parent are the one table of their Hugging Face names: the weight names
// (model/weights.cpp), LoRA targets and module names, and PEFT adapter keys all use it.
enum class Proj : uint8_t { Q, K, V, O, Gate, Up, Down };
constexpr int kNumProj = 7;
const char* proj_name(Proj p);        // "q_proj"
const char* proj_parent(Proj p);      // "self_attn" or "mlp"
std::string proj_path(Proj p);        // "self_attn.q_proj": the module under model.layers.{i}

struct LoraTarget {
  enum class Kind : uint8_t { Names, AllLinear, Regex } kind = Kind::Names;
  std::vector<std::string> names;  // Kind::Names
  std::string regex;               // Kind::Regex
};

// "q_proj,v_proj" (names: letters, digits, '_' and '.'), "all-linear", or anything else as a
// regex. Throws Error for an empty spec or an invalid regex.
LoraTarget parse_lora_target(const std::string& spec);

struct LoraConfig {
  int r = 8;
  double alpha = 16;
  double dropout = 0;
  bool use_rslora = false;
  // DoRA (PEFT use_dora): a trainable magnitude m (O) per adapted module rescales each output
  // row of W + s·B·A to m / ‖W + s·B·A‖ (lora_linear.h).
  bool use_dora = false;
  LoraTarget target;  // PEFT's default for qwen2/llama: q_proj, v_proj
  LoraConfig() { target.names = {"q_proj", "v_proj"}; }

  // s = alpha/r, or alpha/√r with rsLoRA.
  double scale() const;
  // r ≥ 1, dropout in [0, 1), alpha finite; throws Error naming the field otherwise.
  void validate() const;
};

// One Linear module of the model with its shape.
struct LinearModule {
  std::string name;  // "model.layers.{i}.self_attn.q_proj"
  int layer = 0;
  Proj proj = Proj::Q;
  int64_t in = 0, out = 0;  // I, O (the weight is (O, I))
};

// Every Linear module of the decoder layers of `cfg`, layer by layer, in Proj order.
std::vector<LinearModule> linear_modules(const ModelConfig& cfg);

bool lora_target_matches(const LoraTarget& t, const std::string& module_name);

// The modules `cfg.target` selects. Throws Error when none matches, listing the module names
// that exist (one layer's worth) so the user can fix lora_target.
std::vector<LinearModule> select_lora_modules(const LoraConfig& cfg, const ModelConfig& model);

// One line per name of a lora_target list that matches no module of `model` (a typo such as
// vproj, or a module this architecture lacks), naming the modules the model has and a close
// name when there is one; empty when every name matches (PEFT ignores such names silently).
std::vector<std::string> lora_target_warnings(const LoraTarget& target, const ModelConfig& model);

}  // namespace lorafit
