#include "generate/generate.h"

#include <algorithm>
#include <chrono>

#include "util/error.h"

namespace lorafit {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::Eos: return "eos";
    case StopReason::MaxNewTokens: return "max_new_tokens";
    case StopReason::ContextFull: return "context_full";
    case StopReason::Interrupted: return "interrupted";
  }
  return "?";
}

int64_t context_length(const ModelConfig& cfg) {
  int64_t n = cfg.max_position_embeddings > 0 ? cfg.max_position_embeddings : INT32_MAX;
  if (cfg.sliding_window) n = std::min<int64_t>(n, *cfg.sliding_window);
  return n;
}

Generator::Generator(const Model& model, int64_t capacity, const LoraParams* lora)
    : model_(model), lora_(lora), cache_(model.backend(), model.config(), 1, capacity, model.act_dtype()) {
  LF_CHECK(capacity <= context_length(model.config()), "cache of {} beyond the context {}", capacity,
           context_length(model.config()));
  logits_row_ = model.backend().alloc(static_cast<size_t>(model.config().vocab_size) * sizeof(float));
}

Generator::~Generator() { model_.backend().free(logits_row_); }

void Generator::set_lora(const LoraParams* lora) {
  if (lora == lora_) return;
  lora_ = lora;
  step_arena_.reset();  // its LoRA buffers belong to the old adapter
  reset();
}

std::vector<float> Generator::feed(std::span<const int32_t> ids, bool all_rows) {
  const int64_t T = static_cast<int64_t>(ids.size()), V = model_.config().vocab_size;
  LF_CHECK(T >= 1 && cache_.length() + T <= cache_.capacity(), "feed {} after {} of {}", T, cache_.length(),
           cache_.capacity());
  Backend& be = model_.backend();
  std::unique_ptr<ActivationArena> prefill;
  ActivationArena* acts = nullptr;
  if (T == 1) {
    if (!step_arena_) step_arena_ = std::make_unique<ActivationArena>(be, model_.config(), 1, 1, 1, lora_, false, model_.act_dtype());
    acts = step_arena_.get();
  } else {
    prefill = std::make_unique<ActivationArena>(be, model_.config(), 1, T, 1, lora_, false,
                                                model_.act_dtype());  // one layer set: inference
    acts = prefill.get();
  }
  acts->set_tokens(std::vector<int32_t>(ids.begin(), ids.end()), cache_.length());
  model_.forward(*acts, lora_, false, &cache_);
  history_.insert(history_.end(), ids.begin(), ids.end());

  const int64_t R = all_rows ? T : 1;
  std::vector<float> host(static_cast<size_t>(R * V));
  void* rows_buf = R == 1 ? logits_row_ : be.alloc(static_cast<size_t>(R * V) * sizeof(float));
  model_.logits(Tensor(rows_buf, DType::F32, {R, V}, be.device()), acts->hidden().rows(T - R, T));  // (R, V)
  be.sync();
  be.download(host.data(), rows_buf, host.size() * sizeof(float));
  if (rows_buf != logits_row_) be.free(rows_buf);
  return host;
}

GenerateResult Generator::generate(std::span<const int32_t> prompt, const GenerateSettings& s,
                                   const std::function<bool(int32_t)>& on_token) {
  const int64_t P = static_cast<int64_t>(prompt.size());
  if (P == 0) throw Error("generate: the prompt is empty; give at least one token");
  model_.check_input(prompt, P, "the prompt");
  if (P >= cache_.capacity())
    throw Error("the prompt has {} tokens, but the context holds {} (prompt + at least one new token); "
                "shorten the prompt",
                P, cache_.capacity());
  if (s.max_new_tokens < 1) throw Error("max_new_tokens is {}; it must be at least 1", s.max_new_tokens);
  Sampler sampler(s.sampling, s.seed);

  // Reuse the cached prefix shared with this prompt (multi-turn chat); at least one prompt
  // token is always fed, since its logits choose the first new token.
  int64_t keep = 0;
  while (keep < P - 1 && keep < static_cast<int64_t>(history_.size()) && history_[keep] == prompt[keep]) ++keep;
  cache_.truncate(keep);
  history_.resize(static_cast<size_t>(keep));

  GenerateResult r;
  r.prompt_tokens = P - keep;
  std::vector<int32_t> context(prompt.begin(), prompt.end());  // prompt + generated: repetition penalty
  const auto t0 = Clock::now();
  std::vector<float> logits = feed(prompt.subspan(static_cast<size_t>(keep)));
  for (int n = 0;; ++n) {
    const int32_t id = sampler.sample(logits, context);
    if (n == 0) r.prefill_s = seconds_since(t0);
    r.ids.push_back(id);
    context.push_back(id);
    const bool go_on = !on_token || on_token(id);
    if (std::find(s.eos_ids.begin(), s.eos_ids.end(), id) != s.eos_ids.end()) {
      r.stop = StopReason::Eos;
      break;
    }
    if (!go_on) {
      r.stop = StopReason::Interrupted;
      break;
    }
    if (static_cast<int>(r.ids.size()) >= s.max_new_tokens) {
      r.stop = StopReason::MaxNewTokens;
      break;
    }
    if (cache_.length() >= cache_.capacity()) {  // no room for the token just chosen
      r.stop = StopReason::ContextFull;
      break;
    }
    const int32_t one[1] = {id};
    logits = feed(one);
  }
  r.decode_s = seconds_since(t0) - r.prefill_s;
  return r;
}

}  // namespace lorafit
