#include "lora/lora_adapter.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "formats/json_util.h"
#include "formats/safetensors.h"
#include "util/error.h"

namespace lorafit {

namespace {

nlohmann::json number_json(double x) {
  // Python writes an int alpha as "16" and a float as "16.0"; an integral value is written as an int.
  if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 1e15) return static_cast<int64_t>(x);
  return x;
}

nlohmann::json target_modules_json(const LoraParams& p) {
  const LoraTarget& t = p.config().target;
  if (t.kind == LoraTarget::Kind::Regex) return t.regex;
  std::set<std::string> names;
  if (t.kind == LoraTarget::Kind::Names) {
    names.insert(t.names.begin(), t.names.end());
  } else {  // PEFT expands all-linear to the short names of the modules it found
    for (const LinearModule& m : p.modules()) names.insert(proj_name(m.proj));
  }
  return nlohmann::json(std::vector<std::string>(names.begin(), names.end()));
}

}  // namespace

std::string peft_adapter_config_json(const LoraParams& p, const std::string& base_model_name_or_path) {
  const LoraConfig& c = p.config();
  nlohmann::json j;  // std::map keys: sorted, as json.dumps(sort_keys=True)
  j["alpha_pattern"] = nlohmann::json::object();
  j["auto_mapping"] = nullptr;
  j["base_model_name_or_path"] = base_model_name_or_path;
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["init_lora_weights"] = true;
  j["layer_replication"] = nullptr;
  j["layers_pattern"] = nullptr;
  j["layers_to_transform"] = nullptr;
  j["loftq_config"] = nlohmann::json::object();
  j["lora_alpha"] = number_json(c.alpha);
  j["lora_dropout"] = c.dropout;
  j["megatron_config"] = nullptr;
  j["megatron_core"] = "megatron.core";
  j["modules_to_save"] = nullptr;
  j["peft_type"] = "LORA";
  j["r"] = c.r;
  j["rank_pattern"] = nlohmann::json::object();
  j["revision"] = nullptr;
  j["target_modules"] = target_modules_json(p);
  j["task_type"] = "CAUSAL_LM";
  j["use_dora"] = c.use_dora;
  j["use_rslora"] = c.use_rslora;
  return j.dump(2, ' ', /*ensure_ascii=*/true);  // json.dumps(indent=2) escapes non-ASCII too
}

void save_peft_adapter(const fs::path& dir, const LoraParams& p, const std::string& base_model_name_or_path) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create adapter folder {}: {}", dir.string(), ec.message());
  const std::vector<float> h = p.download_params();  // (P)
  std::vector<TensorToWrite> ts;
  for (const LoraTensor& t : p.tensors()) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(h.data() + t.offset);
    ts.push_back({t.key, DType::F32, t.shape(),
                  std::span<const uint8_t>(bytes, static_cast<size_t>(t.numel()) * sizeof(float))});
  }
  safetensors_save(dir / "adapter_model.safetensors", ts, {{"format", "pt"}});
  write_file_atomic(dir / "adapter_config.json", peft_adapter_config_json(p, base_model_name_or_path));
}

LoraConfig load_peft_adapter_config(const fs::path& dir) {
  const fs::path path = dir / "adapter_config.json";
  const std::string label = path.string();
  const ordered_json j = parse_json_strict(read_file(path), label);
  if (!j.is_object()) throw Error("{}: expected a JSON object", label);
  auto field = [&](const char* k) -> const ordered_json* {
    auto it = j.find(k);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  };
  auto refuse_unless = [&](const char* k, bool ok, const char* want) {
    if (!ok) throw Error("{}: field \"{}\" = {} is not supported (expected {})", label, k, field(k)->dump(), want);
  };
  if (const auto* t = field("peft_type")) refuse_unless("peft_type", *t == "LORA", "\"LORA\"");
  if (const auto* t = field("bias")) refuse_unless("bias", *t == "none", "\"none\"");
  if (const auto* t = field("fan_in_fan_out")) refuse_unless("fan_in_fan_out", *t == false, "false");
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    if (const auto* t = field(k)) refuse_unless(k, t->is_object() && t->empty(), "{}");
  for (const char* k : {"layers_to_transform", "layer_replication", "modules_to_save"})
    if (field(k)) refuse_unless(k, false, "null");

  LoraConfig c;
  const auto* r = field("r");
  if (!r || !r->is_number_integer()) throw Error("{}: field \"r\" must be an integer (the LoRA rank)", label);
  if (r->is_number_unsigned() ? r->get<uint64_t>() > 65536 : true)  // negative, or a rank no model has
    throw Error("{}: field \"r\" = {} must be a LoRA rank from 1 to 65536", label, r->dump());
  c.r = r->get<int>();
  const auto* a = field("lora_alpha");
  if (!a || !a->is_number()) throw Error("{}: field \"lora_alpha\" must be a number", label);
  c.alpha = a->get<double>();
  if (const auto* d = field("lora_dropout")) {
    if (!d->is_number()) throw Error("{}: field \"lora_dropout\" must be a number", label);
    c.dropout = d->get<double>();
  } else {
    c.dropout = 0;
  }
  if (const auto* rs = field("use_rslora")) {
    if (!rs->is_boolean()) throw Error("{}: field \"use_rslora\" must be true or false", label);
    c.use_rslora = rs->get<bool>();
  }
  if (const auto* d = field("use_dora")) {
    if (!d->is_boolean()) throw Error("{}: field \"use_dora\" must be true or false", label);
    c.use_dora = d->get<bool>();
  }
  // The one DoRA combination PEFT 0.13.2 refuses (LoraConfig.__post_init__), with its words.
  const auto* mc = field("megatron_config");  // Python truthiness: {} and false do not count
  if (c.use_dora && mc && !mc->empty() && *mc != false)
    throw Error("{}: use_dora true with a megatron_config: DoRA does not support megatron_core, please set "
                "`use_dora=False` (PEFT's reason)",
                label);
  const auto* tm = field("target_modules");
  if (!tm) throw Error("{}: field \"target_modules\" is missing", label);
  if (tm->is_string()) {
    c.target.kind = LoraTarget::Kind::Regex;
    c.target.regex = tm->get<std::string>();
    c.target.names.clear();
  } else if (tm->is_array()) {
    c.target.kind = LoraTarget::Kind::Names;
    c.target.names.clear();
    for (const auto& n : *tm) {
      if (!n.is_string()) throw Error("{}: \"target_modules\" must hold strings", label);
      c.target.names.push_back(n.get<std::string>());
    }
  } else {
    throw Error("{}: \"target_modules\" must be a list of names or a regex string", label);
  }
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error("{}: {}", label, e.what());
  }
  return c;
}

void load_peft_adapter_weights(const fs::path& dir, LoraParams& p) {
  const fs::path path = dir / "adapter_model.safetensors";
  SafetensorsFile f(path);
  std::set<std::string> known;
  for (const LoraTensor& t : p.tensors()) known.insert(t.key);
  for (const TensorInfo& t : f.tensors())
    if (!known.count(t.name))
      throw Error("{}: tensor '{}' does not belong to this adapter's target modules; check "
                  "adapter_config.json target_modules and the base model",
                  path.string(), t.name);
  load_lora_tensors(p, [&](const std::string& k) { return f.find(k); }, path.string());
}

}  // namespace lorafit
