// Batched generation equals one-at-a-time generation: prompts of different lengths decode
// together in one KV cache (per-row positions and lengths), rows finish independently (eos,
// their own max_new_tokens) and free slots are refilled from the queue; the ids are exactly
// Generator's. Exact equality is right for greedy: both paths run the same fp32 ops, and
// greedy.json's prompts were chosen with top-2 logit gaps ≥ 0.03 (far above any summation-order
// difference between a 1-row and a B-row matmul, ~1e-6 relative). Also with an unmerged adapter,
// with a fixed-seed sampler, and the error for a prompt that does not fit. Rows of different
// adapters (two ranks and target sets) and base rows mixed in one batch each equal their own
// adapter's one-at-a-time output; cancel() frees queued and running rows.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "generate/adapter.h"
#include "generate/batch_generate.h"
#include "lora/lora_params.h"
#include "util/error.h"

namespace lorafit {
namespace {

using json = nlohmann::json;

fs::path stories() { return fs::path(LORAFIT_TEST_DATA) / "stories260K"; }

std::vector<GenerateResult> sequential(const Model& m, const std::vector<std::vector<int32_t>>& prompts,
                                       const std::vector<GenerateSettings>& s, int64_t cap, const LoraParams* lora) {
  std::vector<GenerateResult> out;
  Generator g(m, cap, lora);
  for (size_t i = 0; i < prompts.size(); ++i) {
    g.reset();
    out.push_back(g.generate(prompts[i], s[i]));
  }
  return out;
}

// Returns the stop reasons, so callers can check the case they meant to build occurred.
std::vector<StopReason> expect_batched_equals_sequential(const Model& m, const std::vector<std::vector<int32_t>>& prompts,
                                                         const std::vector<GenerateSettings>& s, int64_t slots,
                                                         int64_t cap, const LoraParams* lora = nullptr) {
  const auto want = sequential(m, prompts, s, cap, lora);
  BatchGenerator bg(m, slots, cap, lora);
  for (size_t i = 0; i < prompts.size(); ++i) bg.submit(static_cast<int64_t>(i), prompts[i], s[i]);
  std::vector<GenerateResult> got(prompts.size());
  std::vector<std::vector<int32_t>> streamed(prompts.size());
  std::vector<int> finish_order;
  while (!bg.idle())
    for (auto& f : bg.step([&](int64_t id, int32_t t, const TokenLogprobs*) {
           streamed[static_cast<size_t>(id)].push_back(t);
           return true;
         })) {
      finish_order.push_back(static_cast<int>(f.id));
      got[static_cast<size_t>(f.id)] = std::move(f.result);
    }
  EXPECT_EQ(finish_order.size(), prompts.size());
  std::vector<StopReason> stops;
  for (size_t i = 0; i < prompts.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].ids, want[i].ids);
    EXPECT_EQ(streamed[i], want[i].ids);
    EXPECT_EQ(got[i].stop, want[i].stop);
    EXPECT_EQ(got[i].prompt_tokens, static_cast<int64_t>(prompts[i].size()));
    stops.push_back(want[i].stop);
  }
  return stops;
}

TEST(BatchGenerate, GreedyEqualsSequentialOnFixtureModels) {
  const json cases = json::parse(std::ifstream(fs::path(LORAFIT_FIXTURES) / "forward" / "greedy.json"));
  auto be = make_backend("cpu");
  std::map<std::string, std::vector<std::vector<int32_t>>> by_model;
  for (const auto& c : cases) {
    std::string d = c["model_dir"];
    by_model[d].push_back(c["prompt_ids"].get<std::vector<int32_t>>());
  }
  int models = 0;
  for (auto& [d, prompts] : by_model) {
    SCOPED_TRACE(d);
    const fs::path dir = d.starts_with("data:") ? fs::path(LORAFIT_TEST_DATA) / d.substr(5) : fs::path(LORAFIT_FIXTURES) / d;
    const Model m(*be, dir);
    // Rows of different lengths: every prompt, its first half and its first token.
    std::vector<std::vector<int32_t>> ps;
    for (const auto& p : prompts) {
      ps.push_back(p);
      ps.emplace_back(p.begin(), p.begin() + static_cast<ptrdiff_t>((p.size() + 1) / 2));
      ps.emplace_back(p.begin(), p.begin() + 1);
    }
    std::vector<GenerateSettings> s(ps.size());
    for (size_t i = 0; i < s.size(); ++i) s[i].max_new_tokens = 6 + static_cast<int>(i % 4) * 3;  // finish apart
    expect_batched_equals_sequential(m, ps, s, 4, 64);
    ++models;
  }
  EXPECT_GE(models, 2);
}

