#include "generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "util/error.h"
#include "util/rng.h"

namespace lorafit {

namespace {

constexpr float kFiltered = -std::numeric_limits<float>::infinity();  // transformers' filter_value

// Indices of the tokens still in play (logit > -inf). NaN compares false, so it is left out
// and cannot break the sorts below.
std::vector<int32_t> live_indices(std::span<const float> logits) {
  std::vector<int32_t> idx;
  idx.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i)
    if (logits[i] > kFiltered) idx.push_back(static_cast<int32_t>(i));
  return idx;
}

// exp(logit - max) over `idx`, in double, and its sum: softmax numerators without float
// underflow. Returns the sum; `e` is (idx.size()).
double softmax_numerators(std::span<const float> logits, const std::vector<int32_t>& idx,
                          std::vector<double>& e) {
  float m = kFiltered;
  for (int32_t i : idx) m = std::max(m, logits[i]);
  e.resize(idx.size());
  double sum = 0;
  for (size_t k = 0; k < idx.size(); ++k) {
    e[k] = std::exp(static_cast<double>(logits[idx[k]]) - static_cast<double>(m));
    sum += e[k];
  }
  return sum;
}

void check_finite_or_filtered(std::span<const float> logits) {
  for (size_t i = 0; i < logits.size(); ++i) {
    if (std::isnan(logits[i]) || logits[i] == std::numeric_limits<float>::infinity())
      throw Error("sampler: the logit of token {} is {}; the model produced non-finite values "
                  "(check the weights and the dtype)",
                  i, logits[i]);
  }
}

}  // namespace

SamplingParams sampling_params_from(const GenerationConfig& c) {
  SamplingParams p;
  p.do_sample = c.do_sample;
  p.temperature = c.temperature;
  p.top_k = c.top_k;
  p.top_p = c.top_p;
  p.min_p = c.min_p;
  p.repetition_penalty = c.repetition_penalty;
  return p;
}

void validate_sampling_params(const SamplingParams& p, std::string_view label) {
  // `!(x > 0)` style comparisons also catch NaN.
  if (p.do_sample && !(p.temperature > 0 && std::isfinite(p.temperature)))
    throw Error("{}: temperature must be a finite number > 0 when sampling, got {}; for greedy "
                "decoding turn sampling off (do_sample false)",
                label, p.temperature);
  if (p.top_k < 0) throw Error("{}: top_k must be >= 0 (0 turns it off), got {}", label, p.top_k);
  if (!(p.top_p > 0 && p.top_p <= 1))
    throw Error("{}: top_p must be in (0, 1] (1 turns it off), got {}", label, p.top_p);
  if (p.min_p && !(*p.min_p >= 0 && *p.min_p <= 1))
    throw Error("{}: min_p must be in [0, 1], got {}", label, *p.min_p);
  if (!(p.repetition_penalty > 0 && std::isfinite(p.repetition_penalty)))
    throw Error("{}: repetition_penalty must be a finite number > 0 (1 turns it off), got {}", label,
                p.repetition_penalty);
}

std::vector<std::string_view> logits_processor_chain(const SamplingParams& p) {
  std::vector<std::string_view> chain;
  if (p.repetition_penalty != 1.0) chain.push_back("RepetitionPenaltyLogitsProcessor");
  if (!p.do_sample) return chain;  // the warpers run only when sampling
  if (p.temperature != 1.0) chain.push_back("TemperatureLogitsWarper");
  if (p.top_k != 0) chain.push_back("TopKLogitsWarper");
  if (p.top_p < 1.0) chain.push_back("TopPLogitsWarper");
  if (p.min_p) chain.push_back("MinPLogitsWarper");
  return chain;
}

void apply_repetition_penalty(std::span<float> logits, std::span<const int32_t> context_ids,
                              double penalty) {
  // gather → where → scatter in torch: every occurrence of an id reads the original logit, so
  // duplicates are penalised once.
  std::vector<int32_t> ids(context_ids.begin(), context_ids.end());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (!ids.empty() && (ids.front() < 0 || static_cast<size_t>(ids.back()) >= logits.size()))
    throw Error("repetition penalty: context token id {} is outside the vocabulary [0, {})",
                ids.front() < 0 ? ids.front() : ids.back(), logits.size());
  const float pf = static_cast<float>(penalty);
  for (int32_t i : ids) {
    float x = logits[i];
    logits[i] = x < 0 ? x * pf : x / pf;
  }
}

void apply_temperature(std::span<float> logits, double temperature) {
  const float t = static_cast<float>(temperature);
  for (float& x : logits) x = x / t;
}

void apply_top_k(std::span<float> logits, int top_k) {
  const size_t k = std::min<size_t>(static_cast<size_t>(std::max(top_k, 1)), logits.size());
  std::vector<float> live;  // (<= V) values still in play
  live.reserve(logits.size());
  for (float x : logits)
    if (x > kFiltered) live.push_back(x);
  // Fewer live tokens than k: the k-th largest is -inf and nothing more is removed.
  if (live.size() < k) return;
  std::nth_element(live.begin(), live.begin() + static_cast<ptrdiff_t>(k - 1), live.end(),
                   std::greater<float>());
  const float kth = live[k - 1];
  for (float& x : logits)
    if (x < kth) x = kFiltered;
}

