// Generation at batch 1 on the CPU backend, the real loop (Generator::generate: prefill,
// KV-cache decode, greedy choice from the lm-head row): time to first token and decode
// tokens/s, for comparison with transformers' generate (bench/generate_baseline.py).
//   bench_generate_cpu --model DIR [--prompt 32] [--new 16] [--reps 2] [--dtype f32|bf16]
// --dtype: the activation (and KV-cache) dtype, as `lorafit generate --dtype` (f32: fp32 compute
// from the bf16 weights, the CPU default; bf16: the bf16 path, vdpbf16ps where the CPU has it).
// Prints `lorafit <dtype> generate B=1 P=.. N=..: ttft <s> s, decode <tok/s> tokens/s` (best of reps),
// then the machine's measured memory read bandwidth and the share of it decode reaches
// (weight bytes read per token × tokens/s ÷ bandwidth).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/simd.h"
#include "generate/generate.h"

namespace {

using namespace lorafit;

// Read bandwidth: a vectorized Σx² (one load per element, nothing stored) over 1 GiB, all
// OpenMP threads, best of 5 passes after a first touch. Bytes per second.
double read_bandwidth() {
  const int64_t n = int64_t{1} << 28;  // floats: 1 GiB
  std::vector<float> buf(static_cast<size_t>(n), 1.f);
  double best = 0, sink = 0;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    sink += cpu::sum_squares_f32(buf.data(), n);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 4.0 * static_cast<double>(n) / s);
  }
  if (sink < 0) std::printf("?");  // keeps the sums alive
  return best;
}

// Bytes of weights one decode token reads: every safetensors byte, less the embedding table
// when it is not also the lm head (then only one row of it is read).
double weight_bytes_per_token(const std::string& dir, const ModelConfig& c) {
  double bytes = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") bytes += static_cast<double>(e.file_size());
  if (!c.tie_word_embeddings) bytes -= 2.0 * c.vocab_size * c.hidden_size;  // bf16 table
  return bytes;
}

int run(int argc, char** argv) {
  std::string model;
  int64_t prompt = 32, n_new = 16, reps = 2;
  std::string dtype = "f32";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") model = v;
    else if (k == "--prompt") prompt = std::stoll(v);
    else if (k == "--new") n_new = std::stoll(v);
    else if (k == "--reps") reps = std::stoll(v);
    else if (k == "--dtype") dtype = v;
    else throw Error("unknown argument {}", k);
  }
  if (model.empty()) throw Error("--model DIR is required");
  if (dtype != "f32" && dtype != "bf16") throw Error("--dtype {}: want f32 or bf16", dtype);
  auto be = make_backend("cpu");
  std::printf("%s\n", be->kernel_info().c_str());
  Model m(*be, model, dtype == "bf16" ? DType::BF16 : DType::F32);
  std::mt19937 g(0);
  std::uniform_int_distribution<int32_t> tok(0, m.config().vocab_size - 1);
  std::vector<int32_t> ids(static_cast<size_t>(prompt));  // (P) random prompt: speed does not depend on ids
  for (auto& t : ids) t = tok(g);
  GenerateSettings s;  // greedy, no eos: exactly n_new tokens, as the baseline's min_new_tokens
  s.max_new_tokens = static_cast<int>(n_new);
  // Warm-up, as the baseline does (generate_baseline.py): the first run pays for paging the
  // mmapped weights in and for oneDNN's kernel generation per shape; its TTFT is printed apart.
  {
    Generator gen(m, prompt + n_new);
    std::printf("lorafit %s cold first prompt: ttft %.3f s\n", dtype.c_str(), gen.generate(ids, s).prefill_s);
  }
  double ttft = 1e30, rate = 0;
  for (int64_t r = 0; r < reps; ++r) {
    Generator gen(m, prompt + n_new);  // a fresh cache: nothing reused between reps
    const GenerateResult res = gen.generate(ids, s);
    ttft = std::min(ttft, res.prefill_s);
    rate = std::max(rate, static_cast<double>(res.ids.size() - 1) / res.decode_s);
  }
  std::printf("lorafit %s generate B=1 P=%lld N=%lld: ttft %.3f s, decode %.2f tokens/s (best of %lld)\n",
              dtype.c_str(), static_cast<long long>(prompt), static_cast<long long>(n_new), ttft, rate, static_cast<long long>(reps));
  const double bw = read_bandwidth(), wb = weight_bytes_per_token(model, m.config());
  std::printf("memory %s read bandwidth %.2f GB/s (%d threads, 1 GiB, best of 5); decode reads %.1f MB/token: "
              "%.2f GB/s = %.0f%% of it\n",
              dtype.c_str(), bw * 1e-9, omp_get_max_threads(), wb * 1e-6, wb * rate * 1e-9, 100.0 * wb * rate / bw);
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
