// Greedy decoding with llama.cpp itself, from given token ids, for tools/export/check_llama_cpp.sh.
//   llama_greedy MODEL.gguf [--lora LORA.gguf] --ids 1,2,3 --n 12
// Prints one JSON line: {"output_ids": [...], "gaps": [...]} — per generated token the logit
// gap between the chosen token and the runner-up (a near-tie explains a difference from
// another implementation). Built against libllama from the llama-cpp-python sdist (CPU).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "llama.h"

static void quiet(enum ggml_log_level, const char*, void*) {}

int main(int argc, char** argv) {
  std::string model_path, lora_path;
  std::vector<llama_token> ids;
  int n = 12;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--lora" && i + 1 < argc) lora_path = argv[++i];
    else if (a == "--n" && i + 1 < argc) n = std::atoi(argv[++i]);
    else if (a == "--ids" && i + 1 < argc) {
      for (char* tok = std::strtok(argv[++i], ","); tok; tok = std::strtok(nullptr, ",")) ids.push_back(std::atoi(tok));
    } else model_path = a;
  }
  if (model_path.empty() || ids.empty()) {
    std::fprintf(stderr, "usage: llama_greedy MODEL.gguf [--lora LORA.gguf] --ids 1,2,3 --n 12\n");
    return 2;
  }
  llama_log_set(quiet, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(model_path.c_str(), mp);
  if (!model) {
    std::fprintf(stderr, "llama.cpp could not load %s\n", model_path.c_str());
    return 1;
  }
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 256;
  cp.n_batch = 256;
  cp.n_threads = cp.n_threads_batch = 1;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!lora_path.empty()) {
    llama_adapter_lora* ad = llama_adapter_lora_init(model, lora_path.c_str());
    if (!ad) {
      std::fprintf(stderr, "llama.cpp could not load the LoRA %s\n", lora_path.c_str());
      return 1;
    }
    float scale = 1.f;
    llama_set_adapters_lora(ctx, &ad, 1, &scale);
  }
  const int V = llama_vocab_n_tokens(llama_model_get_vocab(model));
  std::vector<llama_token> out;
  std::vector<float> gaps;
  std::vector<llama_token> next = ids;
  for (int step = 0; step < n; ++step) {
    if (llama_decode(ctx, llama_batch_get_one(next.data(), static_cast<int32_t>(next.size()))) != 0) {
      std::fprintf(stderr, "llama_decode failed\n");
      return 1;
    }
    const float* logits = llama_get_logits_ith(ctx, -1);
    int best = 0, second = -1;
    for (int v = 1; v < V; ++v) {
      if (logits[v] > logits[best]) second = best, best = v;
      else if (second < 0 || logits[v] > logits[second]) second = v;
    }
    out.push_back(best);
    gaps.push_back(logits[best] - logits[second]);
    next.assign(1, best);
  }
  std::printf("{\"output_ids\": [");
  for (size_t k = 0; k < out.size(); ++k) std::printf("%s%d", k ? ", " : "", out[k]);
  std::printf("], \"gaps\": [");
  for (size_t k = 0; k < gaps.size(); ++k) std::printf("%s%.5f", k ? ", " : "", gaps[k]);
  std::printf("]}\n");
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
