#include "generate/batch_generate.h"

#include <algorithm>
#include <chrono>

#include "util/error.h"

namespace lorafit {

namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Logits of `rows` (R, C) of hidden states to the host, (R, V) row-major.
std::vector<float> host_logits(const Model& m, Tensor rows) {
  Backend& be = m.backend();
  const int64_t R = rows.dim(0), V = m.config().vocab_size;
  std::vector<float> host(static_cast<size_t>(R * V));
  void* buf = be.alloc(host.size() * sizeof(float));
  m.logits(Tensor(buf, DType::F32, {R, V}, be.device()), rows);  // (R, V)
  be.sync();
  be.download(host.data(), buf, host.size() * sizeof(float));
  be.free(buf);
  return host;
}

// The generator's one table; no LoRA buffers: every forward takes its adapters from the LoraMix.
std::unique_ptr<ActivationArena> make_arena(const Model& m, int64_t slots, int64_t capacity, int64_t chunk) {
  LF_CHECK(slots > 0 && chunk > 0 && capacity > 0 && capacity <= context_length(m.config()),
           "{} slots, cache of {} (the context is {})", slots, capacity, context_length(m.config()));
  ArenaSpec spec;
  spec.T = std::max(slots, std::min(capacity, chunk));  // one layer set: inference
  spec.act = m.act_dtype();
  spec.kv_rows = slots;
  spec.kv_capacity = capacity;
  return std::make_unique<ActivationArena>(m.backend(), m.config(), spec);
}

}  // namespace

BatchGenerator::BatchGenerator(const Model& model, int64_t slots, int64_t capacity, const LoraParams* lora,
                               int64_t prefill_chunk)
    : model_(model),
      lora_(lora),
      arena_(make_arena(model, slots, capacity, prefill_chunk)),
      cache_(*arena_),
      mix_(model.backend(), model.config().num_layers, model.act_dtype()) {
  for (int64_t s = slots; s-- > 0;) free_slots_.push_back(s);  // slot 0 first
}

BatchGenerator::~BatchGenerator() = default;

void BatchGenerator::submit(int64_t id, std::vector<int32_t> prompt, const GenerateSettings& s) {
  submit(id, std::move(prompt), s, lora_);
}

void BatchGenerator::submit(int64_t id, std::vector<int32_t> prompt, const GenerateSettings& s, const LoraParams* lora) {
  const int64_t P = static_cast<int64_t>(prompt.size());
  if (P == 0) throw Error("generate: the prompt is empty; give at least one token");
  model_.check_input(prompt, P, "the prompt");
  if (P >= cache_.capacity())
    throw Error("the prompt has {} tokens, but the context holds {} (prompt + at least one new token); "
                "shorten the prompt",
                P, cache_.capacity());
  if (s.max_new_tokens < 1) throw Error("max_new_tokens is {}; it must be at least 1", s.max_new_tokens);
  Sampler check(s.sampling, s.seed);  // validates the sampling parameters now, not mid-batch
  queue_.push_back({id, std::move(prompt), s, lora});
}

bool BatchGenerator::cancel(int64_t id) {
  for (auto& p : queue_)
    if (p.id == id) return p.cancelled = true;
  for (auto& r : active_)
    if (r.id == id) return r.cancelled = true;
  return false;
}

void BatchGenerator::drop_cancelled(std::vector<Finished>& done) {
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (!it->cancelled) {
      ++it;
      continue;
    }
    GenerateResult r;
    r.prompt_tokens = static_cast<int64_t>(it->prompt.size());
    r.stop = StopReason::Interrupted;
    done.push_back({it->id, std::move(r)});
    it = queue_.erase(it);
  }
  std::vector<Row> still;
  for (Row& row : active_) {
    if (!row.cancelled) {
      still.push_back(std::move(row));
      continue;
    }
    row.result.stop = StopReason::Interrupted;
    cache_.set_row_length(row.slot, 0);
    free_slots_.push_back(row.slot);
    done.push_back({row.id, std::move(row.result)});
  }
  active_ = std::move(still);
}

ActivationArena& BatchGenerator::step_arena(int64_t B) {
  arena_->reshape(B, 1);
  return *arena_;
}

bool BatchGenerator::choose(Row& row, std::span<float> logits, const TokenFn& on_token) {
  GenerateResult& r = row.result;
  const int k = row.settings.logprobs;
  std::vector<float> raw;  // (V) the logits before the sampler processes them
  if (k >= 0) raw.assign(logits.begin(), logits.end());
  const int32_t token = row.sampler->sample(logits, row.context);
  if (k >= 0) r.logprobs.push_back(token_logprobs(raw, token, k));
  r.ids.push_back(token);
  row.context.push_back(token);
  row.next = token;
  const bool go_on = !on_token || on_token(row.id, token, k >= 0 ? &r.logprobs.back() : nullptr);
  const auto& eos = row.settings.eos_ids;
  if (std::find(eos.begin(), eos.end(), token) != eos.end()) {
    r.stop = StopReason::Eos;
  } else if (!go_on) {
    r.stop = StopReason::Interrupted;
  } else if (static_cast<int>(r.ids.size()) >= row.settings.max_new_tokens) {
    r.stop = StopReason::MaxNewTokens;
  } else if (cache_.row_length(row.slot) >= cache_.capacity()) {  // no room for the token just chosen
    r.stop = StopReason::ContextFull;
  } else {
    return false;
  }
  return true;
}

