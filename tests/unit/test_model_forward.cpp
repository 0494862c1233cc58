// The model forward against transformers 4.46.3 golden fixtures (tests/fixtures/forward,
// written by tools/golden/make_forward_fixtures.py): every layer's hidden states, the logits,
// and for stories260K the next-token NLL of real sentences.
//
// Tolerances (norm-wise, ‖ours − ref‖₂ ≤ bound · ‖ref‖₂ per tensor). Both sides compute in
// fp32, so each side's error is bounded by rounding: a reduction of length K costs at most
// (K + 2)·eps32 relative to the sum of |terms| (backend_parity.h). Along one decoder layer the
// residual stream passes the reductions rmsnorm (C), q/k/v (C), scores (D), softmax·V (T),
// o_proj (H·D), rmsnorm (C), gate/up (C), down (F), so a layer adds at most
//   e_layer = (3C + D + T + H·D + C + F + 2·8)·eps32
// relative error, and errors carried in from earlier layers pass through the residual
// connection with gain one. The hidden state after i layers is thus within i·e_layer on each
// side: bound_i = 2·i·e_layer (two independent implementations). The final norm adds
// (C + 2)·eps32 and the lm head (C + 2)·eps32 more.
// The bf16 reference (`logits_bf16`: torch computing natively in bf16) rounds every
// activation to bf16 (u = 2^-9 relative): about 12 roundings per layer plus 3 outside, so
//   bound = (12·L + 3)·2^-8   (each rounding ≤ u, twice for safety: the ops' gains ≈ 1).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "backend_parity.h"
#include "formats/safetensors.h"
#include "model/model.h"

