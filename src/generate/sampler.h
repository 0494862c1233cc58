// Next-token choice from one row of logits, with transformers' 4.46 semantics.
//
// The logits processors are applied in the order GenerationMixin._get_logits_processor
// builds them for sampling (generation/utils.py):
//   RepetitionPenaltyLogitsProcessor (if repetition_penalty != 1; greedy too)
//   then, only when do_sample:
//   TemperatureLogitsWarper (temperature != 1) → TopKLogitsWarper (top_k != 0)
//   → TopPLogitsWarper (top_p < 1) → MinPLogitsWarper (min_p set)
// Each one is a public function below that mirrors its class in logits_process.py, the float32
// arithmetic included. Greedy = argmax after the repetition penalty, first index on ties
// (torch.argmax). Sampling draws from softmax of the processed logits with our own seeded
// RNG (xoshiro256**): a fixed seed reproduces the same choices; torch's random stream is not
// reproduced. Filtered tokens become exactly -inf, as transformers' filter_value.
//
// V = vocabulary size. Logits must not contain NaN or +inf (Sampler::sample and
// process_logits check and throw Error); -inf entries are allowed (already filtered tokens).
#pragma once
#include <cstdint>
#include <utility>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "formats/generation_config.h"

namespace lorafit {

struct SamplingParams {
  bool do_sample = false;
  double temperature = 1.0;         // > 0 when do_sample
  int top_k = 0;                    // 0 = off
  double top_p = 1.0;               // (0, 1]; 1 = off
  std::optional<double> min_p;      // [0, 1]
  double repetition_penalty = 1.0;  // > 0; 1 = off
};

// The sampling part of a generation_config.json (validated there).
SamplingParams sampling_params_from(const GenerationConfig& config);

// Throws Error "LABEL: <setting> ..." for values transformers would refuse (temperature <= 0
// while sampling, top_k < 0, top_p outside (0, 1], min_p outside [0, 1], penalty <= 0, NaN).
void validate_sampling_params(const SamplingParams& p, std::string_view label = "sampling settings");

// transformers' class names of the processors `p` enables, in the order they run.
std::vector<std::string_view> logits_processor_chain(const SamplingParams& p);

// Every token id occurring in `context_ids` (prompt + generated so far; duplicates count
// once) gets logit < 0 ? logit * penalty : logit / penalty, in float32 with the penalty
// rounded to float32 (torch's tensor-by-Python-scalar arithmetic). Ids outside [0, V) throw.
void apply_repetition_penalty(std::span<float> logits /*(V)*/, std::span<const int32_t> context_ids,
                              double penalty);

// logit / float32(temperature): one float32 rounding, bitwise equal to torch's.
void apply_temperature(std::span<float> logits /*(V)*/, double temperature);

// Keeps logits >= the k-th largest (k = clamp(top_k, 1, V)); all ties with the k-th survive.
void apply_top_k(std::span<float> logits /*(V)*/, int top_k);

// Sorts ascending, removes tokens whose cumulative probability (float32 softmax, cumsum
// accumulated in double and rounded to float32, as torch on CPU) is <= float32(1 - top_p);
// the most probable token always stays. Among equal logits straddling the cut the lower ids
// are removed first, as torch's sort orders ties when it is stable (short rows); for long
// rows torch leaves that order unspecified, and only the number kept is defined.
void apply_top_p(std::span<float> logits /*(V)*/, double top_p);

// Removes tokens whose probability is < float32(min_p) * (top probability), computed on the
// logits as they arrive (after temperature). The top token always stays.
void apply_min_p(std::span<float> logits /*(V)*/, double min_p);

// Applies the chain logits_processor_chain(p) describes, in place. Throws on NaN/+inf.
void process_logits(std::span<float> logits /*(V)*/, std::span<const int32_t> context_ids,
                    const SamplingParams& p);

// First index of the largest value (torch.argmax); -inf everywhere gives 0.
int32_t argmax_first(std::span<const float> logits /*(V)*/);

// A chosen token's log-probability and the k most likely tokens', from log_softmax of the
// raw logits (before repetition penalty, temperature or any warper: vLLM's default
// logprobs_mode "raw_logprobs"). The sum is in double, so each value is good to float
// rounding. top is ordered most likely first, ties by the lower id.
struct TokenLogprobs {
  int32_t id = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // (id, logprob), k entries (fewer when V < k)
};
TokenLogprobs token_logprobs(std::span<const float> raw_logits /*(V)*/, int32_t chosen, int k);

class Sampler {
 public:
  Sampler(SamplingParams params, uint64_t seed);  // validates params

  // Processes `logits` in place (see process_logits) and returns the chosen token id:
  // argmax when !do_sample (no random number used), else a draw from softmax.
  int32_t sample(std::span<float> logits /*(V) modified*/, std::span<const int32_t> context_ids);

  // One draw from softmax(processed_logits); tokens at -inf are never chosen.
  int32_t draw(std::span<const float> processed_logits /*(V)*/);

  const SamplingParams& params() const { return params_; }

 private:
  uint64_t next_u64();  // xoshiro256**
  SamplingParams params_;
  uint64_t state_[4];
};

}  // namespace lorafit
