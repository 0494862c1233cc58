// bf16 activations (docs/precision.md) against transformers 4.46.3 (Qwen3: 4.57.6) in bf16 (fixtures from
// tools/golden/make_bf16_fixtures.py: each bf16 fixture model run once with bf16 weights under
// torch.autocast(cpu, bf16) and once in fp32 from the same weights): the residual stream after
// every layer, the final hidden state and the last logits of a bf16 forward; greedy generation
// through the bf16 KV cache.
//
// Why these bounds. The bf16 run differs from the fp32 run only through its roundings to bf16
// (8 significant bits; each rounding moves a value by ≤ 2^-9 relative), so |ref_bf16 − ref_fp32|
// is the measured effect of all of them. lorafit rounds at the same points; a rounding of its
// own can differ from the reference's only where the two fp32 values before it (summed in
// another order) straddle a bf16 rounding boundary, and then by one bf16 ulp. So lorafit's
// distance to ref_bf16 is the effect of a subset of those roundings, and within the spread:
//   max |ours − ref_bf16| ≤ max |ref_bf16 − ref_fp32| + 1 ulp of max |ref|   (per buffer),
// and, the claim that shows the rounding points are the reference's, it is closer to the bf16
// run than to the fp32 run: rms(ours − ref_bf16) < rms(ours − ref_fp32). The embeddings
// (residual.0) are a table lookup of bf16 weights: equal bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "formats/safetensors.h"
#include "generate/generate.h"