namespace lorafit {
namespace {

using json = nlohmann::json;

fs::path fixtures() { return fs::path(LORAFIT_FIXTURES); }

fs::path model_dir(const std::string& d) {
  if (d.starts_with("data:")) return fs::path(LORAFIT_TEST_DATA) / d.substr(5);
  return fixtures() / d;
}

json read_json(const fs::path& p) {
  std::ifstream f(p);
  return json::parse(f);
}

std::vector<float> f32_values(const TensorInfo& t) {
  EXPECT_EQ(t.dtype, DType::F32) << t.name;
  std::vector<float> v(t.nbytes / 4);
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

std::vector<float> download(Backend& be, Tensor t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  be.download(v.data(), t.data, t.nbytes());
  return v;
}

// ‖a − b‖₂ / ‖b‖₂
double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

double layer_bound(const ModelConfig& c, int64_t T) {
  // Qwen3's q_norm / k_norm add two reductions of length D (and their 2·2 roundings).
  const int64_t qk = c.qk_norm ? 2 * c.head_dim + 4 : 0;
  const double e = static_cast<double>(3 * c.hidden_size + c.head_dim + T + c.num_heads * c.head_dim +
                                       c.hidden_size + c.intermediate_size + 16 + qk) * testing::kEps32;
  return e;
}

// index.json: transformers 4.46.3 (Qwen2, Llama, stories260K); index_recent.json: 4.57.6
// (Qwen3 tied / untied bf16, Llama with llama3 RoPE, Qwen2 with yarn RoPE).
TEST(ModelForward, MatchesTransformersEveryLayer) {
  json index = read_json(fixtures() / "forward" / "index.json");
  for (const auto& c : read_json(fixtures() / "forward" / "index_recent.json")) index.push_back(c);
  auto be = make_backend("cpu");
  int cases = 0;
  for (const auto& c : index) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    Model m(*be, model_dir(c["model_dir"]));
    const ModelConfig& cfg = m.config();
    SafetensorsFile fx(fixtures() / "forward" / (name + ".safetensors"));
    const TensorInfo* ids_t = fx.find("input_ids");
    ASSERT_TRUE(ids_t && ids_t->dtype == DType::I64 && ids_t->shape.size() == 2);
    const int64_t B = ids_t->shape[0], T = ids_t->shape[1], L = cfg.num_layers, V = cfg.vocab_size;
    std::vector<int32_t> ids(static_cast<size_t>(B * T));
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(reinterpret_cast<const int64_t*>(ids_t->data)[i]);
    m.check_input(ids, T, name);

    ActivationArena acts(*be, cfg, B, T, static_cast<int>(L));
    acts.set_tokens(ids);
    m.forward(acts);

    const double e = layer_bound(cfg, T);
    // hidden_states.0 = embeddings (exact: a copy), .i = after layer i−1, .L = final norm output.
    for (int64_t i = 0; i <= L; ++i) {
      const TensorInfo* ref = fx.find(fmt::format("hidden_states.{}", i));
      ASSERT_NE(ref, nullptr) << i;
      const Tensor ours = i < L ? acts.residual(static_cast<int>(i)) : acts.hidden();
      const double bound = i < L ? 2.0 * static_cast<double>(i) * e : 2.0 * (static_cast<double>(L) * e + (cfg.hidden_size + 2) * testing::kEps32);
      const double err = rel_l2(download(*be, ours), f32_values(*ref));
      EXPECT_LE(err, bound) << "hidden_states." << i;
      RecordProperty(fmt::format("{}_hidden_{}", name, i), fmt::format("err {:.3e} bound {:.3e}", err, bound));
    }
    // Logits of every row through the logits API (rows selected = all here).
    std::vector<float> logits(static_cast<size_t>(B * T * V));
    void* dl = be->alloc(logits.size() * 4);
    m.logits(Tensor(dl, DType::F32, {B * T, V}), acts.hidden());
    be->download(logits.data(), dl, logits.size() * 4);
    be->free(dl);
    const double lbound = 2.0 * (static_cast<double>(L) * e + 2 * (cfg.hidden_size + 2) * testing::kEps32);
    const double lerr = rel_l2(logits, f32_values(*fx.find("logits")));
    EXPECT_LE(lerr, lbound) << "logits";
    RecordProperty(fmt::format("{}_logits", name), fmt::format("err {:.3e} bound {:.3e}", lerr, lbound));
    if (c.value("has_logits_bf16", false)) {
      const double bf_bound = (12.0 * static_cast<double>(L) + 3.0) * std::ldexp(1.0, -8);
      const double berr = rel_l2(logits, f32_values(*fx.find("logits_bf16")));
      EXPECT_LE(berr, bf_bound) << "logits_bf16";
      RecordProperty(fmt::format("{}_logits_bf16", name), fmt::format("err {:.3e} bound {:.3e}", berr, bf_bound));
    }
    ++cases;
  }
  EXPECT_GE(cases, 11);
}

// The same folder described by the config.json transformers 4 wrote and by the one
// transformers 5 writes (config.tf5.json: rope_parameters, dtype, layer_types; made by
// tools/golden/make_tf5_configs.py) gives bit-identical logits.
TEST(ModelForward, Transformers5ConfigGivesIdenticalLogits) {
  auto be = make_backend("cpu");
  int n = 0;
  for (const auto& entry : fs::directory_iterator(fixtures() / "models")) {
    const fs::path tf5 = entry.path() / "config.tf5.json";
    if (!fs::exists(tf5)) continue;
    SCOPED_TRACE(entry.path().filename().string());
    const fs::path dir = fs::temp_directory_path() / fmt::format("lorafit_tf5_{}_{}", ::getpid(), n);
    fs::create_directories(dir);
    fs::copy_file(tf5, dir / "config.json");
    fs::create_symlink(entry.path() / "model.safetensors", dir / "model.safetensors");
    std::vector<std::vector<float>> logits;
    for (const fs::path& d : {entry.path(), dir}) {
      Model m(*be, d);
      const int64_t T = 21, V = m.config().vocab_size;
      std::vector<int32_t> ids(static_cast<size_t>(T));
      for (int64_t t = 0; t < T; ++t) ids[static_cast<size_t>(t)] = static_cast<int32_t>((t * 37 + 5) % V);
      ActivationArena acts(*be, m.config(), 1, T, m.config().num_layers);
      acts.set_tokens(ids);
      m.forward(acts);
      logits.emplace_back(static_cast<size_t>(T * V));
      m.logits(Tensor(logits.back().data(), DType::F32, {T, V}), acts.hidden());
    }
    EXPECT_EQ(logits[0], logits[1]);
    fs::remove_all(dir);
    ++n;
  }
  EXPECT_GE(n, 6);
}

// Only the last row's logits (generation): equal to that row of the full computation.
TEST(ModelForward, LogitsOfSelectedRowsEqualFullRows) {
  auto be = make_backend("cpu");
  Model m(*be, fs::path(LORAFIT_TEST_DATA) / "stories260K");
  const int64_t T = 9, V = m.config().vocab_size;
  std::vector<int32_t> ids{1, 403, 407, 261, 378, 432, 383, 286, 261};
  ActivationArena acts(*be, m.config(), 1, T, m.config().num_layers);
  acts.set_tokens(ids);
  m.forward(acts);
  std::vector<float> all(static_cast<size_t>(T * V)), last(static_cast<size_t>(V));
  m.logits(Tensor(all.data(), DType::F32, {T, V}), acts.hidden());
  m.logits(Tensor(last.data(), DType::F32, {1, V}), acts.hidden().rows(T - 1, T));
  // BLAS may take another kernel (GEMV) for one row, so the two are equal up to the rounding
  // of a length-C dot product: 2·(C + 2)·eps32·Σ_c|h_c·w_vc| (both sides' error).
  const int64_t C = m.config().hidden_size;
  std::vector<float> h(static_cast<size_t>(T * C));
  be->download(h.data(), acts.hidden().data, h.size() * 4);
  const float* w = m.weights().lm_head().as<float>();  // (V, C), F32 for this model
  for (int64_t v = 0; v < V; ++v) {
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += std::fabs(static_cast<double>(h[(T - 1) * C + c]) * w[v * C + c]);
    EXPECT_NEAR(last[v], all[(T - 1) * V + v], 2 * testing::sum_bound(C, s)) << v;
  }
}

// stories260K: next-token NLL of real sentences (transformers fp32 logits, log-softmax in
// float64) through the fused lm-head + CE op. A logit error δ moves an NLL by at most 2δ
// (the target logit and the log-sum-exp each by ≤ δ); fp32 logits of this model are within
// ~1e-5 (the norm-wise bound above), so 1e-4 per token and for the mean is a safe bound.
TEST(ModelForward, Stories260kTokenNll) {
  const fs::path p = fixtures() / "forward" / "stories260K_nll.json";
  if (!fs::exists(p)) GTEST_SKIP() << "no fixture " << p;
  auto be = make_backend("cpu");
  Model m(*be, fs::path(LORAFIT_TEST_DATA) / "stories260K");
  for (const auto& c : read_json(p)) {
    SCOPED_TRACE(c["text"].get<std::string>());
    const std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
    const std::vector<double> ref = c["token_nll"].get<std::vector<double>>();
    const std::vector<double> got = token_nll(m, ids);
    ASSERT_EQ(got.size(), ref.size());
    double mean = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i], ref[i], 1e-4) << i;
      mean += got[i];
    }
    EXPECT_NEAR(mean / static_cast<double>(got.size()), c["mean_nll"].get<double>(), 1e-4);
  }
}

