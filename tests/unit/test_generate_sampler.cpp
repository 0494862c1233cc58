// The sampler against transformers 4.46.3's own logits processors
// (tests/fixtures/sampler/processors.json, written by tools/golden/make_sampler_fixtures.py),
// plus the sampling distribution and seeding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "generate/sampler.h"
#include "util/error.h"
#include "util/file.h"

namespace lorafit {
namespace {

using nlohmann::json;

SamplingParams params(bool do_sample) {  // everything else off
  SamplingParams p;
  p.do_sample = do_sample;
  return p;
}

std::vector<float> decode_f32(const std::string& b64) {  // base64 of float32 little-endian
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : b64) {
    if (c == '=') break;
    size_t v = kAlphabet.find(c);
    if (v == std::string::npos) ADD_FAILURE() << "bad base64 character";
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);  // the test machines are little-endian
  return out;
}

struct Row {
  std::vector<float> logits;  // (V)
  std::vector<int32_t> context;
};

struct Case {
  std::string name;
  SamplingParams params;
  std::vector<std::string> processors;
  std::vector<std::vector<float>> outputs;  // per row (V)
  std::vector<std::vector<float>> probs;    // per row (V), only some cases
  std::vector<int32_t> argmax;
  std::vector<std::vector<int32_t>> ambiguous;  // per row: tied ids straddling the top-p cut
};

struct Fixture {
  size_t vocab = 0;
  std::vector<Row> rows;
  std::vector<Case> cases;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture fx;
    json j = json::parse(read_file(std::string(LORAFIT_FIXTURES) + "/sampler/processors.json"));
    fx.vocab = j["vocab"].get<size_t>();
    for (const auto& r : j["rows"])
      fx.rows.push_back({decode_f32(r["logits"]), r["context_ids"].get<std::vector<int32_t>>()});
    for (const auto& c : j["cases"]) {
      Case k;
      k.name = c["name"];
      const auto& p = c["params"];
      k.params.do_sample = p["do_sample"];
      k.params.temperature = p["temperature"];
      k.params.top_k = p["top_k"];
      k.params.top_p = p["top_p"];
      if (!p["min_p"].is_null()) k.params.min_p = p["min_p"].get<double>();
      k.params.repetition_penalty = p["repetition_penalty"];
      k.processors = c["processors"].get<std::vector<std::string>>();
      for (const auto& o : c["outputs"]) k.outputs.push_back(decode_f32(o));
      if (c.contains("probs"))
        for (const auto& o : c["probs"]) k.probs.push_back(decode_f32(o));
      k.argmax = c["argmax"].get<std::vector<int32_t>>();
      k.ambiguous = c["top_p_tie_ambiguous"].get<std::vector<std::vector<int32_t>>>();
      fx.cases.push_back(std::move(k));
    }
    return fx;
  }();
  return f;
}

// Compares our processed row with transformers'. Filtered positions must be -inf in both.
// Kept values must be bitwise equal: each is the input logit after at most two single float32
// roundings (x*p or x/p for the penalty, then x/t for temperature), done in the same order
// and precision as torch (the fixture script asserts torch equals numpy float32 for these),
// and the filters never change a value — so the bound is 0 ulp.
// At ids listed as ambiguous (a tie group straddling the top-p cut, where torch's unstable
// sort decides), only the multiset of kept values is compared, i.e. how many of each tied
// value survive.
void expect_same_row(const std::vector<float>& ours, const std::vector<float>& ref,
                     const std::vector<int32_t>& ambiguous, const std::string& what) {
  ASSERT_EQ(ours.size(), ref.size()) << what;
  std::vector<bool> amb(ref.size(), false);
  for (int32_t i : ambiguous) amb[i] = true;
  std::vector<float> kept_ours, kept_ref;  // values kept at ambiguous ids
  int mismatches = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (amb[i]) {
      if (std::isfinite(ours[i])) kept_ours.push_back(ours[i]);
      if (std::isfinite(ref[i])) kept_ref.push_back(ref[i]);
      continue;
    }
    bool same = std::isinf(ref[i]) ? (std::isinf(ours[i]) && ours[i] < 0)
                                   : std::memcmp(&ours[i], &ref[i], 4) == 0;
    if (!same && ++mismatches <= 5)
      ADD_FAILURE() << what << ": token " << i << " ours " << ours[i] << " transformers " << ref[i];
  }
  EXPECT_EQ(mismatches, 0) << what;
  std::sort(kept_ours.begin(), kept_ours.end());
  std::sort(kept_ref.begin(), kept_ref.end());
  EXPECT_EQ(kept_ours, kept_ref) << what << ": kept values inside tied top-p groups";
}

