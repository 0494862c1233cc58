// The generation loop against transformers: greedy decoding through the KV cache gives
// exactly the ids of transformers' model.generate(do_sample=False) (tests/fixtures/forward/
// greedy.json, written by tools/golden/make_forward_fixtures.py; its prompts keep the top-2
// logit gap ≥ 0.03, far above fp32 logit error, so exact equality is the right test). Also:
// stop conditions, a fixed seed reproducing a sampled generation, and bad prompts.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "generate/generate.h"

namespace lorafit {
namespace {

using json = nlohmann::json;

fs::path model_dir(const std::string& d) {
  if (d.starts_with("data:")) return fs::path(LORAFIT_TEST_DATA) / d.substr(5);
  return fs::path(LORAFIT_FIXTURES) / d;
}

fs::path stories() { return fs::path(LORAFIT_TEST_DATA) / "stories260K"; }

TEST(GenerateGreedy, MatchesTransformersGenerate) {
  // greedy_recent.json: Qwen3 (tied, untied bf16), llama3 and yarn RoPE from transformers 4.57.
  json cases = json::parse(std::ifstream(fs::path(LORAFIT_FIXTURES) / "forward" / "greedy.json"));
  for (const auto& c : json::parse(std::ifstream(fs::path(LORAFIT_FIXTURES) / "forward" / "greedy_recent.json")))
    cases.push_back(c);
  auto be = make_backend("cpu");
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const Model m(*be, model_dir(c["model_dir"]));
    const auto prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    const auto want = c["new_ids"].get<std::vector<int32_t>>();
    Generator g(m, static_cast<int64_t>(prompt.size() + want.size()));
    GenerateSettings s;  // greedy, no eos: the fixture used eos_token_id=None, min_new_tokens=20
    s.max_new_tokens = static_cast<int>(want.size());
    std::vector<int32_t> streamed;
    const GenerateResult r = g.generate(prompt, s, [&](int32_t id) {
      streamed.push_back(id);
      return true;
    });
    EXPECT_EQ(r.ids, want);
    EXPECT_EQ(streamed, want);
    EXPECT_EQ(r.stop, StopReason::MaxNewTokens);
    EXPECT_EQ(r.prompt_tokens, static_cast<int64_t>(prompt.size()));
    ++n;
  }
  EXPECT_GE(n, 8);
}

TEST(GenerateGreedy, StopsOnEosAndKeepsIt) {
  auto be = make_backend("cpu");
  const Model m(*be, stories());
  Generator g(m, 64);
  GenerateSettings s;
  s.max_new_tokens = 20;
  s.eos_ids = {999, 261};  // 261 is the 3rd greedy token after BOS (greedy.json)
  const std::vector<int32_t> bos = {1};
  const GenerateResult r = g.generate(bos, s);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{403, 407, 261}));
  EXPECT_EQ(r.stop, StopReason::Eos);
}

TEST(GenerateGreedy, InterruptStopsAndContextLimits) {
  auto be = make_backend("cpu");
  const Model m(*be, stories());
  Generator g(m, 6);
  GenerateSettings s;
  s.max_new_tokens = 20;
  const std::vector<int32_t> bos = {1};
  int calls = 0;
  GenerateResult r = g.generate(bos, s, [&](int32_t) { return ++calls < 2; });
  EXPECT_EQ(r.stop, StopReason::Interrupted);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{403, 407}));
  // 1 prompt + 5 cached generated + the last chosen one (never fed) = capacity 6 positions + 1 id.
  r = g.generate(bos, s);
  EXPECT_EQ(r.stop, StopReason::ContextFull);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{403, 407, 261, 378, 432, 383}));
}

TEST(GenerateGreedy, ReusesCachedPrefixWithSameIds) {
  auto be = make_backend("cpu");
  const Model m(*be, stories());
  Generator g(m, 64);
  GenerateSettings s;
  s.max_new_tokens = 5;
  const std::vector<int32_t> p1 = {1, 403, 407, 261, 378};
  const GenerateResult a = g.generate(p1, s);
  std::vector<int32_t> p2 = p1;
  p2.insert(p2.end(), a.ids.begin(), a.ids.end());  // second turn: the first answer is history
  const GenerateResult b = g.generate(p2, s);
  EXPECT_EQ(b.prompt_tokens, 1);  // only the last generated id was never fed
  // greedy.json: after [1, 403, 407, 261, 378] come 432 383 286 261 376 | 298 315 421 395 317
  EXPECT_EQ(a.ids, (std::vector<int32_t>{432, 383, 286, 261, 376}));
  EXPECT_EQ(b.ids, (std::vector<int32_t>{298, 315, 421, 395, 317}));
}

TEST(GenerateSample, FixedSeedReproduces) {
  auto be = make_backend("cpu");
  const Model m(*be, stories());
  Generator g(m, 64);
  GenerateSettings s;
  s.max_new_tokens = 30;
  s.sampling.do_sample = true;
  s.sampling.temperature = 1.0;
  s.sampling.top_k = 0;
  const std::vector<int32_t> bos = {1};
  s.seed = 1234;
  const GenerateResult a = g.generate(bos, s), b = g.generate(bos, s);
  EXPECT_EQ(a.ids, b.ids);
  // At temperature 1 over 30 steps, two seeds agreeing everywhere would be a broken RNG.
  s.seed = 99;
  EXPECT_NE(g.generate(bos, s).ids, a.ids);
}

TEST(GenerateErrors, BadPrompts) {
  auto be = make_backend("cpu");
  const Model m(*be, stories());
  Generator g(m, 8);
  GenerateSettings s;
  const std::vector<int32_t> empty, too_long(8, 5), outside = {1, 512};
  auto message = [&](std::span<const int32_t> p) -> std::string {
    try {
      g.generate(p, s);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message(empty).find("the prompt is empty"), std::string::npos);
  EXPECT_NE(message(too_long).find("the prompt has 8 tokens, but the context holds 8"), std::string::npos);
  EXPECT_NE(message(outside).find("token id 512 at position 1 is outside the vocabulary"), std::string::npos);
}

}  // namespace
}  // namespace lorafit
