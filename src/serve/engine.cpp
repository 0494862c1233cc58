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
    : model_(model), tok_(tok), slots_(slots), capacity_(capacity), max_waiting_(max_waiting) {
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

bool Engine::wait(const Job& job, size_t sent) {
  std::unique_lock lk(mu_);
  cv_out_.wait(lk, [&] { return job.done || job.ready > sent; });
  return job.done;
}

EngineStats Engine::stats() {
  std::lock_guard lk(mu_);
  return stats_;
}

BatchGenerator& Engine::generator(const LoraParams* lora) {
  auto& g = gens_[lora];
  if (!g) g = std::make_unique<BatchGenerator>(model_, slots_, capacity_, lora);
  return *g;
}

void Engine::loop() {
  while (true) {
    std::vector<std::shared_ptr<Job>> fresh;
    {
      std::unique_lock lk(mu_);
      cv_work_.wait(lk, [&] {
        if (stopping_ || !inbox_.empty()) return true;
        for (const auto& [l, g] : gens_)
          if (!g->idle()) return true;
        return false;
      });
      if (stopping_) return;
      fresh.swap(inbox_);
    }
    for (auto& job : fresh) {
      const int64_t id = next_id_++;
      try {
        generator(job->lora).submit(id, job->prompt, job->settings);
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
    for (auto& [lora, gen] : gens_) {
      if (gen->idle()) continue;
      const auto t0 = Clock::now();
      auto finished = gen->step([&](int64_t id, int32_t token) {
        Job& job = *jobs_.at(id);
        StreamDecoder& dec = *decoders_.at(id);
        std::lock_guard lk(mu_);
        if (job.completion_tokens++ == 0) {  // the first token: time to first token
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
          return false;
        }
        const size_t before = job.text.size();
        job.text += dec.push(token);
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
          cv_out_.notify_all();
          return false;
        }
        const size_t hold = longest > 0 ? longest - 1 : 0;
        job.ready = char_boundary(job.text, job.text.size() > hold ? job.text.size() - hold : 0);
        cv_out_.notify_all();
        return true;
      });
      const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
      std::lock_guard lk(mu_);
      stats_.decode_s_total += dt;
      for (auto& f : finished) {
        Job& job = *jobs_.at(f.id);
        if (job.stop_reason.is_null() && !job.cancelled) job.text += decoders_.at(f.id)->flush();
        job.ready = job.text.size();
        job.prompt_tokens = f.result.prompt_tokens;
        job.completion_tokens = static_cast<int64_t>(f.result.ids.size());
        const bool stopped = f.result.stop == StopReason::Eos || !job.stop_reason.is_null();
        job.finish_reason = stopped ? "stop" : f.result.stop == StopReason::Interrupted ? "abort" : "length";
        stats_.prompt_tokens_total += job.prompt_tokens;
        --stats_.running;
        job.done = true;
        jobs_.erase(f.id);
        decoders_.erase(f.id);
        started_.erase(f.id);
      }
      cv_out_.notify_all();
    }
  }
}

}  // namespace lorafit::serve