TEST(SamplerGolden, FixtureLoads) {
  const Fixture& f = fixture();
  EXPECT_EQ(f.vocab, 1000u);
  EXPECT_EQ(f.rows.size(), 3u);
  EXPECT_GE(f.cases.size(), 15u);
  for (const Row& r : f.rows) EXPECT_EQ(r.logits.size(), f.vocab);
}

TEST(SamplerGolden, ChainMatchesTransformersGetLogitsProcessor) {
  for (const Case& c : fixture().cases) {
    std::vector<std::string> ours;
    for (std::string_view s : logits_processor_chain(c.params)) ours.emplace_back(s);
    EXPECT_EQ(ours, c.processors) << c.name;
  }
}

TEST(SamplerGolden, ProcessLogitsMatchesTransformers) {
  const Fixture& f = fixture();
  for (const Case& c : f.cases) {
    for (size_t r = 0; r < f.rows.size(); ++r) {
      std::vector<float> x = f.rows[r].logits;
      process_logits(x, f.rows[r].context, c.params);
      expect_same_row(x, c.outputs[r], c.ambiguous[r], c.name + " row " + std::to_string(r));
      EXPECT_EQ(argmax_first(x), c.argmax[r]) << c.name << " row " << r;
    }
  }
}

// Single-processor cases through the public transform alone (not via process_logits).
TEST(SamplerGolden, EachTransformAloneMatchesItsProcessor) {
  const Fixture& f = fixture();
  int checked = 0;
  for (const Case& c : f.cases) {
    if (c.processors.size() != 1) continue;
    const std::string& proc = c.processors[0];
    for (size_t r = 0; r < f.rows.size(); ++r) {
      std::vector<float> x = f.rows[r].logits;
      if (proc == "RepetitionPenaltyLogitsProcessor")
        apply_repetition_penalty(x, f.rows[r].context, c.params.repetition_penalty);
      else if (proc == "TemperatureLogitsWarper")
        apply_temperature(x, c.params.temperature);
      else if (proc == "TopKLogitsWarper")
        apply_top_k(x, c.params.top_k);
      else if (proc == "TopPLogitsWarper")
        apply_top_p(x, c.params.top_p);
      else if (proc == "MinPLogitsWarper")
        apply_min_p(x, *c.params.min_p);
      else
        FAIL() << "unexpected processor " << proc;
      expect_same_row(x, c.outputs[r], c.ambiguous[r], c.name + " alone, row " + std::to_string(r));
      ++checked;
    }
  }
  EXPECT_GE(checked, 30);  // 12 single-processor cases x 3 rows in the fixture
}

TEST(SamplerGolden, TopPTieGroupsRemoveLowerIdsFirst) {
  // Row 1 has many equal logits; at the top-p 0.8 cut one tie group straddles. Like a stable
  // ascending sort, we remove the group's lower ids and keep its higher ones (torch's order
  // for long rows is unspecified; the small exact cases below pin its stable order).
  const Fixture& f = fixture();
  const Case* c = nullptr;
  for (const Case& k : f.cases)
    if (k.name == "top_p_0.8") c = &k;
  ASSERT_NE(c, nullptr);
  ASSERT_FALSE(c->ambiguous[1].empty());
  std::vector<float> x = f.rows[1].logits;
  apply_top_p(x, 0.8);
  bool seen_kept = false, seen_removed = false;
  for (int32_t i : c->ambiguous[1]) {  // ascending ids, all of one value
    if (std::isfinite(x[i])) {
      seen_kept = true;
    } else {
      seen_removed = true;
      EXPECT_FALSE(seen_kept) << "removed id " << i << " after a kept one of the same group";
    }
  }
  EXPECT_TRUE(seen_kept && seen_removed);
}

