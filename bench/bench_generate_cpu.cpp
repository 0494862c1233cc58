// Generation at batch 1 on the CPU backend, the real loop (Generator::generate: prefill,
// KV-cache decode, greedy choice from the lm-head row): time to first token and decode
// tokens/s, for comparison with transformers' generate (bench/generate_baseline.py).
//   bench_generate_cpu --model DIR [--prompt 32] [--new 16] [--reps 2]
// Prints `lorafit cpu generate B=1 P=.. N=..: ttft <s> s, decode <tok/s> tokens/s` (best of reps).
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "generate/generate.h"

namespace {

using namespace lorafit;

int run(int argc, char** argv) {
  std::string model;
  int64_t prompt = 32, n_new = 16, reps = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") model = v;
    else if (k == "--prompt") prompt = std::stoll(v);
    else if (k == "--new") n_new = std::stoll(v);
    else if (k == "--reps") reps = std::stoll(v);
    else throw Error("unknown argument {}", k);
  }
  if (model.empty()) throw Error("--model DIR is required");
  auto be = make_backend("cpu");
  Model m(*be, model);
  std::mt19937 g(0);
  std::uniform_int_distribution<int32_t> tok(0, m.config().vocab_size - 1);
  std::vector<int32_t> ids(static_cast<size_t>(prompt));  // (P) random prompt: speed does not depend on ids
  for (auto& t : ids) t = tok(g);
  GenerateSettings s;  // greedy, no eos: exactly n_new tokens, as the baseline's min_new_tokens
  s.max_new_tokens = static_cast<int>(n_new);
  double ttft = 1e30, rate = 0;
  for (int64_t r = 0; r < reps; ++r) {
    Generator gen(m, prompt + n_new);  // a fresh cache: nothing reused between reps
    const GenerateResult res = gen.generate(ids, s);
    ttft = std::min(ttft, res.prefill_s);
    rate = std::max(rate, static_cast<double>(res.ids.size() - 1) / res.decode_s);
  }
  std::printf("lorafit cpu generate B=1 P=%lld N=%lld: ttft %.3f s, decode %.2f tokens/s (best of %lld)\n",
              static_cast<long long>(prompt), static_cast<long long>(n_new), ttft, rate, static_cast<long long>(reps));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_generate_cpu: %s\n", e.what());
    return 1;
  }
}
