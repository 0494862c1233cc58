#include "generate/adapter.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <system_error>

#include "formats/json_util.h"
#include "formats/safetensors.h"
#include "generate/inference.h"
#include "lora/lora_adapter.h"
#include "lora/lora_merge.h"
#include "util/error.h"

namespace lorafit {

namespace {

void require_adapter_files(const fs::path& dir) {
  if (!fs::is_directory(dir)) throw Error("adapter folder {} does not exist (or is not a folder)", dir.string());
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors"})
    if (!fs::exists(dir / f))
      throw Error("{}: no {}; expected a PEFT adapter folder (adapter_config.json + adapter_model.safetensors, as "
                  "save_pretrained writes it)",
                  dir.string(), f);
}

std::string weight_name(const LinearModule& m) { return m.name + ".weight"; }

// Files of a model folder that a merged export copies as they are.
const char* const kCopiedFiles[] = {"config.json",          "generation_config.json", "tokenizer.json",
                                    "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                                    "vocab.json",           "merges.txt",             "tokenizer.model",
                                    "chat_template.jinja"};
bool is_tokenizer_file(const std::string& f) { return f != "config.json" && f != "generation_config.json"; }

// A merged folder is a plain Hugging Face folder with no lorafit_base_model.json, so the
// settings the run trained with (enable_thinking) become the template's own defaults: a
// renderer that does not pass the variable (transformers, vLLM, lorafit) gets the trained
// value, one that passes it still wins.
std::string with_trained_defaults(const std::string& tmpl, const nlohmann::ordered_json& vars) {
  std::string head;
  for (const auto& [k, v] : vars.items())  // booleans (trained_template_vars checks); no newline: nothing rendered
    head += fmt::format("{{%- if {} is not defined %}}{{%- set {} = {} %}}{{%- endif %}}", k, k, v.dump());
  return head + tmpl;
}

}  // namespace

std::string adapter_base_model(const fs::path& adapter_dir) {
  if (!fs::is_directory(adapter_dir))
    throw Error("adapter folder {} does not exist (or is not a folder)", adapter_dir.string());
  const fs::path cfg = adapter_dir / "adapter_config.json";
  if (!fs::exists(cfg)) throw Error("{}: no adapter_config.json; expected a PEFT adapter folder", adapter_dir.string());
  const nlohmann::json j = parse_json(read_file(cfg), cfg.string());
  const auto it = j.find("base_model_name_or_path");
  if (it == j.end() || it->is_null()) return "";
  if (!it->is_string()) throw Error("{}: base_model_name_or_path must be a string", cfg.string());
  return it->get<std::string>();
}

fs::path resolve_base_model(const fs::path& adapter_dir) {
  const std::string base = adapter_base_model(adapter_dir);
  const std::string cfg = (adapter_dir / "adapter_config.json").string();
  if (base.empty())
    throw Error("{}: base_model_name_or_path is not set, so the base model is unknown; give --model DIR", cfg);
  fs::path p(base);
  if (p.is_relative() && !fs::exists(p)) p = adapter_dir / p;
  if (!fs::is_directory(p))
    throw Error("{}: base_model_name_or_path \"{}\" is not a model folder here (lorafit reads local folders, not the "
                "Hub); give --model DIR",
                cfg, base);
  return p.lexically_normal();
}

std::unique_ptr<LoraParams> load_adapter(Backend& be, const ModelConfig& model, const fs::path& dir) {
  require_adapter_files(dir);
  LoraConfig cfg = load_peft_adapter_config(dir);
  std::unique_ptr<LoraParams> p;
  try {
    p = std::make_unique<LoraParams>(be, cfg, model);
  } catch (const Error& e) {
    throw Error("{}: {}", (dir / "adapter_config.json").string(), e.what());
  }
  load_peft_adapter_weights(dir, *p);
  p->set_dropout(0.f);  // inference
  return p;
}

void merge_adapter_into(Model& model, const LoraParams& p, MergedWeights& store) {
  if (model.backend().device() != Device::CPU) throw Error("merging at load runs on the CPU backend only");
  const SafetensorsSet files(model.dir());
  const std::vector<float> host = p.download_params();
  auto cpu = make_backend("cpu");
  for (size_t k = 0; k < p.modules().size(); ++k) {
    const std::string name = weight_name(p.modules()[k]);
    const TensorInfo* W = files.find(name);
    LF_CHECK(W, "{} not in {}", name, model.dir().string());
    store.buffers.push_back(merged_weight(*cpu, *W, p, host, static_cast<int>(k)));
    Tensor t = W->view();
    t.data = store.buffers.back().data();
    model.weights().rebind(name, t);
  }
}

std::string qlora_merge_warning(const fs::path& adapter_dir, const fs::path& model_dir) {
  std::string how;  // what says the base was 4-bit
  if (const auto rec = lorafit_base_record(adapter_dir)) {
    if (!rec->contains("quantization") || !(*rec)["quantization"].is_object()) return "";
    const auto& q = (*rec)["quantization"];
    how = fmt::format("{}{}, {}; recorded in {}", q.value("quant_type", std::string("?")),
                      q.value("double_quant", false) ? " with double quantization" : "",
                      q.value("source", std::string("")) == "quantization_bit" ? "quantized at load"
                                                                               : "a bitsandbytes checkpoint",
                      (adapter_dir / "lorafit_base_model.json").string());
  } else {
    const std::string base = adapter_base_model(adapter_dir);
    fs::path p(base);
    if (p.is_relative() && !fs::exists(p)) p = adapter_dir / p;  // as resolve_base_model reads it
    if (base.empty() || !fs::exists(p / "config.json")) return "";
    const auto bnb4 = load_model_config(p / "config.json").bnb4;
    if (!bnb4) return "";
    how = fmt::format("{}{}: its base_model_name_or_path {} is a bitsandbytes 4-bit checkpoint",
                      quant4_type_name(bnb4->quant_type), bnb4->double_quant ? " with double quantization" : "", base);
  }
  return fmt::format("warning: {} was trained on 4-bit base weights ({}). Merged into the unquantized weights of {}, it "
                     "computes slightly different outputs than during training, where every projection was the "
                     "dequantized 4-bit weight: the merged model has W + s·B·A on the unrounded W. Check the merged "
                     "model (lorafit eval), or keep the adapter unmerged on the 4-bit base",
                     adapter_dir.string(), how, model_dir.string());
}

int export_merged(const fs::path& model_dir, const fs::path& adapter_dir, const fs::path& output,
                  const MergeExportOptions& opts) {
  if (fs::exists(output)) throw Error("--output_dir {} already exists; choose a new folder name", output.string());
  if (opts.max_shard_bytes < 1) throw Error("--max_shard_size must be positive");
  if (fs::exists(model_dir / "config.json"))
    refuse_4bit_checkpoint(load_model_config(model_dir / "config.json").bnb4, (model_dir / "config.json").string(),
                           "lorafit merge writes W + s·B·A in the base model's 16/32-bit dtype and needs the "
                           "unquantized weights: pass the bf16 base folder with --model (PEFT users merge a QLoRA "
                           "adapter into the bf16 model too, not into the 4-bit one)");
  auto be = make_backend("cpu");
  const Model model(*be, model_dir);  // checks the base folder and binds (validates) its tensors
  const std::unique_ptr<LoraParams> p = load_adapter(*be, model.config(), adapter_dir);
  std::map<std::string, int> merged_module;  // weight name -> module index
  for (size_t k = 0; k < p->modules().size(); ++k) merged_module[weight_name(p->modules()[k])] = static_cast<int>(k);

  const SafetensorsSet files(model_dir);
  const std::vector<float> host = p->download_params();
  const std::vector<const TensorInfo*> all = files.all();  // sorted by name
  // Shards: consecutive tensors (name order) up to max_shard_bytes each (a larger tensor alone).
  std::vector<std::vector<const TensorInfo*>> shards(1);
  int64_t used = 0, total = 0;
  for (const TensorInfo* t : all) {
    const auto n = static_cast<int64_t>(t->nbytes);
    if (!shards.back().empty() && used + n > opts.max_shard_bytes) {
      shards.emplace_back();
      used = 0;
    }
    shards.back().push_back(t);
    used += n;
    total += n;
  }

  const fs::path tmp = output.string() + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) throw Error("cannot create {}: {}", tmp.string(), ec.message());
  try {
    nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
    for (size_t s = 0; s < shards.size(); ++s) {
      const std::string file = shards.size() == 1 ? "model.safetensors"
                                                  : fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1,
                                                                shards.size());
      std::vector<std::vector<uint8_t>> keep;  // merged bytes of this shard
      std::vector<TensorToWrite> out;
      for (const TensorInfo* t : shards[s]) {
        std::span<const uint8_t> bytes(t->data, t->nbytes);
        if (auto it = merged_module.find(t->name); it != merged_module.end()) {
          keep.push_back(merged_weight(*be, *t, *p, host, it->second));
          bytes = {keep.back().data(), keep.back().size()};
        }
        out.push_back({t->name, t->dtype, t->shape, bytes});
        weight_map[t->name] = file;
      }
      safetensors_save(tmp / file, out, {{"format", "pt"}});
    }
    if (shards.size() > 1) {
      nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
      write_file_atomic(tmp / "model.safetensors.index.json", index.dump(2) + "\n");
    }
    for (const char* f : kCopiedFiles) {
      fs::path src = model_dir / f;
      if (is_tokenizer_file(f) && fs::exists(adapter_dir / f)) src = adapter_dir / f;  // what it was trained with
      if (!fs::exists(src)) continue;
      std::string text = read_file(src);
      if (std::string(f) == "chat_template.jinja" && src.parent_path() == adapter_dir)
        text = with_trained_defaults(text, trained_template_vars(adapter_dir));
      write_file_atomic(tmp / f, text);
    }
    fs::rename(tmp, output, ec);
    if (ec) throw Error("cannot rename {} to {}: {}", tmp.string(), output.string(), ec.message());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  return static_cast<int>(p->modules().size());
}

}  // namespace lorafit
