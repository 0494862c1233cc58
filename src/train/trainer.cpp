#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "lora/lora_adapter.h"
#include "model/model_backward.h"
#include "track/run_store.h"
#include "train/batcher.h"
#include "train/checkpoint.h"
#include "train/data_prep.h"
#include "train/train_step.h"
#include "util/error.h"

namespace lorafit {

namespace {

using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// The settings as typed JSON for config.json (the dashboard diffs runs by it).
nlohmann::json settings_json(const TrainSettings& s) {
  nlohmann::json j = nlohmann::json::object();
  for (const SettingKey& k : setting_keys()) {
    const std::string v = k.get(s);
    if (k.is_bool) {
      j[k.name] = v == "true";
      continue;
    }
    size_t used = 0;
    double d = 0;
    try {
      d = std::stod(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (!v.empty() && used == v.size())
      j[k.name] = d;
    else
      j[k.name] = v;
  }
  return j;
}

std::string hms(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, seconds) + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
}

// The settings that decide the numbers of a run: a resume must not change them.
std::string trajectory_hash(TrainSettings s) {
  s.output_dir = s.resume_from_checkpoint = s.device = "";
  s.overwrite_output_dir = s.quiet = s.overwrite_cache = false;
  s.logging_steps = s.save_steps = s.save_total_limit = s.eval_steps = s.sample_steps = s.num_samples = 0;
  s.max_new_tokens = 0;
  s.cache_dir = "";
  const std::string y = settings_to_yaml(s);
  return fmt::format("{:016x}", fnv1a64(y.data(), y.size()));
}

// Mean CE per predicted token over `examples` (no dropout, no gradients).
double eval_loss(ModelBackward& passes, const std::vector<Example>& examples, int64_t batch, int32_t pad) {
  double sum = 0;
  int64_t n = 0;
  for (size_t first = 0; first < examples.size(); first += static_cast<size_t>(batch)) {
    std::vector<const Example*> items;
    for (size_t i = first; i < std::min(examples.size(), first + static_cast<size_t>(batch)); ++i)
      items.push_back(&examples[i]);
    const MicroBatch mb = collate(items, pad);
    const std::vector<int32_t> targets = shift_labels(mb.labels, mb.B, mb.T);
    const std::vector<float> loss = passes.forward(mb.B, mb.T, mb.ids, targets, /*training=*/false, 0);
    for (size_t i = 0; i < loss.size(); ++i)
      if (targets[i] != -100) sum += loss[i], ++n;
  }
  return n ? sum / static_cast<double>(n) : 0.0;
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

}  // namespace

TrainResult run_training(const TrainSettings& s, const TrainHooks& hooks) {
  const auto t_start = Clock::now();
  // Terminal lines also go to OUTPUT_DIR/train.log (held back until the folder is settled).
  std::ofstream log;
  std::vector<std::string> pending;
  auto print = [&](const std::string& line) {
    if (hooks.print)
      hooks.print(line);
    else
      std::printf("%s\n", line.c_str()), std::fflush(stdout);
    if (log.is_open())
      log << line << '\n' << std::flush;
    else
      pending.push_back(line);
  };
  validate_settings(s);
  const fs::path out = s.output_dir;
  fs::path resume_dir;
  if (!s.resume_from_checkpoint.empty()) {
    if (s.resume_from_checkpoint == "latest") {
      const auto cks = list_checkpoints(out);
      if (cks.empty())
        throw Error("--resume_from_checkpoint latest: {} holds no checkpoint-N folder to resume from", out.string());
      resume_dir = cks.back().second;
    } else {
      resume_dir = s.resume_from_checkpoint;
    }
    if (!fs::is_directory(resume_dir)) throw Error("--resume_from_checkpoint: {} is not a folder", resume_dir.string());
  }
  check_output_dir(s, !resume_dir.empty());
  if (!fs::is_directory(s.model_name_or_path) || !fs::exists(fs::path(s.model_name_or_path) / "config.json"))
    throw Error("--model_name_or_path {}: not a Hugging Face model folder (no config.json)", s.model_name_or_path);

  // ---- data ----
  const ChatRenderer renderer(s.model_name_or_path);
  const PreparedData data = prepare_data(s, renderer);
  print(describe_data(data, s));

  // ---- pre-flight memory plan, before any weight is read ----
  // Packed rows hold up to cutoff_len tokens whatever the longest sample.
  const int64_t longest_T = s.packing ? s.cutoff_len : data.train_stats.max_len;
  const MemoryPlan plan = plan_memory(s.model_name_or_path, s, longest_T);
  const double GiB = 1024.0 * 1024.0 * 1024.0;
  print(
      fmt::format("memory plan: weights {:.2f} GiB + LoRA/optimizer {:.2f} GiB + activations {:.2f} GiB (longest "
                  "batch {} tokens) + workspace {:.2f} GiB = {:.2f} GiB{}",
                  plan.weights / GiB, plan.lora_optimizer / GiB, plan.activations / GiB, longest_T,
                  plan.workspace / GiB, plan.total() / GiB,
                  plan.available >= 0 ? fmt::format("; {:.2f} GiB available", plan.available / GiB) : ""));
  if (s.device == "cpu" && plan.available >= 0 && plan.total() > plan.available)  // CPU: everything in RAM
    throw Error(
        "the run needs about {:.2f} GiB but only {:.2f} GiB of RAM is available; lower cutoff_len or "
        "per_device_train_batch_size (raise gradient_accumulation_steps to keep the same effective batch), "
        "keep gradient_checkpointing on, lower lora_r, or close other programs",
        plan.total() / GiB, plan.available / GiB);

  // ---- model and adapter ----
  auto be = make_backend(s.device);
  const Model model(*be, s.model_name_or_path);
  LoraConfig lc;
  if (!s.adapter_name_or_path.empty()) {
    lc = load_peft_adapter_config(s.adapter_name_or_path);
  } else {
    lc.r = static_cast<int>(s.lora_r);
    lc.alpha = s.lora_alpha;
    lc.target = parse_lora_target(s.lora_target);
  }
  lc.dropout = s.lora_dropout;
  lc.use_rslora = s.use_rslora || lc.use_rslora;
  lc.validate();
  LoraParams lora(*be, lc, model.config());
  if (!s.adapter_name_or_path.empty())
    load_peft_adapter_weights(s.adapter_name_or_path, lora);
  else
    lora_init_peft(lora, static_cast<uint64_t>(s.seed), model.weights().dtype() == DType::BF16);

  // ---- schedule (SPEC.md "Steps") ----
  BatchOptions bo;
  bo.batch_size = s.per_device_train_batch_size;
  bo.shuffle = s.shuffle;
  bo.group_by_length = s.group_by_length;
  bo.seed = static_cast<uint64_t>(s.seed);
  bo.pad_id = renderer.pad_id();
  bo.packing = s.packing;
  bo.cutoff_len = s.cutoff_len;
  const Batcher batcher(data.train, bo);
  if (s.packing) print(batcher.packing_summary());
  const int64_t nb = batcher.num_batches();
  const int64_t accum = s.gradient_accumulation_steps;
  const int64_t spe = std::max<int64_t>(nb / accum, 1);
  const int64_t total =
      s.max_steps > 0 ? s.max_steps : static_cast<int64_t>(std::ceil(s.num_train_epochs * static_cast<double>(spe)));
  const LrSchedule schedule(parse_lr_scheduler_type(s.lr_scheduler_type), s.learning_rate, total, s.warmup_steps,
                            s.warmup_ratio);
  TrainConfig tc;
  tc.learning_rate = s.learning_rate;
  tc.beta1 = s.adam_beta1;
  tc.beta2 = s.adam_beta2;
  tc.adam_eps = s.adam_epsilon;
  tc.weight_decay = s.weight_decay;
  tc.max_grad_norm = s.max_grad_norm;
  tc.gradient_checkpointing = s.gradient_checkpointing;
  tc.seed = static_cast<uint64_t>(s.seed);
  LoraTrainer trainer(model, lora, tc, schedule);

  TrainerState st;
  st.total_steps = total;
  st.steps_per_epoch = spe;
  st.seed = static_cast<uint64_t>(s.seed);
  st.lr_scheduler_type = s.lr_scheduler_type;
  st.warmup_steps = schedule.warmup_steps();
  st.learning_rate = s.learning_rate;
  st.num_examples = static_cast<int64_t>(data.train.size());
  st.settings_hash = trajectory_hash(s);
  if (!resume_dir.empty()) {
    const TrainerState saved = load_checkpoint(resume_dir, lora, *be);
    if (saved.settings_hash != st.settings_hash || saved.total_steps != total || saved.num_examples != st.num_examples)
      throw Error(
          "{}: this checkpoint was written with other settings or data (settings hash {} vs {}, {} vs {} "
          "steps, {} vs {} samples); resume with the same config, or start a new run",
          resume_dir.string(), saved.settings_hash, st.settings_hash, saved.total_steps, total, saved.num_examples,
          st.num_examples);
    st.global_step = saved.global_step;
    st.log_loss_sum = saved.log_loss_sum;
    st.log_loss_count = saved.log_loss_count;
    st.last_loss = saved.last_loss;
    trainer.set_steps_done(st.global_step);
    print(fmt::format("resuming from {} at step {}/{}", resume_dir.string(), st.global_step, total));
  } else if (fs::exists(out) && s.overwrite_output_dir) {
    for (const char* f : {"metrics.jsonl", "samples.jsonl", "system.jsonl", "train.log"}) fs::remove(out / f);
    for (const auto& c : list_checkpoints(out)) fs::remove_all(c.second);
    fs::remove_all(out / "final");
  }
  // The run folder (config.yaml/json, env.json, status.json, metrics/samples/system.jsonl).
  track::RunStoreOptions ro;
  ro.resume = !resume_dir.empty();
  nlohmann::json env = track::collect_environment(hooks.lorafit_version);
  env["model"] = s.model_name_or_path;
  env["backend"] = s.device;
  const std::unique_ptr<track::RunStore> store =
      track::RunStore::create(out, settings_to_yaml(s), settings_json(s), env, ro);
  store->update_status_fields({{"total_steps", total}, {"step", st.global_step}});
  log.open(out / "train.log", std::ios::app);
  for (const std::string& line : pending) log << line << '\n';
  log.flush();
  const CheckpointInfo ck_info{fs::absolute(s.model_name_or_path).lexically_normal().string(), s.model_name_or_path};

  print(
      fmt::format("model {} ({} layers, hidden {}, vocab {}); LoRA r {} alpha {} dropout {} on {} modules, {} "
                  "trainable parameters",
                  s.model_name_or_path, model.config().num_layers, model.config().hidden_size,
                  model.config().vocab_size, lc.r, lc.alpha, lc.dropout, lora.modules().size(), lora.num_params()));
  print(
      fmt::format("{} samples, batch {} x accumulation {} -> {} steps per epoch, {} steps in all; lr {} {}, warmup {}",
                  data.train.size(), s.per_device_train_batch_size, accum, spe, total, s.learning_rate,
                  s.lr_scheduler_type, schedule.warmup_steps()));

  TrainResult res;
  res.start_step = st.global_step;
  try {
    // ---- samples: answers to the eval prompts, with the ground truth ----
    auto samples = [&](int64_t step, const std::string& tag) {
      std::vector<SampleAnswer> got;
      if (!hooks.generate) return got;
      lora.set_dropout(0.0f);
      for (size_t i = 0; i < data.eval_idx.size() && static_cast<int64_t>(i) < s.num_samples; ++i) {
        const Record& rec = data.ds.records[static_cast<size_t>(data.eval_idx[i])];
        const std::vector<int32_t> prompt = renderer.prompt_ids(rec);
        const std::vector<int32_t> ids =
            hooks.generate(model, step == 0 && s.adapter_name_or_path.empty() ? nullptr : &lora, prompt,
                           renderer.eos_ids(), static_cast<int>(s.max_new_tokens));
        SampleAnswer a;
        a.step = step;
        a.question =
            rec.messages.empty() ? renderer.decode(prompt) : prompt_messages(rec).back()["content"].get<std::string>();
        a.answer = renderer.decode(ids);
        a.reference = rec.messages.empty() ? rec.text : reference_answer(rec);
        store->log_sample(step, static_cast<double>(step) / static_cast<double>(spe), tag, static_cast<int>(i),
                          a.question, a.answer, a.reference);
        got.push_back(std::move(a));
      }
      lora.set_dropout(static_cast<float>(lc.dropout));
      return got;
    };
    auto do_eval = [&](int64_t step) {
      if (data.eval.empty()) return -1.0;
      lora.set_dropout(0.0f);
      const double l = eval_loss(trainer.passes(), data.eval, s.per_device_eval_batch_size, renderer.pad_id());
      lora.set_dropout(static_cast<float>(lc.dropout));
      store->log_eval(step, {{"eval_loss", std::round(l * 1e4) / 1e4}, {"eval_samples", data.eval.size()}});
      print(fmt::format("step {}/{} | eval_loss {:.4f} on {} samples", step, total, l, data.eval.size()));
      return l;
    };

    if (st.global_step == 0) {
      res.samples_before = samples(0, "before");
      if (hooks.eval_before) res.eval_loss_before = do_eval(0);
    }

    // ---- the loop ----
    std::map<int64_t, std::vector<int64_t>> orders;  // epoch → order (only the current one kept)
    const auto t_loop = Clock::now();
    double win_tokens = 0, win_samples = 0;
    auto t_win = Clock::now();
    bool samples_done_at_end = false;
    for (int64_t k = st.global_step + 1; k <= total; ++k) {
      const int64_t epoch = (k - 1) / spe, s_in = (k - 1) % spe;
      if (!orders.count(epoch)) {
        orders.clear();
        orders[epoch] = batcher.epoch_order(epoch);
      }
      const std::vector<int64_t>& order = orders[epoch];
      const int64_t b0 = nb < accum ? 0 : s_in * accum, b1 = nb < accum ? nb : b0 + accum;
      std::vector<MicroBatch> window;
      for (int64_t b = b0; b < b1; ++b) {
        window.push_back(batcher.batch(order, b));
        win_samples += static_cast<double>(batcher.batch_samples(order, b));
        win_tokens += static_cast<double>(batcher.batch_tokens(order, b));
      }
      const StepStats ss = trainer.step(window);
      st.global_step = k;
      if (ss.updated) st.log_loss_sum += ss.loss, ++st.log_loss_count;

      if (k % s.logging_steps == 0 || k == total) {
        const double dt = std::chrono::duration<double>(Clock::now() - t_win).count();
        const double elapsed = std::chrono::duration<double>(Clock::now() - t_loop).count();
        const double eta = elapsed / static_cast<double>(k - res.start_step) * static_cast<double>(total - k);
        const double loss =
            st.log_loss_count ? std::round(st.log_loss_sum / static_cast<double>(st.log_loss_count) * 1e4) / 1e4 : 0;
        const double ep = static_cast<double>(epoch) + static_cast<double>(b1) / static_cast<double>(nb);
        store->log_metrics(k, ojson{{"loss", loss},
                                    {"grad_norm", ss.grad_norm},
                                    {"learning_rate", ss.learning_rate},
                                    {"epoch", std::round(ep * 1e4) / 1e4},
                                    {"tokens_per_s", win_tokens / dt},
                                    {"samples_per_s", win_samples / dt},
                                    {"elapsed_s", elapsed},
                                    {"eta_s", eta}});
        if (!s.quiet)
          print(
              fmt::format("step {}/{} | loss {:.4f} | grad_norm {:.4f} | lr {:.3e} | epoch {:.2f} | {:.0f} tok/s | "
                          "{:.2f} samples/s | {} elapsed | eta {}",
                          k, total, loss, ss.grad_norm, ss.learning_rate, ep, win_tokens / dt, win_samples / dt,
                          hms(elapsed), hms(eta)));
        res.loss_curve.emplace_back(k, loss);
        st.last_loss = loss;
        st.log_loss_sum = 0;
        st.log_loss_count = 0;
        win_tokens = win_samples = 0;
        t_win = Clock::now();
      }
      if (s.eval_steps > 0 && k % s.eval_steps == 0 && k != total) do_eval(k);
      const bool epoch_end = s_in == spe - 1 || k == total;
      if ((s.sample_steps > 0 && k % s.sample_steps == 0) || epoch_end) {
        auto got = samples(k, epoch_end ? fmt::format("epoch {}", epoch + 1) : fmt::format("step {}", k));
        if (k == total) res.samples_after = std::move(got), samples_done_at_end = true;
      }
      if (k % s.save_steps == 0 || k == total) {
        save_checkpoint(out / fmt::format("checkpoint-{}", k), lora, *be, ck_info, st);
        prune_checkpoints(out, s.save_total_limit);
        store->update_status_fields({{"step", k}});
      }
    }
    if (!samples_done_at_end && res.start_step < total) res.samples_after = samples(total, "end");
    res.eval_loss_after = do_eval(total);
    res.final_dir = out / "final";
    save_adapter_folder(res.final_dir, lora, ck_info);
    store->update_status_fields({{"step", total}});
    store->set_status(track::RunStatus::finished);
  } catch (const std::exception& e) {
    store->set_status(track::RunStatus::failed, e.what());
    throw;
  }
  res.steps = total;
  if (!res.loss_curve.empty())
    res.first_loss = res.loss_curve.front().second, res.last_loss = res.loss_curve.back().second;
  res.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  print(fmt::format("done: {} steps in {}; adapter in {}", total - res.start_step, hms(res.seconds),
                    res.final_dir.string()));
  return res;
}

}  // namespace lorafit
