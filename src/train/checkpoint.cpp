#include "train/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

#include "formats/json_util.h"
#include "formats/safetensors.h"
#include "lora/lora_adapter.h"
#include "train/render.h"
#include "util/error.h"
#include "util/parse.h"

namespace lorafit {

namespace {

// The tokenizer-side files an adapter folder carries so `lorafit chat --adapter` and
// transformers' AutoTokenizer work from it alone.
const char* const kTokenizerFiles[] = {"tokenizer.json",          "tokenizer_config.json", "special_tokens_map.json",
                                       "vocab.json",              "merges.txt",            "tokenizer.model",
                                       "generation_config.json",  "chat_template.jinja",   "added_tokens.json"};

std::vector<float> download(Backend& be, const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  be.download(v.data(), t.data, t.nbytes());
  return v;
}

void write_folder(const fs::path& dir, const LoraParams& lora, const CheckpointInfo& info, const TrainerState* st,
                  Backend* be) {
  fs::path tmp = dir;
  tmp += ".tmp";
  try {
    fs::remove_all(tmp);  // a leftover of a run killed while writing
    fs::create_directories(tmp);
    save_peft_adapter(tmp, lora, info.base_model_path);
    for (const char* name : kTokenizerFiles)
      if (fs::exists(info.model_dir / name)) write_file_atomic(tmp / name, read_file(info.model_dir / name));
    // The template trained with, where transformers and lorafit look first (it overrides the
    // copied tokenizer_config.json's).
    if (!info.chat_template.empty()) write_file_atomic(tmp / "chat_template.jinja", info.chat_template);
    nlohmann::ordered_json base{{"base_model_name_or_path", info.base_model_path},
                                {"fingerprint", base_model_fingerprint(info.model_dir)},
                                {"fingerprint_method", "fnv1a64(config.json + safetensors headers)"}};
    if (!info.chat_template_from.empty()) base["chat_template_from"] = info.chat_template_from;
    if (info.enable_thinking) base["enable_thinking"] = *info.enable_thinking;
    if (!info.quantization.is_null()) base["quantization"] = info.quantization;
    write_file_atomic(tmp / "lorafit_base_model.json", base.dump(2) + "\n");
    if (st) {
      const std::vector<float> m = download(*be, lora.adam_m()), v = download(*be, lora.adam_v());
      const int64_t P = lora.num_params();
      std::vector<TensorToWrite> ts = {
          {"exp_avg", DType::F32, {P}, {reinterpret_cast<const uint8_t*>(m.data()), m.size() * 4}},
          {"exp_avg_sq", DType::F32, {P}, {reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4}}};
      safetensors_save(tmp / "optimizer.safetensors", ts, {{"format", "lorafit"}});
      nlohmann::ordered_json j{{"global_step", st->global_step},
                               {"total_steps", st->total_steps},
                               {"steps_per_epoch", st->steps_per_epoch},
                               {"epoch", st->steps_per_epoch ? static_cast<double>(st->global_step) /
                                                                   static_cast<double>(st->steps_per_epoch)
                                                             : 0.0},
                               {"seed", st->seed},
                               {"lr_scheduler_type", st->lr_scheduler_type},
                               {"warmup_steps", st->warmup_steps},
                               {"learning_rate", st->learning_rate},
                               {"num_examples", st->num_examples},
                               {"log_loss_sum", st->log_loss_sum},
                               {"log_loss_count", st->log_loss_count},
                               {"last_loss", st->last_loss},
                               {"settings_hash", st->settings_hash},
                               {"num_params", P}};
      write_file_atomic(tmp / "trainer_state.json", j.dump(2) + "\n");
    }
    if (fs::exists(dir)) fs::remove_all(dir);
    fs::rename(tmp, dir);
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw Error("could not write {} ({}); is the disk full? Earlier checkpoints are intact; free space and resume "
                "with --resume_from_checkpoint latest",
                dir.string(), e.what());
  }
}

}  // namespace

std::string base_model_fingerprint(const fs::path& model_dir) {
  uint64_t h = 1469598103934665603ull;
  if (fs::exists(model_dir / "config.json")) {
    const std::string c = read_file(model_dir / "config.json");
    h = fnv1a64(c.data(), c.size(), h);
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(model_dir))
    if (e.path().extension() == ".safetensors") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& p : files) {
    const MappedFile f(p);
    if (f.size() < 8) continue;
    uint64_t n = 0;
    std::memcpy(&n, f.data(), 8);
    h = fnv1a64(f.data(), static_cast<size_t>(std::min<uint64_t>(8 + n, f.size())), h);
  }
  return fmt::format("{:016x}", h);
}

void save_adapter_folder(const fs::path& dir, const LoraParams& lora, const CheckpointInfo& info) {
  write_folder(dir, lora, info, nullptr, nullptr);
}

