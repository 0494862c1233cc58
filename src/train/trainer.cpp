// The training run, as a loop over optimizer steps whose follow-up work (log, evaluate,
// answer the eval prompts, checkpoint, stop) is decided by step_events() (train_events.h)
// and done by one handler each. What runs before step 1 is in trainer_setup.cpp.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "train/trainer_run.h"
#include "util/error.h"
#include "util/signals.h"

namespace lorafit {

namespace {

using namespace detail;
using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string hms(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, seconds) + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
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

// ---- the loop's handlers ----

// Throughput since the last log line and over this session.
struct Meter {
  Clock::time_point t_loop = Clock::now(), t_win = Clock::now();
  double win_tokens = 0, win_samples = 0;
  double tokens = 0, samples = 0;  // this session
  double loss_sum = 0;             // Σ step loss of this session's updated steps
  int64_t loss_steps = 0;
};

// The micro-batches of optimizer step k: window k of its epoch's order.
struct EpochOrder {
  int64_t epoch = -1;
  std::vector<int64_t> order;
};
std::vector<MicroBatch> take_window(Run& r, EpochOrder& eo, int64_t k, Meter& m, double* epoch_pos) {
  const int64_t nb = r.batcher->num_batches(), spe = r.st.steps_per_epoch;
  const int64_t epoch = (k - 1) / spe, s_in = (k - 1) % spe;
  if (eo.epoch != epoch) eo = {epoch, r.batcher->epoch_order(epoch)};
  const int64_t b0 = nb < r.accum ? 0 : s_in * r.accum, b1 = nb < r.accum ? nb : b0 + r.accum;
  std::vector<MicroBatch> window;
  for (int64_t b = b0; b < b1; ++b) {
    window.push_back(r.batcher->batch(eo.order, b));
    const double ns = static_cast<double>(r.batcher->batch_samples(eo.order, b));
    const double nt = static_cast<double>(r.batcher->batch_tokens(eo.order, b));
    m.win_samples += ns, m.samples += ns;
    m.win_tokens += nt, m.tokens += nt;
  }
  *epoch_pos = static_cast<double>(epoch) + static_cast<double>(b1) / static_cast<double>(nb);
  return window;
}

void on_log(Run& r, Meter& m, int64_t k, const StepStats& ss, double ep, TrainResult& res) {
  TrainerState& st = r.st;
  const int64_t total = st.total_steps;
  const double dt = seconds_since(m.t_win), elapsed = seconds_since(m.t_loop);
  const double eta = elapsed / static_cast<double>(k - res.start_step) * static_cast<double>(total - k);
  const double loss =
      st.log_loss_count ? std::round(st.log_loss_sum / static_cast<double>(st.log_loss_count) * 1e4) / 1e4 : 0;
  r.store->log_metrics(k, ojson{{"loss", loss},
                                {"grad_norm", ss.grad_norm},
                                {"learning_rate", ss.learning_rate},
                                {"epoch", std::round(ep * 1e4) / 1e4},
                                {"tokens_per_s", m.win_tokens / dt},
                                {"samples_per_s", m.win_samples / dt},
                                {"elapsed_s", elapsed},
                                {"eta_s", eta}});
  if (!r.s.quiet)
    r.con.line(fmt::format(
        "step {}/{} | loss {:.4f} | grad_norm {:.4f} | lr {:.3e} | epoch {:.2f} | {:.0f} tok/s | "
        "{:.2f} samples/s | {} elapsed | eta {}",
        k, total, loss, ss.grad_norm, ss.learning_rate, ep, m.win_tokens / dt, m.win_samples / dt, hms(elapsed),
        hms(eta)));
  res.loss_curve.emplace_back(k, loss);
  st.last_loss = loss;
  st.log_loss_sum = 0;
  st.log_loss_count = 0;
  m.win_tokens = m.win_samples = 0;
  m.t_win = Clock::now();
}

// Eval loss over the held-out examples (−1: none).
double on_evaluate(Run& r, int64_t step) {
  if (r.data.eval.empty()) return -1.0;
  r.lora->set_dropout(0.0f);
  const double l = eval_loss(r.trainer->passes(), r.data.eval, r.s.per_device_eval_batch_size, r.renderer->pad_id());
  r.lora->set_dropout(static_cast<float>(r.lc.dropout));
  r.store->log_eval(step, {{"eval_loss", std::round(l * 1e4) / 1e4}, {"eval_samples", r.data.eval.size()}});
  r.con.line(fmt::format("step {}/{} | eval_loss {:.4f} on {} samples", step, r.st.total_steps, l, r.data.eval.size()));
  return l;
}

// Benchmark scores on eval_data (lorafit eval's scorers through hooks.evaluate), logged as
// eval_<task>_* metrics at the same events as the eval loss, and before the first step.
void on_benchmark(Run& r, int64_t step) {
  const TrainSettings& s = r.s;
  if (s.eval_data.empty()) return;
  if (!r.hooks.evaluate) throw Error("--eval_data: this caller provides no evaluation; use lorafit train");
  r.lora->set_dropout(0.0f);
  const auto encode = [&](const std::string& text) {
    if (!r.renderer->has_template()) {  // a base model: the text as it is, after BOS (as lorafit eval --raw)
      std::vector<int32_t> ids;
      const TokenizerConfig& tc = r.renderer->config();
      if (tc.add_bos_token && tc.bos_token)
        if (auto b = r.renderer->tokenizer().token_to_id(*tc.bos_token)) ids.push_back(*b);
      const std::vector<int32_t> body = r.renderer->tokenizer().encode(text);
      ids.insert(ids.end(), body.begin(), body.end());
      return ids;
    }
    Record rec;  // one user turn through the run's chat template, with its system prompt
    if (!s.system.empty()) rec.messages.push_back(ojson{{"role", "system"}, {"content", s.system}});
    rec.messages.push_back(ojson{{"role", "user"}, {"content", text}});
    return r.renderer->prompt_ids(rec);
  };
  const auto decode = [&](const std::vector<int32_t>& ids) { return r.renderer->decode(ids); };
  const LoraParams* lora = step == 0 && s.adapter_name_or_path.empty() ? nullptr : r.lora.get();
  const auto scores = r.hooks.evaluate(*r.model, lora, encode, decode, r.renderer->eos_ids());
  r.lora->set_dropout(static_cast<float>(r.lc.dropout));
  ojson j = ojson::object();
  std::string line = fmt::format("step {}/{} |", step, r.st.total_steps);
  for (const auto& [k, v] : scores) {
    j[k] = v;
    if (!k.ends_with("_n")) line += fmt::format(" {} {:.2f}", k, v);
  }
  r.store->log_eval(step, j);
  r.con.line(line);
}

// Greedy answers to the first num_samples eval prompts, with the ground truth.
std::vector<SampleAnswer> on_sample(Run& r, int64_t step, const std::string& tag) {
  std::vector<SampleAnswer> got;
  if (!r.hooks.generate) return got;
  const TrainSettings& s = r.s;
  r.lora->set_dropout(0.0f);
  for (size_t i = 0; i < r.data.eval_idx.size() && static_cast<int64_t>(i) < s.num_samples; ++i) {
    const Record& rec = r.data.ds.records[static_cast<size_t>(r.data.eval_idx[i])];
    const std::vector<int32_t> prompt = r.renderer->prompt_ids(rec);
    const bool untrained = step == 0 && s.adapter_name_or_path.empty();
    const std::vector<int32_t> ids = r.hooks.generate(*r.model, untrained ? nullptr : r.lora.get(), prompt,
                                                      r.renderer->eos_ids(), static_cast<int>(s.max_new_tokens));
    SampleAnswer a;
    a.step = step;
    a.question = rec.messages.empty() ? r.renderer->decode(prompt)
                                      : prompt_messages(rec).back()["content"].get<std::string>();
    a.answer = r.renderer->decode(ids);
    a.reference = rec.messages.empty() ? rec.text : reference_answer(rec);
    r.store->log_sample(step, static_cast<double>(step) / static_cast<double>(r.st.steps_per_epoch), tag,
                        static_cast<int>(i), a.question, a.answer, a.reference);
    got.push_back(std::move(a));
  }
  r.lora->set_dropout(static_cast<float>(r.lc.dropout));
  return got;
}

void on_save(Run& r, int64_t k) {
  save_checkpoint(r.out / fmt::format("checkpoint-{}", k), *r.lora, *r.be, r.ck_info, r.st);
  prune_checkpoints(r.out, r.s.save_total_limit);
  r.last_saved = k;
  r.store->update_status_fields({{"step", k}});
}

std::string resume_hint(const Run& r) {
  return r.hooks.resume_command.empty() ? "the same command with --resume_from_checkpoint latest"
                                        : r.hooks.resume_command;
}

// Signals: the first asks the loop to stop after the current step; the second ends the
// process at once, leaving status.json "interrupted" at the last checkpoint.
std::unique_ptr<StopScope> watch_signals(Run& r) {
  auto first = [](int sig) {
    std::fprintf(stderr, "\n%s: finishing the current step, then writing a checkpoint (%s again to quit at once)\n",
                 StopScope::signal_name(sig), sig == 2 ? "Ctrl-C" : "the signal");
    std::fflush(stderr);
  };
  auto force = [&r](int sig) {
    const int64_t last = r.last_saved;
    const std::string why = fmt::format("stopped at once by a second {}; the work after step {} is lost",
                                        StopScope::signal_name(sig), last);
    r.store->update_status_fields({{"step", last}, {"resume", resume_hint(r)}});
    r.store->set_status(track::RunStatus::interrupted, why);
    std::fprintf(stderr, "%s\n%s\n", why.c_str(),
                 last > 0 ? fmt::format("resume with:  {}", resume_hint(r)).c_str() : "no checkpoint was written yet");
  };
  return std::make_unique<StopScope>(first, force);
}

// The end-of-run summary, as transformers' Trainer returns it and LLaMA-Factory prints it
// ("***** train metrics *****"); also written to OUTPUT_DIR/train_results.json.
void summarize(Run& r, const Meter& m, TrainResult& res, double epoch) {
  const double runtime = seconds_since(m.t_loop);
  const int64_t steps = res.steps - res.start_step;
  const double train_loss = m.loss_steps ? m.loss_sum / static_cast<double>(m.loss_steps) : 0;
  res.train_loss = train_loss;
  ojson j{{"epoch", std::round(epoch * 1e4) / 1e4},
          {"train_loss", std::round(train_loss * 1e4) / 1e4},
          {"train_runtime", std::round(runtime * 1e4) / 1e4},
          {"train_samples_per_second", std::round(m.samples / runtime * 1e3) / 1e3},
          {"train_steps_per_second", std::round(static_cast<double>(steps) / runtime * 1e3) / 1e3},
          {"train_tokens_per_second", std::round(m.tokens / runtime * 10) / 10},
          {"train_steps", steps},
          {"trainable_params", r.lora->num_params()},
          {"all_params", r.model->weights().num_params() + r.lora->num_params()}};
  write_file_atomic(r.out / "train_results.json", j.dump(4) + "\n");
  const double frac = 100.0 * static_cast<double>(r.lora->num_params()) /
                      static_cast<double>(r.model->weights().num_params() + r.lora->num_params());
  const auto rt = static_cast<int64_t>(runtime);
  r.con.line("***** train metrics *****");
  auto row = [&r](const char* k, const std::string& v) { r.con.line(fmt::format("  {:<25}= {:>11}", k, v)); };
  row("epoch", fmt::format("{:.2f}", epoch));
  row("train_loss", fmt::format("{:.4f}", train_loss));
  row("train_runtime", fmt::format("{}:{:02}:{:05.2f}", rt / 3600, rt / 60 % 60, runtime - static_cast<double>(rt / 60 * 60)));
  row("train_samples_per_second", fmt::format("{:.3f}", m.samples / runtime));
  row("train_steps_per_second", fmt::format("{:.3f}", static_cast<double>(steps) / runtime));
  row("train_tokens_per_second", fmt::format("{:.1f}", m.tokens / runtime));
  row("trainable_params", fmt::format("{} ({:.4f}%)", thousands(r.lora->num_params()), frac));
}

// Steps from the one after the resume point to the end (or a stop request).
void train_loop(Run& r, TrainResult& res, const StopScope* stop) {
  const TrainSettings& s = r.s;
  TrainerState& st = r.st;
  const int64_t total = st.total_steps;
  Meter m;
  EpochOrder eo;
  double ep = static_cast<double>(st.global_step) / static_cast<double>(st.steps_per_epoch);
  r.con.start_progress(!s.quiet && r.hooks.progress, total, st.global_step);
  for (int64_t k = st.global_step + 1; k <= total; ++k) {
    if (stop->stop_requested() && k == res.start_step + 1) break;  // before this session's first step: nothing to save
    const std::vector<MicroBatch> window = take_window(r, eo, k, m, &ep);
    const StepStats ss = r.trainer->step(window);
    st.global_step = k;
    if (ss.updated) st.log_loss_sum += ss.loss, ++st.log_loss_count, m.loss_sum += ss.loss, ++m.loss_steps;

    const StepEvents ev = step_events(r.events, k, stop->stop_requested());
    if (ev.should_log) on_log(r, m, k, ss, ep, res);
    if (ev.should_evaluate) res.eval_loss_after = on_evaluate(r, k), on_benchmark(r, k);
    if (ev.should_sample) {
      std::vector<SampleAnswer> got = on_sample(r, k, ev.epoch_end ? fmt::format("epoch {}", ev.epoch + 1)
                                                                    : fmt::format("step {}", k));
      if (k == total) res.samples_after = std::move(got);
    }
    if (ev.should_save) on_save(r, k);
    const double tok_s = m.tokens / std::max(seconds_since(m.t_loop), 1e-9);
    r.con.progress(k, {st.last_loss > 0 ? st.last_loss : -1, ss.learning_rate, tok_s});
    if (ev.should_training_stop) break;
  }
  r.con.end_progress();
  res.steps = st.global_step;
  if (st.global_step < total) {  // stopped by a signal
    res.interrupted = true;
    res.stop_signal = stop->stop_signal();
    return;
  }
  if (res.start_step >= total) {  // resumed at the end: no step ran
    res.eval_loss_after = on_evaluate(r, total);
    on_benchmark(r, total);
  }
  summarize(r, m, res, ep);
}

}  // namespace

TrainResult run_training(const TrainSettings& s, const TrainHooks& hooks) {
  const auto t_start = Clock::now();
  validate_settings(s);
  Run r(s, hooks);
  r.out = s.output_dir;
  r.resume_dir = resolve_resume_dir(s);
  check_output_dir(s, !r.resume_dir.empty());
  load_data(r);
  check_memory(r);
  load_model(r);
  plan_steps(r);
  resume_or_reset(r);
  open_run_folder(r);

  TrainResult res;
  res.start_step = r.st.global_step;
  res.trainable_params = r.lora->num_params();
  // From here a signal is a stop request (during the answers before training too).
  const std::unique_ptr<StopScope> stop = watch_signals(r);
  try {
    if (r.st.global_step == 0) {
      res.samples_before = on_sample(r, 0, "before");
      if (hooks.eval_before) res.eval_loss_before = on_evaluate(r, 0);
      on_benchmark(r, 0);
    }
    train_loop(r, res, stop.get());
    if (res.interrupted) {
      const int64_t k = r.st.global_step;
      r.store->update_status_fields({{"step", r.last_saved.load()}, {"resume", resume_hint(r)}});
      const std::string why =
          k > res.start_step ? fmt::format("interrupted by {} after step {}/{}; checkpoint-{} written",
                                           StopScope::signal_name(res.stop_signal), k, r.st.total_steps, k)
                             : fmt::format("interrupted by {} before step {}", StopScope::signal_name(res.stop_signal),
                                           k + 1);
      r.store->set_status(track::RunStatus::interrupted, why);
      r.con.line(why);
      if (r.last_saved > 0) r.con.line(fmt::format("resume with:  {}", resume_hint(r)));
      res.seconds = seconds_since(t_start);
      return res;
    }
    res.final_dir = r.out / "final";
    save_adapter_folder(res.final_dir, *r.lora, r.ck_info);
    r.store->update_status_fields({{"step", r.st.total_steps}});
    r.store->set_status(track::RunStatus::finished);
  } catch (const std::exception& e) {
    r.store->set_status(track::RunStatus::failed, e.what());
    throw;
  }
  if (!res.loss_curve.empty())
    res.first_loss = res.loss_curve.front().second, res.last_loss = res.loss_curve.back().second;
  res.seconds = seconds_since(t_start);
  r.con.line(fmt::format("done: {} steps in {}; adapter in {}", r.st.total_steps - res.start_step, hms(res.seconds),
                         res.final_dir.string()));
  return res;
}

}  // namespace lorafit
