#include "serve/engine.h"

#include <algorithm>

#include "util/error.h"

namespace lorafit::serve {

namespace {

using Clock = std::chrono::steady_clock;

// The end of the longest prefix of `s` that does not split a UTF-8 character at `n`.
size_t char_boundary(const std::string& s, size_t n) {
  while (n > 0 && n < s.size() && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

}  // namespace

Engine::Engine(const Model& model, const Tokenizer& tok, int64_t slots, int64_t capacity, int64_t max_waiting)
    : tok_(tok), capacity_(capacity), max_waiting_(max_waiting),
      gen_(model, slots, capacity) {
  stats_.ttft_buckets.assign(kTtftBounds.size(), 0);
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_work_.notify_all();
  thread_.join();
}

bool Engine::submit(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard lk(mu_);
    if (stats_.waiting >= max_waiting_) return false;
    ++stats_.waiting;
    ++stats_.requests_total;
    inbox_.push_back(job);
  }
  cv_work_.notify_all();
  return true;
}

bool Engine::wait(const Job& job, size_t sent, double timeout_s) {
  std::unique_lock lk(mu_);
  cv_out_.wait_for(lk, std::chrono::duration<double>(timeout_s), [&] { return job.done || job.ready > sent; });
  return job.done;
}

void Engine::cancel(Job& job) {
  {
    std::lock_guard lk(mu_);
    if (job.done || job.cancelled) return;
    job.cancelled = true;
    cancels_ = true;
  }
  cv_work_.notify_all();
}

EngineStats Engine::stats() {
  std::lock_guard lk(mu_);
  return stats_;
}

// Moves new jobs into the generator (engine thread, without the lock: submit() may throw).
void Engine::admit(std::vector<std::shared_ptr<Job>>& fresh) {
  for (auto& job : fresh) {
    const int64_t id = next_id_++;
    try {
      gen_.submit(id, job->prompt, job->settings, job->lora);
    } catch (const Error& e) {
      std::lock_guard lk(mu_);
      job->error = e.what();
      job->done = true;
      --stats_.waiting;
      cv_out_.notify_all();
      continue;
    }
    jobs_[id] = job;
    decoders_[id] = std::make_unique<StreamDecoder>(tok_, /*skip_special=*/true);
    started_[id] = Clock::now();
  }
  fresh.clear();
}

bool Engine::on_token(int64_t id, int32_t token, const TokenLogprobs* lp) {
  Job& job = *jobs_.at(id);
  StreamDecoder& dec = *decoders_.at(id);
  ++job.completion_tokens;
  if (!job.running) {  // the first token: time to first token
    job.running = true;
    job.ttft_s = std::chrono::duration<double>(Clock::now() - started_.at(id)).count();
    --stats_.waiting;
    ++stats_.running;
    stats_.ttft_sum_s += job.ttft_s;
    ++stats_.ttft_count;
    for (size_t b = 0; b < kTtftBounds.size(); ++b)
      if (job.ttft_s <= kTtftBounds[b]) ++stats_.ttft_buckets[b];
  }
  ++stats_.generation_tokens_total;
  if (job.cancelled) return false;  // the client is gone: the slot frees now
  if (std::find(job.stop_ids.begin(), job.stop_ids.end(), token) != job.stop_ids.end()) {
    job.stop_reason = token;
    if (lp) {  // a generated token (counted in usage), though its text is not output
      job.logprobs.push_back(*lp);
      job.token_end.push_back(job.text.size());
    }
    return false;
  }
  const size_t before = job.text.size();
  job.text += dec.push(token);
  if (lp) {
    job.logprobs.push_back(*lp);
    job.token_end.push_back(job.text.size());
  }
  size_t longest = 0;
  for (const auto& s : job.stop) longest = std::max(longest, s.size());
  // A stop string may end in the new text and start up to longest-1 bytes before it.
  const size_t from = before >= longest ? before - longest + 1 : 0;
  size_t cut = std::string::npos;
  for (const auto& s : job.stop) {
    const size_t at = job.text.find(s, from);
    if (at != std::string::npos && at < cut) {
      cut = at;
      job.stop_reason = s;
    }
  }
  if (cut != std::string::npos) {
    job.text.resize(cut);
    job.ready = job.text.size();
    return false;
  }
  const size_t hold = longest > 0 ? longest - 1 : 0;
  job.ready = char_boundary(job.text, job.text.size() > hold ? job.text.size() - hold : 0);
  return true;
}

void Engine::finish(BatchGenerator::Finished& f) {
  Job& job = *jobs_.at(f.id);
  if (job.stop_reason.is_null() && !job.cancelled) job.text += decoders_.at(f.id)->flush();
  job.ready = job.text.size();
  job.prompt_tokens = f.result.prompt_tokens;
  job.completion_tokens = static_cast<int64_t>(f.result.ids.size());
  const bool stopped = f.result.stop == StopReason::Eos || !job.stop_reason.is_null();
  job.finish_reason = stopped ? "stop" : f.result.stop == StopReason::Interrupted ? "abort" : "length";
  stats_.prompt_tokens_total += job.prompt_tokens;
  if (job.running) --stats_.running;
  else --stats_.waiting;  // cancelled before its first token
  job.done = true;
  jobs_.erase(f.id);
  decoders_.erase(f.id);
  started_.erase(f.id);
}

void Engine::loop() {
  std::vector<std::shared_ptr<Job>> fresh;
  while (true) {
    {
      std::unique_lock lk(mu_);
      cv_work_.wait(lk, [&] { return stopping_ || !inbox_.empty() || cancels_ || !gen_.idle(); });
      if (stopping_) return;
      fresh.swap(inbox_);
      if (cancels_) {
        for (auto& [id, job] : jobs_)
          if (job->cancelled) gen_.cancel(id);
        for (auto& job : fresh)  // never reached the generator: done now
          if (job->cancelled) {
            job->done = true;
            job->finish_reason = "abort";
            --stats_.waiting;
          }
        std::erase_if(fresh, [](const std::shared_ptr<Job>& j) { return j->done; });
        cancels_ = false;
      }
    }
    admit(fresh);
    if (gen_.idle()) continue;
    const auto t0 = Clock::now();
    auto finished = gen_.step([&](int64_t id, int32_t token, const TokenLogprobs* lp) {
      std::lock_guard lk(mu_);
      const bool go_on = on_token(id, token, lp);
      cv_out_.notify_all();
      return go_on;
    });
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    std::lock_guard lk(mu_);
    stats_.decode_s_total += dt;
    for (auto& f : finished) finish(f);
    cv_out_.notify_all();
  }
}

}  // namespace lorafit::serve