// Every named intermediate is in the dump, with its shape, and agrees with the views.
TEST(ModelForward, DumpHasEveryNamedIntermediate) {
  auto be = make_backend("cpu");
  Model m(*be, fs::path(LORAFIT_TEST_DATA) / "stories260K");
  const ModelConfig& c = m.config();
  std::vector<int32_t> ids{1, 403, 407, 261, 378};
  ActivationArena acts(*be, c, 1, 5, c.num_layers);
  acts.set_tokens(ids);
  m.forward(acts);
  const fs::path out = fs::temp_directory_path() / fmt::format("lorafit_dump_{}.safetensors", ::getpid());
  acts.save(out);
  SafetensorsFile f(out);
  for (const char* n : {"ids", "pos", "residual.0", "residual.5", "hidden", "layers.0.q", "layers.4.mlp_act",
                        "layers.3.lse", "layers.2.attn_rstd"})
    EXPECT_NE(f.find(n), nullptr) << n;
  const TensorInfo* q = f.find("layers.1.q");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->shape, (std::vector<int64_t>{1, 5, c.num_heads, c.head_dim}));
  EXPECT_EQ(std::memcmp(q->data, acts.layer(1).q.data, q->nbytes), 0);
  fs::remove(out);
}

}  // namespace
}  // namespace lorafit