TEST(BatchGenerate, EosRowsFinishEarlyAndSlotsRefill) {
  auto be = make_backend("cpu");
  const Model m(*be, stories());
  std::vector<std::vector<int32_t>> ps = {{1}, {1, 403, 407}, {1, 261}, {1, 410, 469, 347}, {1, 300}, {1, 280, 290}};
  std::vector<GenerateSettings> s(ps.size());
  for (auto& x : s) {
    x.max_new_tokens = 24;
    x.eos_ids = {261, 2};  // 261 is the 3rd greedy token after BOS
  }
  s[3].max_new_tokens = 2;
  s[5].eos_ids.clear();  // this one runs to its max_new_tokens
  const auto stops = expect_batched_equals_sequential(m, ps, s, 3, 40);
  EXPECT_GE(std::count(stops.begin(), stops.end(), StopReason::Eos), 2);
  EXPECT_GE(std::count(stops.begin(), stops.end(), StopReason::MaxNewTokens), 1);
}

TEST(BatchGenerate, WithAdapterAndSampling) {
  auto be = make_backend("cpu");
  const Model m(*be, stories());
  const auto lora = load_adapter(*be, m.config(), fs::path(LORAFIT_FIXTURES) / "adapter" / "stories260K-qv-rslora");
  std::vector<std::vector<int32_t>> ps = {{1, 403}, {1}, {1, 410, 469, 347, 260}};
  std::vector<GenerateSettings> s(ps.size());
  for (size_t i = 0; i < s.size(); ++i) {
    s[i].max_new_tokens = 10;
    s[i].sampling.do_sample = i == 1;  // a fixed-seed sampled row beside greedy ones
    s[i].seed = 7 + i;
  }
  expect_batched_equals_sequential(m, ps, s, 2, 32, lora.get());
}

// Each row equals Generator with that row's own adapter (null: base).
void expect_mixed_equals_sequential(const Model& m, const std::vector<std::vector<int32_t>>& prompts,
                                    const std::vector<const LoraParams*>& lora, const GenerateSettings& s,
                                    int64_t slots, int64_t cap) {
  BatchGenerator bg(m, slots, cap);
  for (size_t i = 0; i < prompts.size(); ++i) bg.submit(static_cast<int64_t>(i), prompts[i], s, lora[i]);
  std::vector<GenerateResult> got(prompts.size());
  while (!bg.idle())
    for (auto& f : bg.step()) got[static_cast<size_t>(f.id)] = std::move(f.result);
  std::map<const LoraParams*, std::vector<int32_t>> answers;  // the adapters must change the answers
  for (size_t i = 0; i < prompts.size(); ++i) {
    SCOPED_TRACE(i);
    Generator g(m, cap, lora[i]);
    const GenerateResult want = g.generate(prompts[i], s);
    EXPECT_EQ(got[i].ids, want.ids);
    EXPECT_EQ(got[i].stop, want.stop);
    auto& all = answers[lora[i]];
    all.insert(all.end(), want.ids.begin(), want.ids.end());
  }
  EXPECT_EQ(answers.size(), 3u);
  for (const auto& [a, ids] : answers)
    for (const auto& [b, other] : answers)
      if (a != b) {
        EXPECT_NE(ids, other);
      }
}