namespace lorafit {
namespace {

using json = nlohmann::json;

fs::path fixture(const std::string& rel) { return fs::path(LORAFIT_FIXTURES) / rel; }

std::vector<float> floats(const SafetensorsFile& f, const std::string& key) {
  const TensorInfo* t = f.find(key);
  if (!t) throw Error("fixture: no tensor {}", key);
  std::vector<float> v(t->nbytes / dtype_size(t->dtype));
  convert_to_f32(v.data(), t->data, t->dtype, v.size());
  return v;
}

std::vector<float> download(Backend& be, Tensor t) {
  std::vector<float> raw(static_cast<size_t>(t.numel()));
  std::vector<uint16_t> h(raw.size());
  be.sync();
  if (t.dtype == DType::BF16) {
    be.download(h.data(), t.data, h.size() * 2);
    convert_to_f32(raw.data(), h.data(), DType::BF16, raw.size());
  } else {
    be.download(raw.data(), t.data, raw.size() * 4);
  }
  return raw;
}

struct Dist {
  double max_abs = 0, rms = 0;
};
Dist dist(const std::vector<float>& a, const std::vector<float>& b) {
  Dist d;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = std::fabs(static_cast<double>(a[i]) - b[i]);
    d.max_abs = std::max(d.max_abs, e);
    d.rms += e * e;
  }
  d.rms = std::sqrt(d.rms / static_cast<double>(a.size()));
  return d;
}
double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

class Bf16Forward : public ::testing::TestWithParam<std::string> {};

TEST_P(Bf16Forward, LayersMatchTransformersBf16) {
  const std::string name = GetParam();
  const SafetensorsFile f(fixture("bf16/forward-" + name + ".safetensors"));
  auto be = make_backend("cpu");
  const Model m(*be, fixture("models/" + name), DType::BF16);
  EXPECT_FALSE(m.weights_rounded());  // bf16 checkpoints are used as they are
  const TensorInfo* ids_t = f.find("input_ids");
  ASSERT_NE(ids_t, nullptr);
  const int64_t B = ids_t->shape[0], T = ids_t->shape[1];
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < B * T; ++i) ids.push_back(static_cast<int32_t>(reinterpret_cast<const int64_t*>(ids_t->data)[i]));
  ActivationArena acts(*be, m.config(), B, T, 1, nullptr, false, DType::BF16);
  acts.set_tokens(ids);
  m.forward(acts);
  const int L = m.config().num_layers;
  for (int i = 0; i <= L + 1; ++i) {
    const std::string key = i <= L ? "residual." + std::to_string(i) : "hidden";
    SCOPED_TRACE(key);
    const Tensor t = i <= L ? acts.residual(i) : acts.hidden();
    ASSERT_EQ(t.dtype, DType::BF16);
    const std::vector<float> got = download(*be, t), ref = floats(f, key), ref32 = floats(f, key + ".f32");
    ASSERT_EQ(got.size(), ref.size());
    ASSERT_EQ(got.size(), ref32.size());
    const Dist to_ref = dist(got, ref), to_f32 = dist(got, ref32), spread = dist(ref, ref32);
    if (i == 0) {
      EXPECT_EQ(to_ref.max_abs, 0.0);
      continue;
    }
    EXPECT_LE(to_ref.max_abs, spread.max_abs + max_abs(ref) / 128) << "spread " << spread.max_abs;
    EXPECT_LT(to_ref.rms, to_f32.rms) << "closer to the fp32 run than to the bf16 run";
    ::testing::Test::RecordProperty(key + "_rms_to_bf16_over_spread", std::to_string(to_ref.rms / spread.rms));
  }
  // The last position's logits: bf16-rounded lm_head outputs (.float()), as generate sees them.
  const std::vector<float> want = floats(f, "logits"), want32 = floats(f, "logits.f32");
  const int64_t V = m.config().vocab_size;
  std::vector<float> got;
  for (int64_t b = 0; b < B; ++b) {
    void* buf = be->alloc(static_cast<size_t>(V) * 4);
    const int64_t row = b * T + T - 1;
    m.logits(Tensor(buf, DType::F32, {1, V}), acts.hidden().rows(row, row + 1));
    std::vector<float> h(static_cast<size_t>(V));
    be->download(h.data(), buf, h.size() * 4);
    be->free(buf);
    for (float x : h) EXPECT_EQ(x, bf16_to_f32(f32_to_bf16(x))) << "logits are bf16 values";
    got.insert(got.end(), h.begin(), h.end());
  }
  const Dist to_ref = dist(got, want), to_f32 = dist(got, want32), spread = dist(want, want32);
  EXPECT_LE(to_ref.max_abs, spread.max_abs + max_abs(want) / 128);
  // qwen3-untied-bf16 (transformers 4.57.6): every layer's residual and the final hidden state
  // are closer to the bf16 run, but its last logits are not (rms 0.00697 to bf16 vs 0.00621 to
  // fp32, V = 389, two rows). The lm head's rounding point is the reference's (checked next:
  // from the reference's own bf16 hidden state lorafit gives its logits bit for bit), so this is
  // the hidden-state differences carried through the head; not asserted for that model.
  if (name != "qwen3-untied-bf16") {
    EXPECT_LT(to_ref.rms, to_f32.rms);
  }
  const TensorInfo* ref_hidden = f.find("hidden");  // (B, T, C) bf16
  ASSERT_NE(ref_hidden, nullptr);
  const int64_t C = m.config().hidden_size;
  void* hb = be->alloc(static_cast<size_t>(C) * 2);
  void* lb = be->alloc(static_cast<size_t>(V) * 4);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t row = b * T + T - 1;
    be->upload(hb, ref_hidden->data + row * C * 2, static_cast<size_t>(C) * 2);
    m.logits(Tensor(lb, DType::F32, {1, V}), Tensor(hb, DType::BF16, {1, C}));
    std::vector<float> h(static_cast<size_t>(V));
    be->download(h.data(), lb, h.size() * 4);
    for (int64_t v = 0; v < V; ++v) EXPECT_EQ(h[static_cast<size_t>(v)], want[static_cast<size_t>(b * V + v)]) << b << "," << v;
  }
  be->free(hb);
  be->free(lb);
}

