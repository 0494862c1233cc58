// Model load time (mmap + bind) and CPU forward throughput (tokens/s) of a Hugging Face model
// folder, by default the randomly initialised Qwen2.5-0.5B-shaped bf16 model that
// bench/forward_baseline.py writes. bench/forward_vs_transformers.sh runs both sides.
//   LORAFIT_BENCH_MODEL=/tmp/lorafit-bench-qwen2.5-0.5b build/bench/bench_model_forward
// The forward measured is embedding → layers → final norm (hidden states), B = 1, the same
// computation transformers' `model.model(ids)` does; T is the benchmark argument.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"

namespace {

using namespace lorafit;

fs::path bench_model() {
  const char* e = std::getenv("LORAFIT_BENCH_MODEL");
  return e ? fs::path(e) : fs::path("/tmp/lorafit-bench-qwen2.5-0.5b");
}

bool have_model(benchmark::State& state) {
  if (fs::exists(bench_model() / "config.json")) return true;
  state.SkipWithError(("no model at " + bench_model().string() +
                       ": run python bench/forward_baseline.py --make-only DIR and set LORAFIT_BENCH_MODEL=DIR")
                          .c_str());
  return false;
}

void BM_ModelLoad(benchmark::State& state) {
  if (!have_model(state)) return;
  auto be = make_backend("cpu");
  for (auto _ : state) {
    Model m(*be, bench_model());
    benchmark::DoNotOptimize(m.weights().embed().data);
  }
}
BENCHMARK(BM_ModelLoad)->Unit(benchmark::kMillisecond);

void BM_Forward(benchmark::State& state) {
  if (!have_model(state)) return;
  auto be = make_backend("cpu");
  // range(1): activation dtype, 0 = F32 (fp32 compute from the bf16 weights), 1 = BF16 (the
  // run's mixed precision, docs/precision.md), so both sides' two paths are measured.
  const DType act = state.range(1) ? DType::BF16 : DType::F32;
  Model m(*be, bench_model(), act);
  const int64_t T = state.range(0);
  std::mt19937 rng(0);
  std::uniform_int_distribution<int32_t> tok(0, m.config().vocab_size - 1);
  std::vector<int32_t> ids(static_cast<size_t>(T));
  for (auto& i : ids) i = tok(rng);
  ActivationArena acts(*be, m.config(), 1, T, m.config().num_layers, nullptr, false, act);
  acts.set_tokens(ids);
  m.forward(acts);  // warm-up: page in the mapped weights
  for (auto _ : state) {
    m.forward(acts);
    be->sync();
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(T), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Forward)->ArgNames({"T", "bf16"})->Args({128, 0})->Args({128, 1})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);  // as the baseline's reps

}  // namespace

BENCHMARK_MAIN();
