// The serving engine: one thread that owns the model's batched decoders and runs them
// continuously. Requests from any HTTP thread join between decode steps (submit()), stream
// their text through a Job (whole UTF-8 characters only, stop strings held back until they
// can no longer match), and leave when they stop; a cancelled Job (client gone) frees its
// slot at the next step.
//
// One BatchGenerator serves the base model and every adapter: rows of different adapters (or
// none) decode together in one forward per step (per-row adapters at the LoRA seam).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "generate/batch_generate.h"
#include "tokenizer/tokenizer.h"

namespace lorafit::serve {

// One request's life. Fields below `mu` are written by the engine thread under Engine's mutex
// and read by the HTTP thread under the same mutex.
struct Job {
  std::vector<int32_t> prompt;
  GenerateSettings settings;
  const LoraParams* lora = nullptr;  // null: the base model
  std::vector<std::string> stop;     // stop strings (not part of the output)
  std::vector<int32_t> stop_ids;     // stop token ids (their text is not part of the output)
  std::atomic<bool> cancelled{false};  // set through Engine::cancel

  std::string text;        // the output so far (stop string cut off)
  std::vector<TokenLogprobs> logprobs;  // per generated token when settings.logprobs ≥ 0
  std::vector<size_t> token_end;        // bytes of text once each of those tokens was added
  size_t ready = 0;        // bytes of text that may be sent: whole characters no stop can change
  bool done = false;
  std::string finish_reason;           // "stop" or "length"
  nlohmann::json stop_reason;          // the stop string or id that matched, else null
  int64_t prompt_tokens = 0, completion_tokens = 0;
  double ttft_s = 0;                   // time to the first token
  std::string error;                   // the engine refused it (then done)
  bool running = false;                // has its first token (counted in running, not waiting)
};

struct EngineStats {
  int64_t running = 0, waiting = 0;
  int64_t requests_total = 0, prompt_tokens_total = 0, generation_tokens_total = 0;
  double ttft_sum_s = 0;
  int64_t ttft_count = 0;
  std::vector<double> ttft_buckets;  // cumulative counts per bucket of kTtftBounds
  double decode_s_total = 0;         // wall time of decode steps
};
inline const std::vector<double> kTtftBounds = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

class Engine {
 public:
  // `slots` rows per generator, each of `capacity` positions; at most `max_waiting` requests
  // wait for a slot beyond the running ones.
  Engine(const Model& model, const Tokenizer& tok, int64_t slots, int64_t capacity, int64_t max_waiting);
  ~Engine();  // stops the thread

  // Queues a job; false when the queue is full (the caller answers 503).
  bool submit(const std::shared_ptr<Job>& job);
  // Waits until the job has more ready text than `sent` bytes, or is done, or `timeout_s`
  // passed (the caller checks its client meanwhile); returns done.
  bool wait(const Job& job, size_t sent, double timeout_s = 1e9);
  // The client is gone: the job leaves the batch (or the queue) at the next step.
  void cancel(Job& job);
  // Copies of a job's fields, taken under the lock.
  template <class F>
  auto with_lock(F&& f) {
    std::lock_guard lk(mu_);
    return f();
  }
  EngineStats stats();
  int64_t capacity() const { return capacity_; }

 private:
  void loop();
  void admit(std::vector<std::shared_ptr<Job>>& fresh);
  bool on_token(int64_t id, int32_t token, const TokenLogprobs* lp);  // under mu_
  void finish(BatchGenerator::Finished& f);   // under mu_

  const Tokenizer& tok_;
  int64_t capacity_, max_waiting_;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_out_;
  std::vector<std::shared_ptr<Job>> inbox_;
  bool stopping_ = false;
  EngineStats stats_;
  // engine thread only:
  BatchGenerator gen_;
  std::map<int64_t, std::shared_ptr<Job>> jobs_;
  std::map<int64_t, std::unique_ptr<StreamDecoder>> decoders_;
  std::map<int64_t, std::chrono::steady_clock::time_point> started_;
  int64_t next_id_ = 0;
  bool cancels_ = false;  // some job was cancelled since the last step (under mu_)
  std::thread thread_;
};

}  // namespace lorafit::serve
