// CPU LoRA training throughput (tokens/s) and peak RSS: one optimizer step per iteration
// (forward, chunked lm-head + CE, backward, clip, AdamW) on a Qwen2.5-0.5B-shaped model
// (the random bf16 folder bench/forward_baseline.py writes), LoRA r 64 alpha 16 all-linear,
// batch 2 × T tokens, gradient checkpointing on (/1) or off (/0). Arguments: {checkpointing, T}.
//   LORAFIT_BENCH_MODEL=/tmp/lorafit-bench-qwen2.5-0.5b OMP_NUM_THREADS=2
//     build/bench/bench_train_step --benchmark_filter='BM_TrainStep/1/128'
// Run each configuration in its own process: peak RSS is per process (bench/train_vs_peft.sh).
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"
#include "train/train_step.h"

namespace {

using namespace lorafit;

fs::path bench_model() {
  const char* e = std::getenv("LORAFIT_BENCH_MODEL");
  return e ? fs::path(e) : fs::path("/tmp/lorafit-bench-qwen2.5-0.5b");
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

void BM_TrainStep(benchmark::State& state) {
  if (!fs::exists(bench_model() / "config.json")) {
    state.SkipWithError(("no model at " + bench_model().string() +
                         ": run /opt/gv/bin/python bench/forward_baseline.py --make-only")
                            .c_str());
    return;
  }
  const bool ckpt = state.range(0) != 0;
  const int64_t B = 2, T = state.range(1);
  // range(2): 1 = --bf16 true (bf16 activations and GEMMs, fp32 LoRA masters; docs/precision.md),
  // 0 = fp32 compute from the bf16 weights.
  const DType act = state.range(2) ? DType::BF16 : DType::F32;
  auto be = make_backend("cpu");
  Model m(*be, bench_model(), act);
  LoraConfig lc;
  lc.r = 64;
  lc.alpha = 16;
  lc.dropout = 0.0;
  lc.target = parse_lora_target("all-linear");
  LoraParams p(*be, lc, m.config());
  lora_init_peft(p, 42, m.weights().dtype() == DType::BF16);
  TrainConfig tc;
  tc.gradient_checkpointing = ckpt;
  LoraTrainer trainer(m, p, tc, LrSchedule(LrSchedulerType::Linear, 1e-4, 1000));
  std::mt19937 g(0);
  std::uniform_int_distribution<int32_t> tok(0, m.config().vocab_size - 1);
  MicroBatch mb;
  mb.B = B;
  mb.T = T;
  for (int64_t i = 0; i < B * T; ++i) {
    mb.ids.push_back(tok(g));
    mb.labels.push_back(mb.ids.back());  // every token trained (no prompt mask)
  }
  trainer.step({mb});  // warm-up: arena allocation, first-touch of the mapped weights
  for (auto _ : state) {
    StepStats st = trainer.step({mb});
    benchmark::DoNotOptimize(st.loss);
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(B * T), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_RSS_MiB"] = peak_rss_mib();
  state.counters["arena_MiB"] = static_cast<double>(trainer.passes().bytes()) / (1024.0 * 1024.0);
}
BENCHMARK(BM_TrainStep)
    ->ArgsProduct({{1, 0}, {128, 384}, {0, 1}})
    ->Unit(benchmark::kSecond)
    ->Iterations(2)
    ->UseRealTime();

}  // namespace
BENCHMARK_MAIN();
