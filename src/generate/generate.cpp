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

Generator::Generator(const Model& model, int64_t capacity, const LoraParams* lora, int64_t prefill_chunk)
    : model_(model), lora_(lora), capacity_(capacity), prefill_chunk_(prefill_chunk) {
  LF_CHECK(capacity > 0 && capacity <= context_length(model.config()), "cache of {} beyond the context {}",
           capacity, context_length(model.config()));
  LF_CHECK(prefill_chunk > 0, "prefill chunk {}", prefill_chunk);
  build_arena();
  logits_row_ = model.backend().alloc(static_cast<size_t>(model.config().vocab_size) * sizeof(float));
}

Generator::~Generator() { model_.backend().free(logits_row_); }

void Generator::build_arena() {
  cache_.reset();
  arena_.reset();  // free the old table before the new one is allocated
  ArenaSpec spec;
  spec.T = std::min(capacity_, prefill_chunk_);
  spec.act = model_.act_dtype();
  spec.lora = lora_;  // one layer set: inference
  spec.kv_rows = 1;
  spec.kv_capacity = capacity_;
  arena_ = std::make_unique<ActivationArena>(model_.backend(), model_.config(), spec);
  cache_ = std::make_unique<KvCache>(*arena_);
  history_.clear();
}

void Generator::set_lora(const LoraParams* lora) {
  if (lora == lora_) return;
  lora_ = lora;
  build_arena();  // its LoRA buffers belong to the old adapter; the cache starts empty
}

void Generator::append_logits(std::vector<float>& out, int64_t n, int64_t R) {
  Backend& be = model_.backend();
  const int64_t V = model_.config().vocab_size;
  void* rows_buf = R == 1 ? logits_row_ : be.alloc(static_cast<size_t>(R * V) * sizeof(float));
  model_.logits(Tensor(rows_buf, DType::F32, {R, V}, be.device()), arena_->hidden().rows(n - R, n));  // (R, V)
  be.sync();
  const size_t at = out.size();
  out.resize(at + static_cast<size_t>(R * V));
  be.download(out.data() + at, rows_buf, static_cast<size_t>(R * V) * sizeof(float));
  if (rows_buf != logits_row_) be.free(rows_buf);
}

std::vector<float> Generator::feed(std::span<const int32_t> ids, bool all_rows) {
  const int64_t T = static_cast<int64_t>(ids.size());
  LF_CHECK(T >= 1 && cache_->length() + T <= cache_->capacity(), "feed {} after {} of {}", T, cache_->length(),
           cache_->capacity());
  std::vector<float> host;  // (R, V): every fed row, or the last
  for (int64_t t0 = 0; t0 < T; t0 += arena_->capacity()) {
    const int64_t n = std::min(arena_->capacity(), T - t0);
    arena_->reshape(1, n);
    arena_->set_tokens(std::vector<int32_t>(ids.begin() + t0, ids.begin() + t0 + n), cache_->length());
    model_.forward(*arena_, lora_, false, cache_.get());
    if (all_rows || t0 + n == T) append_logits(host, n, all_rows ? n : 1);
  }
  history_.insert(history_.end(), ids.begin(), ids.end());
  return host;
}

GenerateResult Generator::generate(std::span<const int32_t> prompt, const GenerateSettings& s,
                                   const std::function<bool(int32_t)>& on_token) {
  const int64_t P = static_cast<int64_t>(prompt.size());
  if (P == 0) throw Error("generate: the prompt is empty; give at least one token");
  model_.check_input(prompt, P, "the prompt");
  if (P >= cache_->capacity())
    throw Error("the prompt has {} tokens, but the context holds {} (prompt + at least one new token); "
                "shorten the prompt",
                P, cache_->capacity());
  if (s.max_new_tokens < 1) throw Error("max_new_tokens is {}; it must be at least 1", s.max_new_tokens);
  Sampler sampler(s.sampling, s.seed);

  // Reuse the cached prefix shared with this prompt (multi-turn chat); at least one prompt
  // token is always fed, since its logits choose the first new token.
  int64_t keep = 0;
  while (keep < P - 1 && keep < static_cast<int64_t>(history_.size()) && history_[keep] == prompt[keep]) ++keep;
  cache_->truncate(keep);
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
    if (cache_->length() >= cache_->capacity()) {  // no room for the token just chosen
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