INSTANTIATE_TEST_SUITE_P(Models, Bf16Forward,
                         ::testing::Values("qwen2-untied-bf16", "llama-tied-bf16", "llama-headdim-bf16",
                                           "qwen3-untied-bf16"),  // q_norm/k_norm: transformers 4.57.6
                         [](const auto& p) {
                           std::string s = p.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

// The bf16 KV cache: half the bytes of the fp32 one, and token-by-token decoding through it
// gives the full bf16 forward's final hidden states bit for bit (the same attention arithmetic
// per query, backend.h attention_decode).
TEST(Bf16Generate, DecodeThroughBf16CacheEqualsFullForward) {
  auto be = make_backend("cpu");
  const Model m(*be, fixture("models/qwen2-untied-bf16"), DType::BF16);
  const ModelConfig& c = m.config();
  const int64_t T = 9;
  std::vector<int32_t> ids;
  for (int64_t t = 0; t < T; ++t) ids.push_back(static_cast<int32_t>(5 + 37 * t % (c.vocab_size - 5)));
  ActivationArena full(*be, c, 1, T, 1, nullptr, false, DType::BF16);
  full.set_tokens(ids);
  m.forward(full);
  const std::vector<float> want = download(*be, full.hidden());
  KvCache cache(*be, c, 1, T + 2, DType::BF16);
  EXPECT_EQ(cache.bytes() * 2, KvCache(*be, c, 1, T + 2).bytes());
  ActivationArena step(*be, c, 1, 1, 1, nullptr, false, DType::BF16);
  for (int64_t t = 0; t < T; ++t) {
    step.set_tokens({ids[static_cast<size_t>(t)]}, cache.length());
    m.forward(step, nullptr, false, &cache);
    const std::vector<float> got = download(*be, step.hidden());
    for (int64_t j = 0; j < c.hidden_size; ++j)
      ASSERT_EQ(got[static_cast<size_t>(j)], want[static_cast<size_t>(t * c.hidden_size + j)]) << "t " << t << " j " << j;
  }
}

// Greedy decoding in bf16 (bf16 KV cache) equals transformers' bf16 model.generate. A step
// may pick the other of two tokens only where the reference's own top-2 logit gap is within
// the logit difference bf16 rounding can make: one bf16 ulp of the logit (2^-7 relative at
// most) on each side; after such a near-tie flip the continuations are different prompts and
// are not compared further.
TEST(Bf16Generate, GreedyMatchesTransformersBf16) {
  const json cases = json::parse(std::ifstream(fixture("bf16/greedy.json")));
  auto be = make_backend("cpu");
  int compared = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const Model m(*be, fixture(c["model_dir"].get<std::string>()), DType::BF16);
    const auto prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    const auto want = c["new_ids"].get<std::vector<int32_t>>();
    const auto gaps = c["top2_logit_gap"].get<std::vector<double>>();
    Generator g(m, static_cast<int64_t>(prompt.size() + want.size()));
    GenerateSettings s;
    s.max_new_tokens = static_cast<int>(want.size());
    const GenerateResult r = g.generate(prompt, s);
    ASSERT_EQ(r.ids.size(), want.size());
    for (size_t j = 0; j < want.size(); ++j) {
      if (r.ids[j] == want[j]) {
        ++compared;
        continue;
      }
      // A flip: the reference's gap must be a near-tie, and both tokens near-tied in ours too.
      std::vector<int32_t> ctx = prompt;
      ctx.insert(ctx.end(), want.begin(), want.begin() + static_cast<std::ptrdiff_t>(j));
      Generator probe(m, static_cast<int64_t>(ctx.size() + 1));
      const std::vector<float> lg = probe.feed(ctx);
      const double top = std::max(std::fabs(lg[static_cast<size_t>(r.ids[j])]), std::fabs(lg[static_cast<size_t>(want[j])]));
      const double ulp = top / 128;  // one bf16 ulp of the logit, at most
      EXPECT_LE(gaps[j], 2 * ulp) << "step " << j << ": " << r.ids[j] << " instead of " << want[j]
                                  << " with a reference gap of " << gaps[j];
      EXPECT_LE(lg[static_cast<size_t>(want[j])], lg[static_cast<size_t>(r.ids[j])]);
      EXPECT_GE(lg[static_cast<size_t>(want[j])], lg[static_cast<size_t>(r.ids[j])] - 2 * ulp);
      RecordProperty("near_tie_flip", c["name"].get<std::string>() + " step " + std::to_string(j));
      break;
    }
  }
  EXPECT_GE(compared, 30);
}

}  // namespace
}  // namespace lorafit
