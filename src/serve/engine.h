// The serving engine: one thread that owns the model's batched decoders and runs them
// continuously. Requests from any HTTP thread join between decode steps (submit()), stream
// their text through a Job (whole UTF-8 characters only, stop strings held back until they
// can no longer match), and leave when they stop; a cancelled Job (client gone) frees its
// slot at the next step.
//
// Each served model (the base, each adapter) has its own BatchGenerator; requests for one of
// them decode together in one forward per step, and the generators take steps in turn.
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
  std::atomic<bool> cancelled{false};

  std::string text;        // the output so far (stop string cut off)
  size_t ready = 0;        // bytes of text that may be sent: whole characters no stop can change
  bool done = false;
  std::string finish_reason;           // "stop" or "length"
  nlohmann::json stop_reason;          // the stop string or id that matched, else null
  int64_t prompt_tokens = 0, completion_tokens = 0;
  double ttft_s = 0;                   // time to the first token
  std::string error;                   // the engine refused it (then done)
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
  // Waits until the job has more ready text than `sent` bytes, or is done; returns done.
  bool wait(const Job& job, size_t sent);
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
  BatchGenerator& generator(const LoraParams* lora);

  const Model& model_;
  const Tokenizer& tok_;
  int64_t slots_, capacity_, max_waiting_;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_out_;
  std::vector<std::shared_ptr<Job>> inbox_;
  bool stopping_ = false;
  EngineStats stats_;
  // engine thread only:
  std::map<const LoraParams*, std::unique_ptr<BatchGenerator>> gens_;
  std::map<int64_t, std::shared_ptr<Job>> jobs_;
  std::map<int64_t, std::unique_ptr<StreamDecoder>> decoders_;
  std::map<int64_t, std::chrono::steady_clock::time_point> started_;
  int64_t next_id_ = 0;
  std::thread thread_;
};

}  // namespace lorafit::serve