TEST(BatchGenerate, RowsOfDifferentAdaptersInOneBatch) {
  auto be = make_backend("cpu");
  const Model m(*be, fs::path(LORAFIT_FIXTURES) / "models" / "qwen3-gqa-tied-f32");
  const auto all = load_adapter(*be, m.config(), fs::path(LORAFIT_FIXTURES) / "adapter" / "qwen3-gqa-tied-f32-all");
  std::vector<float> strong = all->download_params();  // B·40: far from the base's answers
  for (auto& v : strong) v *= 40.f;
  all->upload_params(strong);
  LoraConfig c2;  // a second adapter of another rank and other targets, random B ≠ 0
  c2.r = 2;
  c2.alpha = 6;
  c2.target = parse_lora_target("q_proj,k_proj,down_proj");
  LoraParams other(*be, c2, m.config());
  std::vector<float> host(static_cast<size_t>(other.num_params()));
  std::mt19937_64 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (auto& v : host) v = nd(rng);
  other.upload_params(host);
  const std::vector<int32_t> p0 = {172, 150, 78, 451, 135};
  std::vector<std::vector<int32_t>> ps;
  std::vector<const LoraParams*> lora;
  // The same prompt through base, adapter 1, adapter 2, then other prompts, interleaved so that
  // every step mixes the three (and rows of one adapter are not neighbours in submit order).
  const std::vector<std::vector<int32_t>> prompts = {p0, {3, 99}, {200, 201, 202, 17, 5, 400, 8}, {44}};
  const std::vector<const LoraParams*> adapters = {nullptr, all.get(), &other};
  for (const auto& p : prompts)
    for (const LoraParams* a : adapters) {
      ps.push_back(p);
      lora.push_back(a);
    }
  GenerateSettings s;
  s.max_new_tokens = 8;
  expect_mixed_equals_sequential(m, ps, lora, s, 5, 32);  // 5 slots: refills mix adapters too
  expect_mixed_equals_sequential(m, ps, lora, s, 12, 32);  // all at once
}

// The bf16 path (its own rounding of the branch, the mix's branch scratch) the same way.
TEST(BatchGenerate, RowsOfDifferentAdaptersInOneBf16Batch) {
  auto be = make_backend("cpu");
  const Model m(*be, fs::path(LORAFIT_FIXTURES) / "models" / "qwen2-untied-bf16", DType::BF16);
  const auto a1 = load_adapter(*be, m.config(), fs::path(LORAFIT_FIXTURES) / "adapter" / "qwen2-untied-bf16-all");
  const auto a2 = load_adapter(*be, m.config(), fs::path(LORAFIT_FIXTURES) / "adapter" / "qwen2-untied-bf16-all");
  std::vector<float> p1 = a1->download_params(), p2 = p1;
  for (auto& v : p1) v *= 40.f;
  for (size_t i = 0; i < p2.size(); ++i) p2[i] *= i % 2 ? 40.f : -40.f;  // another product B·A
  a1->upload_params(p1);
  a2->upload_params(p2);
  std::vector<std::vector<int32_t>> ps;
  std::vector<const LoraParams*> lora;
  for (const auto& p : std::vector<std::vector<int32_t>>{{172, 150, 78}, {5}, {300, 301, 302, 303, 304, 10}})
    for (const LoraParams* a : std::vector<const LoraParams*>{nullptr, a1.get(), a2.get()}) {
      ps.push_back(p);
      lora.push_back(a);
    }
  GenerateSettings s;
  s.max_new_tokens = 6;
  expect_mixed_equals_sequential(m, ps, lora, s, 9, 24);
}

