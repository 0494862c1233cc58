// Generation's buffers (issue 11 item 2): one table holds the Generator's activations and its
// KV cache, sized once; a prompt longer than the arena's rows is prefilled in chunks through
// the cache. The chunked logits equal the one-chunk logits within the KV-cache bound derived in
// test_model_kv.cpp (chunking only changes which keys come from the cache and the GEMM row
// counts), and greedy decoding gives the same ids.
#include <gtest/gtest.h>

#include <random>

#include "backend/backend.h"
#include "generate/batch_generate.h"
#include "generate/generate.h"
#include "kv_bound.h"

namespace lorafit {
namespace {

using testing::kv_bound;
using testing::rel_l2;
TEST(GeneratePrefill, ChunksThroughTheCacheFromOneTable) {
  auto be = make_backend("cpu");
  const Model m(*be, fs::path(LORAFIT_TEST_DATA) / "stories260K");
  const int64_t T = 29, V = m.config().vocab_size;
  std::mt19937 rng(3);
  std::vector<int32_t> ids(static_cast<size_t>(T));
  for (auto& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(V));
  Generator whole(m, T + 8), chunked(m, T + 8, nullptr, 6);
  EXPECT_EQ(whole.arena().capacity(), T + 8);
  EXPECT_EQ(chunked.arena().capacity(), 6);
  for (const Generator* g : {&whole, &chunked}) {
    EXPECT_TRUE(g->arena().has("kv.0.k"));
    EXPECT_TRUE(g->arena().has(fmt::format("kv.{}.v", m.config().num_layers - 1)));
  }
  const std::vector<float> want = whole.feed(ids, true), got = chunked.feed(ids, true);
  ASSERT_EQ(got.size(), want.size());
  for (int64_t t = 0; t < T; ++t)
    EXPECT_LE(rel_l2(std::span(got.data() + t * V, static_cast<size_t>(V)),
                     std::span(want.data() + t * V, static_cast<size_t>(V))),
              kv_bound(m.config(), T))
        << "position " << t;
  GenerateSettings s;
  s.max_new_tokens = 6;
  whole.reset();
  chunked.reset();
  EXPECT_EQ(chunked.generate(ids, s).ids, whole.generate(ids, s).ids);
}

// The batched generator (eval, serve) the same way: its one table holds the step/prompt rows
// and the cache of every slot; prompts longer than the rows are prefilled in chunks, and greedy
// ids equal the one-chunk Generator's for rows decoding together.
TEST(GeneratePrefill, BatchedChunksEqualGenerator) {
  auto be = make_backend("cpu");
  const Model m(*be, fs::path(LORAFIT_TEST_DATA) / "stories260K");
  const int64_t V = m.config().vocab_size, cap = 48;
  std::mt19937 rng(5);
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t P : {29, 7, 18}) {
    prompts.emplace_back(static_cast<size_t>(P));
    for (auto& id : prompts.back()) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(V));
  }
  GenerateSettings s;
  s.max_new_tokens = 8;
  BatchGenerator bg(m, 3, cap, nullptr, 6);
  EXPECT_EQ(bg.arena().capacity(), 6);
  EXPECT_TRUE(bg.arena().has("kv.0.k"));
  const std::vector<GenerateResult> got = bg.generate_all(prompts, s);
  Generator g(m, cap);
  for (size_t i = 0; i < prompts.size(); ++i) {
    g.reset();
    EXPECT_EQ(got[i].ids, g.generate(prompts[i], s).ids) << "prompt " << i;
  }
}

}  // namespace
}  // namespace lorafit