void apply_top_p(std::span<float> logits, double top_p) {
  std::vector<int32_t> idx = live_indices(logits);  // (n) tokens in play; -inf ones add 0 mass
  if (idx.empty()) return;
  // Ascending by logit, equal logits in id order: what torch.sort gives when it sorts
  // stably (it does for short rows; for long ones its tie order is unspecified).
  std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return logits[a] < logits[b]; });
  std::vector<double> e;  // (n)
  const double sum = softmax_numerators(logits, idx, e);
  const float threshold = static_cast<float>(1.0 - top_p);  // torch compares in float32
  double cum = 0;  // torch's CPU cumsum accumulates float32 in double
  for (size_t k = 0; k + 1 < idx.size(); ++k) {  // the last (most probable) always stays
    cum += static_cast<double>(static_cast<float>(e[k] / sum));
    if (static_cast<float>(cum) <= threshold) logits[idx[k]] = kFiltered;
    else break;  // cumulative sums only grow
  }
}

void apply_min_p(std::span<float> logits, double min_p) {
  std::vector<int32_t> idx = live_indices(logits);  // (n)
  if (idx.empty()) return;
  std::vector<double> e;  // (n)
  const double sum = softmax_numerators(logits, idx, e);
  // probs in float32 as torch.softmax gives them; the top probability is exp(0)/sum.
  const float top = static_cast<float>(1.0 / sum);
  const float scaled = static_cast<float>(min_p) * top;
  for (size_t k = 0; k < idx.size(); ++k) {
    const float prob = static_cast<float>(e[k] / sum);
    // The top token has prob == top >= scaled (min_p <= 1), so at least one stays.
    if (prob < scaled) logits[idx[k]] = kFiltered;
  }
}

void process_logits(std::span<float> logits, std::span<const int32_t> context_ids,
                    const SamplingParams& p) {
  check_finite_or_filtered(logits);
  if (p.repetition_penalty != 1.0) apply_repetition_penalty(logits, context_ids, p.repetition_penalty);
  if (!p.do_sample) return;
  if (p.temperature != 1.0) apply_temperature(logits, p.temperature);
  if (p.top_k != 0) apply_top_k(logits, p.top_k);
  if (p.top_p < 1.0) apply_top_p(logits, p.top_p);
  if (p.min_p) apply_min_p(logits, *p.min_p);
}

TokenLogprobs token_logprobs(std::span<const float> z, int32_t chosen, int k) {
  LF_CHECK(chosen >= 0 && static_cast<size_t>(chosen) < z.size() && k >= 0, "logprobs of {} among {}", chosen, z.size());
  const float m = *std::max_element(z.begin(), z.end());
  double sum = 0;
  for (float v : z) sum += std::exp(static_cast<double>(v) - m);
  const double lse = m + std::log(sum);
  auto lp = [&](int32_t i) { return static_cast<float>(static_cast<double>(z[static_cast<size_t>(i)]) - lse); };
  TokenLogprobs out;
  out.id = chosen;
  out.logprob = lp(chosen);
  std::vector<int32_t> idx(z.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int32_t>(i);
  const size_t n = std::min(idx.size(), static_cast<size_t>(k));
  std::partial_sort(idx.begin(), idx.begin() + static_cast<ptrdiff_t>(n), idx.end(), [&](int32_t a, int32_t b) {
    return z[static_cast<size_t>(a)] > z[static_cast<size_t>(b)] || (z[static_cast<size_t>(a)] == z[static_cast<size_t>(b)] && a < b);
  });
  for (size_t i = 0; i < n; ++i) out.top.emplace_back(idx[i], lp(idx[i]));
  return out;
}

int32_t argmax_first(std::span<const float> logits) {
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<int32_t>(best);
}

Sampler::Sampler(SamplingParams params, uint64_t seed) : params_(params) {
  validate_sampling_params(params_);
  // splitmix64 spreads the seed over the 256-bit state (never all zero).
  for (uint64_t& s : state_) s = splitmix64_next(seed);
}

uint64_t Sampler::next_u64() {
  auto rotl = [](uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
  const uint64_t result = rotl(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return result;
}

int32_t Sampler::draw(std::span<const float> logits) {
  std::vector<int32_t> idx = live_indices(logits);  // (n) ascending ids
  if (idx.empty()) throw Error("sampler: every token is filtered out (all logits are -inf)");
  std::vector<double> e;  // (n)
  const double sum = softmax_numerators(logits, idx, e);
  const double u = static_cast<double>(next_u64() >> 11) * 0x1.0p-53 * sum;  // [0, sum)
  double cum = 0;
  size_t last_positive = 0;
  for (size_t k = 0; k < idx.size(); ++k) {
    if (e[k] <= 0) continue;  // underflowed: probability 0, never chosen
    cum += e[k];
    last_positive = k;
    if (u < cum) return idx[k];
  }
  return idx[last_positive];  // u within rounding of sum
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> context_ids) {
  process_logits(logits, context_ids, params_);
  if (!params_.do_sample) return argmax_first(logits);
  return draw(logits);
}

}  // namespace lorafit
