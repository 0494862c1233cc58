// Decode throughput at batch 1 on the CUDA backend (the real Generator: KV cache,
// attention_decode, the lm-head row) against the memory-bandwidth bound: each new token
// reads every weight once, so tokens/s ≤ bandwidth / weight bytes.
//   bench_generate_cuda --model DIR [--device cuda] [--prompt 128] [--new 64] [--bw-gbs 3350]
// --bw-gbs is the card's peak memory bandwidth (H100 SXM 3350, H200 4800 GB/s).
// Prints one line: `lorafit <device> decode B=1: <tokens/s> tokens/s, bound <tokens/s> ...`.
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "generate/generate.h"
#include "model/model.h"

namespace {

using namespace lorafit;

int run(int argc, char** argv) {
  std::string model, device = "cuda";
  int64_t prompt = 128, n_new = 64;
  double bw_gbs = 3350;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") model = v;
    else if (k == "--device") device = v;
    else if (k == "--prompt") prompt = std::stoll(v);
    else if (k == "--new") n_new = std::stoll(v);
    else if (k == "--bw-gbs") bw_gbs = std::stod(v);
    else throw Error("unknown argument {}", k);
  }
  if (model.empty()) throw Error("--model DIR is required");
  auto be = make_backend(device);
  Model m(*be, model);
  Generator gen(m, prompt + n_new + 1);
  std::mt19937 g(0);
  std::uniform_int_distribution<int32_t> tok(0, m.config().vocab_size - 1);
  std::vector<int32_t> ids(static_cast<size_t>(prompt));
  for (auto& t : ids) t = tok(g);
  gen.feed(ids);  // prefill (not timed)
  be->sync();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n_new; ++i) {
    const int32_t next = tok(g);  // random ids: decode speed does not depend on which token
    gen.feed(std::vector<int32_t>{next});
  }
  be->sync();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double weight_bytes = 0;
  m.weights().visit([&](const ParamInfo& p) { weight_bytes += static_cast<double>(p.tensor.nbytes()); });
  const double bound = bw_gbs * 1e9 / weight_bytes;
  std::printf("lorafit %s decode B=1 prompt=%lld: %.1f tokens/s, bandwidth bound %.1f tokens/s (%.2f GB of "
              "weights at %.0f GB/s), %.0f%% of bound\n",
              device.c_str(), static_cast<long long>(prompt), n_new / s, bound, weight_bytes / 1e9, bw_gbs,
              100.0 * (n_new / s) / bound);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_generate_cuda: %s\n", e.what());
    return 1;
  }
}