// Rows whose probabilities are exact in float32, so `<=` vs `<` at the cut is decided by
// equality; short rows, where torch's sort is stable, so tie positions are defined too.
TEST(SamplerGolden, ExactBoundaryCases) {
  json j = json::parse(read_file(std::string(LORAFIT_FIXTURES) + "/sampler/processors.json"));
  ASSERT_GE(j["small_cases"].size(), 5u);
  for (const auto& c : j["small_cases"]) {
    std::vector<float> x = decode_f32(c["logits"]);
    const std::string proc = c["processor"];
    if (proc == "TopPLogitsWarper")
      apply_top_p(x, c["arg"].get<double>());
    else if (proc == "MinPLogitsWarper")
      apply_min_p(x, c["arg"].get<double>());
    else if (proc == "TopKLogitsWarper")
      apply_top_k(x, c["arg"].get<int>());
    else
      FAIL() << proc;
    expect_same_row(x, decode_f32(c["output"]), {}, c["name"].get<std::string>());
  }
}

TEST(SamplerGolden, GreedyIsArgmaxAfterPenaltyAndUsesNoRandomness) {
  const Fixture& f = fixture();
  for (const Case& c : f.cases) {
    if (c.params.do_sample) continue;
    Sampler s(c.params, 1234);
    for (size_t r = 0; r < f.rows.size(); ++r) {
      std::vector<float> x = f.rows[r].logits;
      EXPECT_EQ(s.sample(x, f.rows[r].context), c.argmax[r]) << c.name << " row " << r;
    }
  }
  // Row 1 has two equal maxima (ids 100 and 600): torch.argmax takes the first.
  std::vector<float> x = f.rows[1].logits;
  EXPECT_EQ(argmax_first(x), 100);
}

// Chi-square upper quantile by Wilson–Hilferty: X²_q(df) ≈ df·(1 − 2/(9df) + z·√(2/(9df)))³,
// accurate to a few percent for df ≥ 3. z = 4.265 is the 1e-5 upper tail of N(0, 1), so a
// correct sampler fails a given (seed, case) with probability ~1e-5; the seed is fixed, so
// the outcome never changes between runs.
double chi2_quantile_1e5(int df) {
  const double z = 4.265, a = 2.0 / (9.0 * df);
  return df * std::pow(1 - a + z * std::sqrt(a), 3);
}

TEST(SamplerDistribution, FrequenciesMatchTorchSoftmax) {
  const Fixture& f = fixture();
  constexpr int kDraws = 60000;
  int cases_checked = 0;
  for (const Case& c : f.cases) {
    if (c.probs.empty()) continue;
    for (size_t r = 0; r < f.rows.size(); ++r) {
      // Transformers' processed logits in, torch's softmax as the expected distribution.
      const std::vector<float>& logits = c.outputs[r];
      const std::vector<float>& p = c.probs[r];
      Sampler s(params(true), 42 + r);
      std::vector<int> count(p.size(), 0);
      for (int n = 0; n < kDraws; ++n) ++count[s.draw(logits)];
      // Tokens transformers filtered out (probability exactly 0) are never drawn.
      for (size_t i = 0; i < p.size(); ++i) {
        if (p[i] == 0) {
          EXPECT_EQ(count[i], 0) << c.name << " row " << r << " token " << i;
        }
      }
      // Pearson chi-square; bins with expected count < 5 are pooled into one.
      double chi2 = 0, pooled_e = 0, pooled_o = 0;
      int bins = 0;
      for (size_t i = 0; i < p.size(); ++i) {
        if (p[i] == 0) continue;
        double e = kDraws * static_cast<double>(p[i]);
        if (e < 5) {
          pooled_e += e;
          pooled_o += count[i];
          continue;
        }
        chi2 += (count[i] - e) * (count[i] - e) / e;
        ++bins;
      }
      if (pooled_e > 0) {
        chi2 += (pooled_o - pooled_e) * (pooled_o - pooled_e) / std::max(pooled_e, 1e-9);
        ++bins;
      }
      const std::string what = c.name + " row " + std::to_string(r);
      if (bins <= 1) {  // one token left: it must be drawn every time
        EXPECT_EQ(count[c.argmax[r]], kDraws) << what;
        continue;
      }
      const int df = bins - 1;
      // For df < 3 Wilson–Hilferty is rough; the exact 1e-5 quantiles are 19.5 (df 1), 23.0 (2).
      double bound = df == 1 ? 19.5 : df == 2 ? 23.0 : chi2_quantile_1e5(df);
      EXPECT_LT(chi2, bound) << what << ": chi-square " << chi2 << " with " << df << " dof";
      ++cases_checked;
    }
  }
  EXPECT_GE(cases_checked, 4);
}

