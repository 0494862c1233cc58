// Everything a training run sets up before step 1 (see trainer_run.h).
#include <cmath>
#include <nlohmann/json.hpp>

#include "lora/lora_adapter.h"
#include "train/dora_init.h"
#include "train/trainer_run.h"
#include "util/error.h"
#include "util/parse.h"
#include "util/sysinfo.h"

namespace lorafit::detail {

namespace {

// The settings as typed JSON for config.json (the dashboard diffs runs by it).
nlohmann::json settings_json(const TrainSettings& s) {
  nlohmann::json j = nlohmann::json::object();
  for (const SettingKey& k : setting_keys()) {
    const std::string v = k.get(s);
    if (k.is_bool) {
      j[k.name] = v == "true";
      continue;
    }
    if (const auto d = try_parse_double(v))
      j[k.name] = *d;
    else
      j[k.name] = v;
  }
  return j;
}

// The settings that decide the numbers of a run: a resume must not change them.
std::string trajectory_hash(TrainSettings s) {
  s.output_dir = s.resume_from_checkpoint = s.device = "";
  s.overwrite_output_dir = s.quiet = s.overwrite_cache = false;
  s.logging_steps = s.save_steps = s.save_total_limit = s.eval_steps = s.sample_steps = s.num_samples = 0;
  s.max_new_tokens = 0;
  s.cache_dir = s.report_to = "";
  const std::string y = settings_to_yaml(s);
  return fmt::format("{:016x}", fnv1a64(y.data(), y.size()));
}

}  // namespace

// 1234567 → "1,234,567" (PEFT's print_trainable_parameters style).
std::string thousands(int64_t n) {
  std::string d = std::to_string(n), out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i > 0 && (d.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(d[i]);
  }
  return out;
}

void check_output_dir(const TrainSettings& s, bool resuming) {
  const fs::path out = s.output_dir;
  if (!fs::exists(out) || resuming || s.overwrite_output_dir) return;
  if (fs::exists(out / "config.yaml") || fs::exists(out / "final") || !list_checkpoints(out).empty())
    throw Error(
        "{} already holds a run; pass --overwrite_output_dir to start over there, "
        "--resume_from_checkpoint latest to continue it, or choose another --output_dir",
        out.string());
}

fs::path resolve_resume_dir(const TrainSettings& s) {
  if (s.resume_from_checkpoint.empty()) return {};
  fs::path dir = s.resume_from_checkpoint;
  if (s.resume_from_checkpoint == "latest") {
    const auto cks = list_checkpoints(s.output_dir);
    if (cks.empty())
      throw Error("--resume_from_checkpoint latest: {} holds no checkpoint-N folder to resume from", s.output_dir);
    dir = cks.back().second;
  }
  if (!fs::is_directory(dir)) throw Error("--resume_from_checkpoint: {} is not a folder", dir.string());
  return dir;
}

// "Qwen/Qwen2.5-7B-Instruct": an owner/name hub id rather than a path that exists.
bool looks_like_hub_id(const std::string& p) {
  const size_t slash = p.find('/');
  return !fs::exists(p) && slash != std::string::npos && slash > 0 && p.find('/', slash + 1) == std::string::npos &&
         p[0] != '.' && p[0] != '~' && slash + 1 < p.size();
}

void check_model_folder(const TrainSettings& s) {
  const std::string& m = s.model_name_or_path;
  const auto it = s.where.find("model_name_or_path");
  const std::string where = it != s.where.end() ? it->second : "--model_name_or_path";
  if (looks_like_hub_id(m)) {
    const std::string name = m.substr(m.find('/') + 1);
    throw Error(
        "{}: model_name_or_path {} is a Hugging Face hub id, but lorafit reads local folders only; download it "
        "with `huggingface-cli download {} --local-dir models/{}` (or `modelscope download --model {} --local_dir "
        "models/{}`) and set model_name_or_path to models/{}",
        where, m, m, name, m, name, name);
  }
  if (!fs::is_directory(m) || !fs::exists(fs::path(m) / "config.json"))
    throw Error("{}: model_name_or_path {}: not a Hugging Face model folder (no config.json)", where, m);
}

void load_data(Run& r) {
  check_model_folder(r.s);
  r.renderer = std::make_unique<ChatRenderer>(r.s.model_name_or_path, chat_setup_of(r.s));
  r.data = prepare_data(r.s, *r.renderer);
  r.con.line(describe_data(r.data, r.s));
}

// The pre-flight memory plan, before any weight is read.
void check_memory(Run& r) {
  const TrainSettings& s = r.s;
  // Packed rows hold up to cutoff_len tokens whatever the longest sample.
  const int64_t longest_T = s.packing ? s.cutoff_len : r.data.train_stats.max_len;
  r.longest_T = longest_T;
  r.act = train_act_dtype(s);
  const MemoryPlan plan = plan_memory(s.model_name_or_path, s, longest_T, r.act);
  const double GiB = 1024.0 * 1024.0 * 1024.0;
  r.con.line(
      fmt::format("memory plan: weights {:.2f} GiB + LoRA/optimizer {:.2f} GiB + activations {:.2f} GiB (longest "
                  "batch {} tokens) + workspace {:.2f} GiB = {:.2f} GiB{}",
                  plan.weights / GiB, plan.lora_optimizer / GiB, plan.activations / GiB, longest_T,
                  plan.workspace / GiB, plan.total() / GiB,
                  plan.available >= 0
                      ? fmt::format("; {:.2f} GiB available ({})", plan.available / GiB, plan.available_source)
                      : ""));
  if (plan.quantized > 0)
    r.con.line(fmt::format("memory plan, QLoRA: the weights hold the 4-bit projections {:.2f} GiB and one layer "
                           "dequantized at a time {:.2f} GiB",
                           plan.quantized / GiB, plan.dequant_scratch / GiB));
  if (s.device == "cpu" && plan.available >= 0 && plan.total() > plan.available)  // CPU: everything in RAM
    throw Error(
        "the run needs about {:.2f} GiB but only {:.2f} GiB is available ({}); lower cutoff_len or "
        "per_device_train_batch_size (raise gradient_accumulation_steps to keep the same effective batch), "
        "keep gradient_checkpointing on, lower lora_r, or close other programs",
        plan.total() / GiB, plan.available / GiB, plan.available_source);
}

// What lorafit_base_model.json records about a 4-bit base (lorafit merge warns from it).
static nlohmann::ordered_json quantization_record(const ModelWeights& w) {
  const auto& q = w.quant_source();
  if (!q) return nullptr;
  return {{"bits", 4},
          {"quant_type", std::string(quant4_type_name(q->type))},
          {"double_quant", q->double_quant},
          {"source", q->from_checkpoint ? "bitsandbytes checkpoint" : "quantization_bit"}};
}

void load_model(Run& r) {
  const TrainSettings& s = r.s;
  r.be = make_backend(s.device);
  r.con.line(r.be->kernel_info());
  r.model = std::make_unique<Model>(*r.be, s.model_name_or_path, r.act, train_quant_config(s));
  r.con.line(fmt::format("precision: {}", r.act == DType::BF16
                                              ? "bf16 mixed precision (bf16 activations and GEMMs, fp32 LoRA masters, "
                                                "gradients and AdamW state, as HF bf16=True)"
                                              : "fp32"));
  if (r.act == DType::BF16 && s.device == "cpu") {
    const std::string f = sys::cpu_bf16_flags();
    r.con.line(fmt::format("bf16 on the CPU: {}; the bf16 ops compute in fp32 and round to bf16 where torch does, so "
                           "they run on any x86-64 CPU",
                           f.empty() ? "this CPU has no bf16 instructions (fallback path)" : "bf16 instructions: " + f));
  }
  if (const std::string n = quantization_bit_note(r.model->config(), train_quant_config(s)); !n.empty()) r.con.line(n);
  if (const auto& q = r.model->weights().quant_source())
    r.con.line(fmt::format("QLoRA: the projection weights are {} {} ({:.1f} MiB); each layer is dequantized into a {} "
                           "scratch before its matmuls",
                           quant4_description(*q),
                           q->from_checkpoint ? "as stored in the bitsandbytes checkpoint" : "quantized at load",
                           static_cast<double>(r.model->weights().quantized_bytes()) / (1 << 20),
                           r.act == DType::BF16 ? "bf16" : "fp32"));
  if (r.model->weights_rounded())
    r.con.line(fmt::format("note: bf16 with {} weights in {}: they are rounded to bf16 once at load (as torch_dtype="
                           "bfloat16 would load them)",
                           dtype_name(r.model->checkpoint_dtype()), s.model_name_or_path));
  if (!s.adapter_name_or_path.empty()) {
    r.lc = load_peft_adapter_config(s.adapter_name_or_path);
  } else {
    r.lc.r = static_cast<int>(s.lora_r);
    r.lc.alpha = s.lora_alpha;
    r.lc.target = parse_lora_target(s.lora_target);
  }
  r.lc.dropout = s.lora_dropout;
  r.lc.use_rslora = s.use_rslora || r.lc.use_rslora;
  if (r.lc.use_dora && !s.use_dora)  // --use_dora false cannot drop a DoRA adapter's magnitudes
    refuse_unsupported_dora(s, (fs::path(s.adapter_name_or_path) / "adapter_config.json").string() + ": use_dora true");
  r.lc.use_dora = s.use_dora || r.lc.use_dora;
  r.lc.validate();
  r.lora = std::make_unique<LoraParams>(*r.be, r.lc, r.model->config());
  if (!s.adapter_name_or_path.empty()) {
    load_peft_adapter_weights(s.adapter_name_or_path, *r.lora);
  } else {
    lora_init_peft(*r.lora, static_cast<uint64_t>(s.seed), r.model->weights().dtype() == DType::BF16);
    init_dora_magnitude_from_base(*r.lora, *r.model);
  }
}

// Batches, steps and the learning-rate schedule (docs/SPEC.md "Steps").
void plan_steps(Run& r) {
  const TrainSettings& s = r.s;
  BatchOptions bo;
  bo.batch_size = s.per_device_train_batch_size;
  bo.shuffle = s.shuffle;
  bo.group_by_length = s.group_by_length;
  bo.seed = static_cast<uint64_t>(s.seed);
  bo.pad_id = r.renderer->pad_id();
  bo.packing = s.packing;
  bo.cutoff_len = s.cutoff_len;
  r.batcher = std::make_unique<Batcher>(r.data.train, bo);
  if (s.packing) r.con.line(r.batcher->packing_summary());
  r.accum = s.gradient_accumulation_steps;
  const int64_t spe = std::max<int64_t>(r.batcher->num_batches() / r.accum, 1);
  const int64_t total =
      s.max_steps > 0 ? s.max_steps : static_cast<int64_t>(std::ceil(s.num_train_epochs * static_cast<double>(spe)));
  r.schedule = std::make_unique<LrSchedule>(parse_lr_scheduler_type(s.lr_scheduler_type), s.learning_rate, total,
                                            s.warmup_steps, s.warmup_ratio);
  TrainConfig tc;
  tc.learning_rate = s.learning_rate;
  tc.beta1 = s.adam_beta1;
  tc.beta2 = s.adam_beta2;
  tc.adam_eps = s.adam_epsilon;
  tc.weight_decay = s.weight_decay;
  tc.max_grad_norm = s.max_grad_norm;
  tc.gradient_checkpointing = s.gradient_checkpointing;
  tc.seed = static_cast<uint64_t>(s.seed);
  r.trainer = std::make_unique<LoraTrainer>(*r.model, *r.lora, tc, *r.schedule);
  // Activations and gradients are allocated once, for the longest batch of the plan.
  r.trainer->passes().reserve(s.per_device_train_batch_size, r.longest_T);

  r.events = {total, spe, s.logging_steps, s.eval_steps, s.save_steps, s.sample_steps};
  r.st.total_steps = total;
  r.st.steps_per_epoch = spe;
  r.st.seed = static_cast<uint64_t>(s.seed);
  r.st.lr_scheduler_type = s.lr_scheduler_type;
  r.st.warmup_steps = r.schedule->warmup_steps();
  r.st.learning_rate = s.learning_rate;
  r.st.num_examples = static_cast<int64_t>(r.data.train.size());
  r.st.settings_hash = trajectory_hash(s);
}

// Restores the checkpoint resumed from, or clears what an overwritten run left.
void resume_or_reset(Run& r) {
  TrainerState& st = r.st;
  if (!r.resume_dir.empty()) {
    const TrainerState saved = load_checkpoint(r.resume_dir, *r.lora, *r.be);
    if (saved.settings_hash != st.settings_hash || saved.total_steps != st.total_steps ||
        saved.num_examples != st.num_examples)
      throw Error(
          "{}: this checkpoint was written with other settings or data (settings hash {} vs {}, {} vs {} "
          "steps, {} vs {} samples); resume with the same config, or start a new run",
          r.resume_dir.string(), saved.settings_hash, st.settings_hash, saved.total_steps, st.total_steps,
          saved.num_examples, st.num_examples);
    st.global_step = saved.global_step;
    st.log_loss_sum = saved.log_loss_sum;
    st.log_loss_count = saved.log_loss_count;
    st.last_loss = saved.last_loss;
    r.trainer->set_steps_done(st.global_step);
    r.last_saved = st.global_step;
    r.con.line(fmt::format("resuming from {} at step {}/{}", r.resume_dir.string(), st.global_step, st.total_steps));
  } else if (fs::exists(r.out) && r.s.overwrite_output_dir) {
    for (const char* f : {"metrics.jsonl", "samples.jsonl", "system.jsonl", "train.log", "train_results.json"})
      fs::remove(r.out / f);
    for (const auto& c : list_checkpoints(r.out)) fs::remove_all(c.second);
    fs::remove_all(r.out / "final");
  }
}

// The run folder (config.yaml/json, env.json, status.json, metrics/samples/system.jsonl).
void open_run_folder(Run& r) {
  const TrainSettings& s = r.s;
  track::RunStoreOptions ro;
  ro.resume = !r.resume_dir.empty();
  ro.tensorboard = reports_to_tensorboard(r.s);
  ro.resume_step = ro.resume ? r.st.global_step : -1;  // rows logged after that checkpoint come again
  nlohmann::json env = track::collect_environment(r.hooks.lorafit_version);
  env["model"] = s.model_name_or_path;
  env["backend"] = s.device;
  env["dtype"] = r.act == DType::BF16 ? "bf16" : "fp32";
  r.store = track::RunStore::create(r.out, settings_to_yaml(s), settings_json(s), env, ro);
  r.store->update_status_fields({{"total_steps", r.st.total_steps}, {"step", r.st.global_step}});
  r.con.open_log(r.out / "train.log");
  r.ck_info = {fs::absolute(s.model_name_or_path).lexically_normal().string(), s.model_name_or_path,
               r.renderer->template_text(),
               s.chat_template.empty() ? r.renderer->config().template_source : s.chat_template,
               r.renderer->setup().enable_thinking, quantization_record(r.model->weights())};

  const int64_t trainable = r.lora->num_params(), all = r.model->weights().num_params() + trainable;
  r.con.line(fmt::format("model {} ({} layers, hidden {}, vocab {}); LoRA r {} alpha {} dropout {} on {} modules",
                         s.model_name_or_path, r.model->config().num_layers, r.model->config().hidden_size,
                         r.model->config().vocab_size, r.lc.r, r.lc.alpha, r.lc.dropout, r.lora->modules().size()));
  r.con.line(fmt::format("trainable params: {} || all params: {} || trainable%: {:.4f}", thousands(trainable),
                         thousands(all), 100.0 * static_cast<double>(trainable) / static_cast<double>(all)));
  r.con.line(fmt::format(
      "{} samples, batch {} x accumulation {} -> {} steps per epoch, {} steps in all; lr {} {}, warmup {}",
      r.data.train.size(), s.per_device_train_batch_size, r.accum, r.st.steps_per_epoch, r.st.total_steps,
      s.learning_rate, s.lr_scheduler_type, r.schedule->warmup_steps()));
}

}  // namespace lorafit::detail
