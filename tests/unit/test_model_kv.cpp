// KV-cache decode against the full forward: the logits of every position, fed token by token
// (and in uneven chunks) through the cache, equal the logits of one forward over the whole
// sequence, for every fixture model and the real stories260K.
//
// Tolerance. Attention over the cache runs per query with the same arithmetic as the full
// attention (kernels_decode.h), so the two paths differ only in how BLAS orders the sums of a
// (1, K) GEMM row versus a (T, K) GEMM row. Each side's error is bounded by the rounding
// analysis of test_model_forward.cpp: a layer adds at most
//   e_layer = (3C + D + T + H·D + C + F + 16)·eps32
// relative error (norm-wise), carried through the residual with gain one, and the final norm
// and lm head add 2(C + 2)·eps32. Two runs of the same fp32 code in different orders are each
// within that of the exact result, so
//   ‖kv − full‖₂ ≤ 2·(L·e_layer + 2(C + 2)·eps32)·‖full‖₂.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "backend/backend.h"
#include "backend_parity.h"
#include "kv_bound.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace lorafit {
namespace {

using json = nlohmann::json;
using testing::kv_bound;
using testing::rel_l2;

fs::path model_dir(const std::string& d) {
  if (d.starts_with("data:")) return fs::path(LORAFIT_TEST_DATA) / d.substr(5);
  return fs::path(LORAFIT_FIXTURES) / d;
}

std::vector<float> logits_of(const Model& m, const ActivationArena& acts) {
  Backend& be = m.backend();
  const int64_t T = acts.T(), V = m.config().vocab_size;
  std::vector<float> host(static_cast<size_t>(T * V));
  void* buf = be.alloc(host.size() * 4);
  m.logits(Tensor(buf, DType::F32, {T, V}, be.device()), acts.hidden());
  be.download(host.data(), buf, host.size() * 4);
  be.free(buf);
  return host;
}

// Feeds ids[pos .. pos + n) through the cache; returns their (n, V) logits.
std::vector<float> feed(const Model& m, KvCache& cache, const std::vector<int32_t>& ids, int64_t pos, int64_t n) {
  ActivationArena acts(m.backend(), m.config(), 1, n, 1);
  acts.set_tokens(std::vector<int32_t>(ids.begin() + pos, ids.begin() + pos + n), cache.length());
  m.forward(acts, nullptr, false, &cache);
  return logits_of(m, acts);
}

TEST(ModelKv, DecodeEqualsFullForwardAtEveryPosition) {
  // index.json: transformers 4.46 models; index_recent.json: Qwen3, llama3 and yarn RoPE (4.57).
  json index = json::parse(std::ifstream(fs::path(LORAFIT_FIXTURES) / "forward" / "index.json"));
  for (const auto& e : json::parse(std::ifstream(fs::path(LORAFIT_FIXTURES) / "forward" / "index_recent.json")))
    index.push_back(e);
  auto be = make_backend("cpu");
  int cases = 0;
  for (const auto& e : index) {
    SCOPED_TRACE(e["name"].get<std::string>());
    const Model m(*be, model_dir(e["model_dir"]));
    const ModelConfig& c = m.config();
    const int64_t T = 19, V = c.vocab_size;
    std::mt19937 rng(7);
    std::vector<int32_t> ids(static_cast<size_t>(T));
    for (auto& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(V));

    ActivationArena full(*be, c, 1, T, c.num_layers);
    full.set_tokens(ids);
    m.forward(full);
    const std::vector<float> ref = logits_of(m, full);  // (T, V)

    const double bound = kv_bound(c, T);

    // (a) one token at a time; (b) chunks 5, 1, 1, 4, 8 (prefill, decode, prefill after decode).
    const std::vector<std::vector<int64_t>> schedules = {std::vector<int64_t>(static_cast<size_t>(T), 1),
                                                         {5, 1, 1, 4, 8}};
    for (const auto& chunks : schedules) {
      KvCache cache(*be, c, 1, T + 3);  // spare capacity: the cache must not assume S = T
      int64_t pos = 0;
      for (int64_t n : chunks) {
        const std::vector<float> got = feed(m, cache, ids, pos, n);
        for (int64_t t = 0; t < n; ++t) {
          const std::span<const float> g(got.data() + t * V, static_cast<size_t>(V));
          const std::span<const float> r(ref.data() + (pos + t) * V, static_cast<size_t>(V));
          EXPECT_LE(rel_l2(g, r), bound) << "position " << pos + t << " (chunk of " << n << ")";
        }
        pos += n;
        EXPECT_EQ(cache.length(), pos);
      }
      ++cases;
    }
  }
  EXPECT_GE(cases, 2 * 11);  // six + four fixture models + stories260K
}

// A cache truncated to a shared prefix gives the same logits as a fresh one (chat reuse).
TEST(ModelKv, TruncatedCacheReusesPrefix) {
  auto be = make_backend("cpu");
  const Model m(*be, fs::path(LORAFIT_TEST_DATA) / "stories260K");
  const std::vector<int32_t> a = {1, 403, 407, 261, 378, 432}, b = {1, 403, 407, 99, 100};
  KvCache fresh(*be, m.config(), 1, 16), reused(*be, m.config(), 1, 16);
  const std::vector<float> want = feed(m, fresh, b, 0, 5);
  feed(m, reused, a, 0, 6);
  reused.truncate(3);
  const std::vector<float> got = feed(m, reused, b, 3, 2);
  const int64_t V = m.config().vocab_size;
  const std::span<const float> g(got), w(want.data() + 3 * V, static_cast<size_t>(2 * V));
  EXPECT_LE(rel_l2(g, w), kv_bound(m.config(), 5));
}

}  // namespace
}  // namespace lorafit
