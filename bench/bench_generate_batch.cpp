// Batched against sequential generation on the CPU backend: the same B prompts (random ids of
// different lengths, greedy, no eos, exactly N new tokens each) generated one at a time with
// Generator, then together with BatchGenerator (B slots). Reports generated tokens/s of the
// whole job (prefill included, as `lorafit eval` experiences it) and of decode alone, and
// checks the two produce the same ids.
//   bench_generate_batch --model DIR [--batch 16] [--prompt 32] [--new 16]
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "generate/batch_generate.h"

namespace {

using namespace lorafit;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int run(int argc, char** argv) {
  std::string model;
  int64_t batch = 16, prompt = 32, n_new = 16;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") model = v;
    else if (k == "--batch") batch = std::stoll(v);
    else if (k == "--prompt") prompt = std::stoll(v);
    else if (k == "--new") n_new = std::stoll(v);
    else throw Error("unknown argument {}", k);
  }
  if (model.empty()) throw Error("--model DIR is required");
  auto be = make_backend("cpu");
  Model m(*be, model);
  std::mt19937 g(0);
  std::uniform_int_distribution<int32_t> tok(0, m.config().vocab_size - 1);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(batch));  // lengths P/2 .. P
  for (size_t b = 0; b < prompts.size(); ++b) {
    prompts[b].resize(static_cast<size_t>(prompt / 2 + (prompt / 2) * static_cast<int64_t>(b) / std::max<int64_t>(1, batch - 1)));
    for (auto& t : prompts[b]) t = tok(g);
  }
  GenerateSettings s;  // greedy, no eos: exactly n_new tokens each
  s.max_new_tokens = static_cast<int>(n_new);
  const int64_t cap = prompt + n_new;
  const double total_new = static_cast<double>(batch * n_new);

  std::vector<GenerateResult> seq;
  const auto t0 = Clock::now();
  {
    Generator gen(m, cap);
    for (const auto& p : prompts) {
      gen.reset();
      seq.push_back(gen.generate(p, s));
    }
  }
  const double seq_s = since(t0);
  double seq_decode_s = 0;
  for (const auto& r : seq) seq_decode_s += r.decode_s;

  const auto t1 = Clock::now();
  BatchGenerator bg(m, batch, cap);
  const auto bat = bg.generate_all(prompts, s);
  const double bat_s = since(t1);
  double bat_prefill_s = 0;
  for (const auto& r : bat) bat_prefill_s += r.prefill_s;
  const double bat_decode_s = bat_s - bat_prefill_s;  // the steps: every row decodes in each

  bool same = true;
  for (size_t b = 0; b < prompts.size(); ++b) same = same && seq[b].ids == bat[b].ids;
  const double decode_tokens = static_cast<double>(batch * (n_new - 1));
  std::printf("lorafit cpu generate B=%lld P=%lld..%lld N=%lld: sequential %.2f tokens/s (decode %.2f), batched %.2f "
              "tokens/s (decode %.2f): %.2fx (decode %.2fx); ids %s\n",
              static_cast<long long>(batch), static_cast<long long>(prompt / 2), static_cast<long long>(prompt),
              static_cast<long long>(n_new), total_new / seq_s, decode_tokens / seq_decode_s, total_new / bat_s,
              decode_tokens / bat_decode_s, seq_s / bat_s, (decode_tokens / bat_decode_s) / (decode_tokens / seq_decode_s),
              same ? "identical" : "DIFFER");
  return same ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_generate_batch: %s\n", e.what());
    return 1;
  }
}