void BatchGenerator::prefill(Pending p, int64_t slot, const TokenFn& on_token, std::vector<Finished>& done) {
  const auto t0 = Clock::now();
  const int64_t P = static_cast<int64_t>(p.prompt.size());
  // The prompt in chunks of the arena's rows, each after the ones before it in the slot's cache.
  int64_t n = 0;
  for (int64_t c0 = 0; c0 < P; c0 += n) {
    n = std::min(arena_->capacity(), P - c0);
    arena_->reshape(1, n);
    std::vector<int32_t> ids(p.prompt.begin() + c0, p.prompt.begin() + c0 + n), pos(static_cast<size_t>(n)),
        seg(static_cast<size_t>(n), 0);
    for (int64_t t = 0; t < n; ++t) pos[static_cast<size_t>(t)] = static_cast<int32_t>(c0 + t);
    arena_->set_tokens(ids, pos, seg);
    const LoraRowGroup all{0, n, p.lora};
    mix_.set(std::span(&all, 1));
    const KvRow kr{slot, c0};
    model_.forward(*arena_, mix_, cache_, std::span(&kr, 1));
  }
  cache_.set_row_length(slot, P);
  std::vector<float> logits = host_logits(model_, arena_->hidden().rows(n - 1, n));

  Row row;
  row.id = p.id;
  row.slot = slot;
  row.settings = p.settings;
  row.lora = p.lora;
  row.sampler = std::make_unique<Sampler>(p.settings.sampling, p.settings.seed);
  row.context = std::move(p.prompt);
  row.result.prompt_tokens = P;
  row.result.prefill_s = seconds(t0, Clock::now());
  if (choose(row, logits, on_token)) {
    cache_.set_row_length(slot, 0);
    free_slots_.push_back(slot);
    done.push_back({row.id, std::move(row.result)});
    return;
  }
  active_.push_back(std::move(row));
}

std::vector<BatchGenerator::Finished> BatchGenerator::step(const TokenFn& on_token) {
  std::vector<Finished> done;
  drop_cancelled(done);
  while (!queue_.empty() && !free_slots_.empty()) {
    const int64_t slot = free_slots_.back();
    free_slots_.pop_back();
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    prefill(std::move(p), slot, on_token, done);
  }
  if (active_.empty()) return done;

  const auto t0 = Clock::now();
  const int64_t B = static_cast<int64_t>(active_.size()), V = model_.config().vocab_size;
  // One range of rows per adapter (the order of rows in a step is free: each has its own slot).
  std::stable_sort(active_.begin(), active_.end(),
                   [](const Row& a, const Row& b) { return std::less<const LoraParams*>{}(a.lora, b.lora); });
  std::vector<LoraRowGroup> groups;
  for (int64_t r = 0; r < B; ++r) {
    const LoraParams* l = active_[static_cast<size_t>(r)].lora;
    if (groups.empty() || groups.back().lora != l) groups.push_back({r, r, l});
    groups.back().end = r + 1;
  }
  mix_.set(groups);
  ActivationArena& acts = step_arena(B);
  std::vector<int32_t> ids(static_cast<size_t>(B)), pos(static_cast<size_t>(B)), seg(static_cast<size_t>(B), 0);
  std::vector<KvRow> rows(static_cast<size_t>(B));
  for (size_t r = 0; r < active_.size(); ++r) {
    const int64_t len = cache_.row_length(active_[r].slot);
    ids[r] = active_[r].next;
    pos[r] = static_cast<int32_t>(len);
    rows[r] = {active_[r].slot, len};
  }
  acts.set_tokens(ids, pos, seg);
  model_.forward(acts, mix_, cache_, rows);
  std::vector<float> logits = host_logits(model_, acts.hidden());  // (B, V)
  const double dt = seconds(t0, Clock::now());

  std::vector<Row> still;
  for (size_t r = 0; r < active_.size(); ++r) {
    Row& row = active_[r];
    cache_.set_row_length(row.slot, cache_.row_length(row.slot) + 1);
    row.result.decode_s += dt;
    const std::span<float> lr(logits.data() + static_cast<ptrdiff_t>(r) * V, static_cast<size_t>(V));
    if (choose(row, lr, on_token)) {
      cache_.set_row_length(row.slot, 0);
      free_slots_.push_back(row.slot);
      done.push_back({row.id, std::move(row.result)});
    } else {
      still.push_back(std::move(row));
    }
  }
  active_ = std::move(still);
  return done;
}

std::vector<GenerateResult> BatchGenerator::generate_all(const std::vector<std::vector<int32_t>>& prompts,
                                                         const GenerateSettings& settings,
                                                         const std::function<void(size_t)>& on_done) {
  for (size_t i = 0; i < prompts.size(); ++i) submit(static_cast<int64_t>(i), prompts[i], settings);
  std::vector<GenerateResult> out(prompts.size());
  while (!idle())
    for (auto& f : step()) {
      out[static_cast<size_t>(f.id)] = std::move(f.result);
      if (on_done) on_done(static_cast<size_t>(f.id));
    }
  return out;
}

}  // namespace lorafit
