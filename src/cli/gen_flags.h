// Flags shared by `lorafit generate` and `lorafit chat`: model/adapters and the decoding
// settings, which override the defaults of the model's generation_config.json.
#pragma once
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/quant_flags.h"
#include "generate/inference.h"
#include "util/error.h"
#include "util/parse.h"

namespace lorafit::cli {

struct GenFlags {
  InferenceOptions inf;
  std::optional<std::string> do_sample;  // "true"/"false"
  std::optional<double> temperature, top_p, min_p, repetition_penalty;
  std::optional<int> top_k, max_new_tokens;
  uint64_t seed = 0;
  std::optional<std::string> system;
  std::optional<std::string> enable_thinking;  // "true"/"false"
};

inline void add_gen_flags(CLI::App& sub, GenFlags& f) {
  sub.add_option("--model,--model_name_or_path", f.inf.model, "Hugging Face model folder (default: the adapter's base model)");
  sub.add_option("--adapter,--adapter_name_or_path", f.inf.adapters, "PEFT adapter folder (repeat for several; chat switches with /adapter)");
  sub.add_flag("--merge", f.inf.merge, "merge the adapter into the weights at load (one adapter)");
  sub.add_flag("--raw", f.inf.raw, "no chat template: the text goes to the model as it is");
  sub.add_option("--device", f.inf.device, "cpu or cuda")->capture_default_str();
  sub.add_option("--dtype", f.inf.dtype, "activations: auto (the checkpoint's dtype on cuda, f32 on cpu), bf16 or f32")
      ->capture_default_str();
  add_quant_flags(sub, f.inf.quant);
  sub.add_option("--system", f.system, "system prompt");
  sub.add_option("--enable_thinking", f.enable_thinking,
                 "true or false: the chat template variable (Qwen3 thinking); default: what the adapter was trained "
                 "with, else the template's default");
  sub.add_option("--do_sample", f.do_sample, "true: sample; false: greedy (default: generation_config.json)");
  sub.add_option("--temperature", f.temperature, "sampling temperature");
  sub.add_option("--top_k", f.top_k, "keep the k most likely tokens (0: off)");
  sub.add_option("--top_p", f.top_p, "nucleus sampling threshold (1: off)");
  sub.add_option("--min_p", f.min_p, "drop tokens below min_p × the top probability");
  sub.add_option("--repetition_penalty", f.repetition_penalty, "penalty for tokens already present (1: off)");
  sub.add_option("--max_new_tokens", f.max_new_tokens, "most tokens to generate (default: generation_config.json, "
                                                       "else 256)");
  sub.add_option("--seed", f.seed, "random seed of sampling")->capture_default_str();
}

// Loads the model, adapters and template (with --enable_thinking) and prints the load
// warnings (an adapter whose template or eos differs from its base folder's).
inline std::unique_ptr<Inference> load_inference(const GenFlags& f) {
  InferenceOptions o = f.inf;
  if (f.enable_thinking) {
    if (*f.enable_thinking == "true") o.enable_thinking = true;
    else if (*f.enable_thinking == "false") o.enable_thinking = false;
    else throw Error("--enable_thinking: \"{}\" is not true or false", *f.enable_thinking);
  }
  auto inf = std::make_unique<Inference>(o);
  for (const std::string& w : inf->warnings()) std::fprintf(stderr, "warning: %s\n", w.c_str());
  return inf;
}

inline GenerateSettings resolve_settings(const Inference& inf, const GenFlags& f) {
  GenerateSettings s = inf.defaults();
  if (f.do_sample) s.sampling.do_sample = parse_bool(*f.do_sample, "--do_sample");
  if (f.temperature) s.sampling.temperature = *f.temperature;
  if (f.top_k) s.sampling.top_k = *f.top_k;
  if (f.top_p) s.sampling.top_p = *f.top_p;
  if (f.min_p) s.sampling.min_p = *f.min_p;
  if (f.repetition_penalty) s.sampling.repetition_penalty = *f.repetition_penalty;
  if (f.max_new_tokens) s.max_new_tokens = *f.max_new_tokens;
  if (s.max_new_tokens < 1) throw Error("--max_new_tokens {}: must be at least 1", s.max_new_tokens);
  validate_sampling_params(s.sampling, "decoding settings (generation_config.json and flags)");
  s.seed = f.seed;
  return s;
}

}  // namespace lorafit::cli