// A DoRA adapter in a bf16 batch (lora_linear's bf16 DoRA branch on its rows, the mix's bf16
// DoRA scratch) beside a plain one and the base, the same way.
TEST(BatchGenerate, DoraRowsInOneBf16Batch) {
  auto be = make_backend("cpu");
  const Model m(*be, fs::path(LORAFIT_FIXTURES) / "models" / "qwen2-untied-bf16", DType::BF16);
  const auto dora = load_adapter(*be, m.config(), fs::path(LORAFIT_FIXTURES) / "adapter" / "qwen2-untied-bf16-dora");
  const auto plain = load_adapter(*be, m.config(), fs::path(LORAFIT_FIXTURES) / "adapter" / "qwen2-untied-bf16-all");
  ASSERT_TRUE(dora->config().use_dora);
  std::vector<std::vector<int32_t>> ps;
  std::vector<const LoraParams*> lora;
  for (const auto& p : std::vector<std::vector<int32_t>>{{172, 150, 78}, {5}, {300, 301, 302, 303, 304, 10}})
    for (const LoraParams* a : std::vector<const LoraParams*>{nullptr, dora.get(), plain.get()}) {
      ps.push_back(p);
      lora.push_back(a);
    }
  GenerateSettings s;
  s.max_new_tokens = 6;
  expect_mixed_equals_sequential(m, ps, lora, s, 9, 24);
}

TEST(BatchGenerate, CancelFreesQueuedAndRunningRows) {
  auto be = make_backend("cpu");
  const Model m(*be, stories());
  GenerateSettings s;
  s.max_new_tokens = 20;
  BatchGenerator bg(m, 1, 40);  // one slot: request 1 waits in the queue
  bg.submit(0, {1, 403}, s);
  bg.submit(1, {1, 300}, s);
  bg.submit(2, {1}, s);
  EXPECT_TRUE(bg.step().empty());  // 0 prefilled and decoding
  EXPECT_TRUE(bg.cancel(1));       // queued
  EXPECT_TRUE(bg.cancel(0));       // running
  EXPECT_FALSE(bg.cancel(7));
  const auto done = bg.step();  // both leave before the forward; 2 takes the freed slot
  ASSERT_EQ(done.size(), 2u);
  for (const auto& f : done) EXPECT_EQ(f.result.stop, StopReason::Interrupted);
  const auto& f0 = done[0].id == 0 ? done[0] : done[1];
  const auto& f1 = done[0].id == 1 ? done[0] : done[1];
  EXPECT_EQ(f0.result.ids.size(), 2u);  // the prefill's token and one decode step, no more
  EXPECT_TRUE(f1.result.ids.empty());
  EXPECT_EQ(f1.result.prompt_tokens, 2);
  std::vector<GenerateResult> rest;
  while (!bg.idle())
    for (auto& f : bg.step()) rest.push_back(std::move(f.result));
  ASSERT_EQ(rest.size(), 1u);
  Generator g(m, 40);
  const std::vector<int32_t> bos = {1};
  EXPECT_EQ(rest[0].ids, g.generate(bos, s).ids);  // the row after them is unaffected
}

TEST(BatchGenerate, ContextFullAndBadPrompts) {
  auto be = make_backend("cpu");
  const Model m(*be, stories());
  std::vector<std::vector<int32_t>> ps = {{1, 403, 407}, {1}};
  std::vector<GenerateSettings> s(2);
  s[0].max_new_tokens = s[1].max_new_tokens = 50;  // the 8-position context stops both
  const auto stops = expect_batched_equals_sequential(m, ps, s, 2, 8);
  EXPECT_EQ(stops, (std::vector<StopReason>{StopReason::ContextFull, StopReason::ContextFull}));
  BatchGenerator bg(m, 2, 8);
  EXPECT_THROW(bg.submit(0, {}, s[0]), Error);
  EXPECT_THROW(bg.submit(0, std::vector<int32_t>(8, 1), s[0]), Error);
  EXPECT_THROW(bg.submit(0, {1, 100000}, s[0]), Error);
}

}  // namespace
}  // namespace lorafit
