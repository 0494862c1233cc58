// Encode throughput of the Qwen2.5 tokenizer (bytes/s = input UTF-8 bytes), to set beside
// HF `tokenizers` on the same texts: bench/tokenizer_baseline.py. Results: docs/performance.md.
//   Chinese: every "input"/"output" string of tests/data/disc-law/disc_law_eval_sft.jsonl.
//   English: the golden "en" and "code" cases and transformers' integration texts, 200 times.
//   Batch:   the Chinese set with encode_batch on all cores.
//   Long runs (complexity, not a test): 1 MB of one letter is a single word with no split
//   point; a 100 MB single line of Chinese text goes through the splitter in one piece.
#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <thread>

#include "tokenizer/tokenizer.h"

namespace {

using lorafit::Tokenizer;
using json = nlohmann::json;
const lorafit::fs::path kData = LORAFIT_TEST_DATA;

const Tokenizer& qwen() {
  static const Tokenizer t = Tokenizer::load(kData / "qwen-tokenizer" / "qwen2.5");
  return t;
}
const Tokenizer& stories() {
  static const Tokenizer t = Tokenizer::load(kData / "stories260K");
  return t;
}

const std::vector<std::string>& chinese() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> out;
    std::ifstream in(kData / "disc-law" / "disc_law_eval_sft.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      const json r = json::parse(line);
      for (const char* f : {"input", "output"})
        if (r.contains(f) && r[f].is_string()) out.push_back(r[f]);
    }
    return out;
  }();
  return v;
}

const std::vector<std::string>& english() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> base;
    const json g = json::parse(lorafit::read_file(kData / "tokenizer-golden" / "qwen_golden_ids.json"));
    for (const json& c : g["cases"])
      if (c["category"] == "en" || c["category"] == "code") base.push_back(c["text"]);
    const json t = json::parse(lorafit::read_file(kData / "tokenizer-golden" / "hf_transformers_qwen2_cases.json"));
    for (const json& c : t["cases"]) base.push_back(c["text"]);
    std::vector<std::string> out;
    for (int k = 0; k < 200; ++k) out.insert(out.end(), base.begin(), base.end());
    return out;
  }();
  return v;
}

size_t total_bytes(const std::vector<std::string>& v) {
  size_t n = 0;
  for (const auto& s : v) n += s.size();
  return n;
}

void encode_all(benchmark::State& state, const Tokenizer& tok, const std::vector<std::string>& texts) {
  size_t ids = 0;
  for (auto _ : state) {
    for (const auto& s : texts) {
      auto v = tok.encode(s);
      ids += v.size();
      benchmark::DoNotOptimize(v.data());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * total_bytes(texts)));
  state.counters["ids"] = static_cast<double>(ids) / static_cast<double>(state.iterations());
}

void BM_Qwen_Chinese_1T(benchmark::State& s) { encode_all(s, qwen(), chinese()); }
void BM_Qwen_English_1T(benchmark::State& s) { encode_all(s, qwen(), english()); }
void BM_Stories_English_1T(benchmark::State& s) { encode_all(s, stories(), english()); }

void BM_Qwen_Chinese_Batch(benchmark::State& state) {
  const int threads = static_cast<int>(std::thread::hardware_concurrency());
  for (auto _ : state) {
    auto out = qwen().encode_batch(chinese(), true, threads);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * total_bytes(chinese())));
  state.counters["threads"] = threads;
}

// O(n log n): one 1 MB word (heap merge loop; a naive rescan would be O(n^2) ~ 10^12 steps).
void BM_LongRun_1MB(benchmark::State& state) {
  const std::string run(1 << 20, 'a');
  const Tokenizer& tok = state.range(0) == 0 ? qwen() : stories();
  for (auto _ : state) benchmark::DoNotOptimize(tok.encode(run).data());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * run.size()));
  state.SetLabel(state.range(0) == 0 ? "qwen2.5" : "stories260K");
}

void BM_Qwen_SingleLine_100MB(benchmark::State& state) {
  std::string line;
  line.reserve(100u << 20);
  while (line.size() < (100u << 20))
    for (const auto& s : chinese()) {
      for (char c : s) line.push_back(c == '\n' ? ' ' : c);
      line.push_back(' ');
    }
  for (auto _ : state) benchmark::DoNotOptimize(qwen().encode(line).data());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * line.size()));
}

BENCHMARK(BM_Qwen_Chinese_1T)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_Qwen_English_1T)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_Stories_English_1T)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_Qwen_Chinese_Batch)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_LongRun_1MB)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_Qwen_SingleLine_100MB)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