void save_checkpoint(const fs::path& dir, const LoraParams& lora, Backend& be, const CheckpointInfo& info,
                     const TrainerState& st) {
  write_folder(dir, lora, info, &st, &be);
}

TrainerState load_checkpoint(const fs::path& dir, LoraParams& lora, Backend& be) {
  const fs::path sp = dir / "trainer_state.json";
  if (!fs::exists(sp))
    throw Error("{}: no trainer_state.json; this is not a lorafit checkpoint folder (an adapter alone starts a new "
                "run with --adapter_name_or_path)",
                dir.string());
  nlohmann::json j;
  try {
    j = parse_json(read_file(sp), sp.string());
  } catch (const Error& e) {
    throw Error("{}; the checkpoint is damaged, use an earlier one", e.what());
  }
  TrainerState st;
  try {
    // Each field checked by name: nlohmann's own messages ("type must be number") name none.
    auto field = [&](const char* k, bool want_string) -> const nlohmann::json& {
      if (!j.is_object() || !j.contains(k)) throw Error("field `{}` is missing", k);
      const nlohmann::json& v = j[k];
      if (want_string ? !v.is_string() : !v.is_number())
        throw Error("field `{}` is a JSON {}, expected {}", k, json_type_name(v), want_string ? "a string" : "a number");
      return v;
    };
    auto integer = [&](const char* k) {
      const nlohmann::json& v = field(k, false);
      if (!v.is_number_integer()) throw Error("field `{}` = {} must be an integer", k, v.dump());
      if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        throw Error("field `{}` = {} is out of range", k, v.dump());
      return v.get<int64_t>();
    };
    st.global_step = integer("global_step");
    st.total_steps = integer("total_steps");
    st.steps_per_epoch = integer("steps_per_epoch");
    {
      const nlohmann::json& v = field("seed", false);
      if (!v.is_number_unsigned()) throw Error("field `seed` = {} must be a non-negative integer", v.dump());
      st.seed = v.get<uint64_t>();
    }
    st.lr_scheduler_type = field("lr_scheduler_type", true).get<std::string>();
    st.warmup_steps = integer("warmup_steps");
    st.learning_rate = field("learning_rate", false).get<double>();
    st.num_examples = integer("num_examples");
    st.log_loss_sum = field("log_loss_sum", false).get<double>();
    st.log_loss_count = integer("log_loss_count");
    st.last_loss = field("last_loss", false).get<double>();
    st.settings_hash = field("settings_hash", true).get<std::string>();
    if (integer("num_params") != lora.num_params())
      throw Error("num_params {} differs from this run's LoRA table ({})", integer("num_params"), lora.num_params());
  } catch (const nlohmann::json::exception& e) {
    throw Error("{}: {}", sp.string(), json_error_text(e));
  } catch (const Error& e) {
    throw Error("{}: {}", sp.string(), e.what());
  }
  load_peft_adapter_weights(dir, lora);
  const SafetensorsFile opt(dir / "optimizer.safetensors");
  for (const auto& [name, sec] : {std::pair{"exp_avg", lora.adam_m()}, std::pair{"exp_avg_sq", lora.adam_v()}}) {
    const TensorInfo* t = opt.find(name);
    if (!t || t->dtype != DType::F32 || t->nbytes != sec.nbytes())
      throw Error("{}/optimizer.safetensors: tensor {} missing or not F32 [{}]", dir.string(), name, lora.num_params());
    for (int64_t i = 0; i < lora.num_params(); ++i) {  // a damaged checkpoint, named now, not a "divergence" later
      float v;
      std::memcpy(&v, t->data + 4 * i, 4);
      if (std::isfinite(v)) continue;
      std::string key = "?";
      for (const LoraTensor& lt : lora.tensors())
        if (i >= lt.offset && i < lt.offset + lt.numel()) key = lt.key;
      throw Error("{}/optimizer.safetensors: {} holds {} at element {} (of {}): the checkpoint is damaged; resume "
                  "from an earlier one",
                  dir.string(), name, std::isnan(v) ? "NaN" : "Inf", i, key);
    }
    be.upload(sec.data, t->data, sec.nbytes());
  }
  return st;
}

std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& output_dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  if (!fs::is_directory(output_dir)) return out;
  for (const auto& e : fs::directory_iterator(output_dir)) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || name.rfind("checkpoint-", 0) != 0) continue;
    const std::string num = name.substr(11);
    const std::optional<int64_t> step = try_parse_int(num);
    if (!step || *step < 0) continue;  // skips checkpoint-5.tmp and other names
    out.emplace_back(*step, e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void prune_checkpoints(const fs::path& output_dir, int64_t limit) {
  if (limit <= 0) return;
  auto all = list_checkpoints(output_dir);
  for (size_t i = 0; i + static_cast<size_t>(limit) < all.size(); ++i) fs::remove_all(all[i].second);
}

}  // namespace lorafit