TEST(SamplerDistribution, FixedSeedReproducesChoices) {
  const Fixture& f = fixture();
  const Case* c = nullptr;
  for (const Case& k : f.cases)
    if (k.name == "qwen25_instruct") c = &k;
  ASSERT_NE(c, nullptr);
  auto run = [&](uint64_t seed) {
    Sampler s(c->params, seed);
    std::vector<int32_t> picks;
    std::vector<int32_t> ctx = f.rows[0].context;
    for (int step = 0; step < 200; ++step) {
      std::vector<float> x = f.rows[step % 3].logits;
      int32_t t = s.sample(x, ctx);
      picks.push_back(t);
      ctx.push_back(t);  // the penalty sees what was generated, as in generate()
    }
    return picks;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

TEST(SamplerErrors, BadInputsThrowWithMessages) {
  auto msg = [](auto&& fn) -> std::string {
    try {
      fn();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(msg([] { SamplingParams p = params(true);
    p.temperature = 0.0;
    Sampler s(p, 1); }),
            "sampling settings: temperature must be a finite number > 0 when sampling, got 0; for "
            "greedy decoding turn sampling off (do_sample false)");
  EXPECT_EQ(msg([] { SamplingParams p = params(false);
    p.top_p = 0.0;
    Sampler s(p, 1); }),
            "sampling settings: top_p must be in (0, 1] (1 turns it off), got 0");
  EXPECT_EQ(msg([] { SamplingParams p = params(false);
    p.top_k = -1;
    Sampler s(p, 1); }),
            "sampling settings: top_k must be >= 0 (0 turns it off), got -1");
  EXPECT_EQ(msg([] { SamplingParams p = params(false);
    p.min_p = 2.0;
    Sampler s(p, 1); }), "sampling settings: min_p must be in [0, 1], got 2");
  EXPECT_EQ(msg([] { SamplingParams p = params(false);
    p.repetition_penalty = std::nan("");
    Sampler s(p, 1); }),
            "sampling settings: repetition_penalty must be a finite number > 0 (1 turns it off), got nan");
  std::vector<float> x = {0.f, std::nanf(""), 1.f};
  std::vector<int32_t> ctx = {0};
  EXPECT_EQ(msg([&] { Sampler(params(true), 1).sample(x, ctx); }),
            "sampler: the logit of token 1 is nan; the model produced non-finite values (check the "
            "weights and the dtype)");
  std::vector<float> y = {0.f, 1.f, 2.f};
  std::vector<int32_t> bad_ctx = {1, 3};
  EXPECT_EQ(msg([&] { apply_repetition_penalty(y, bad_ctx, 1.1); }),
            "repetition penalty: context token id 3 is outside the vocabulary [0, 3)");
  const float ninf = -std::numeric_limits<float>::infinity();
  std::vector<float> dead = {ninf, ninf};
  EXPECT_EQ(msg([&] { Sampler(params(true), 1).draw(dead); }),
            "sampler: every token is filtered out (all logits are -inf)");
}

TEST(SamplerConfig, FromQwenGenerationConfig) {
  GenerationConfig g;
  g.do_sample = true;
  g.temperature = 0.7;
  g.top_k = 20;
  g.top_p = 0.8;
  g.repetition_penalty = 1.05;
  SamplingParams p = sampling_params_from(g);
  EXPECT_EQ(logits_processor_chain(p),
            (std::vector<std::string_view>{"RepetitionPenaltyLogitsProcessor", "TemperatureLogitsWarper",
                                           "TopKLogitsWarper", "TopPLogitsWarper"}));
}

}  // namespace
}  // namespace lorafit
