// Batching: seeded per-epoch order (a pure function of seed and epoch), file order without
// shuffle, right padding with pad_id and labels −100 (docs/SPEC.md "Collation"), length grouping.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "train/batcher.h"

using namespace lorafit;

namespace {
std::vector<Example> examples(int n) {
  std::vector<Example> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    v[i].ids.assign(static_cast<size_t>(1 + i % 5), 100 + i);
    v[i].labels = v[i].ids;
    v[i].labels[0] = -100;
    v[i].record = i;
  }
  return v;
}
}  // namespace

TEST(TrainBatch, SeededPermutationIsAPermutationAndDeterministic) {
  const auto p = seeded_permutation(1000, 42);
  std::vector<int64_t> s = p;
  std::sort(s.begin(), s.end());
  std::vector<int64_t> id(1000);
  std::iota(id.begin(), id.end(), 0);
  EXPECT_EQ(s, id);
  EXPECT_EQ(p, seeded_permutation(1000, 42));
  EXPECT_NE(p, seeded_permutation(1000, 43));
  EXPECT_NE(p, id);
}

TEST(TrainBatch, EpochOrders) {
  const auto ex = examples(11);
  BatchOptions o;
  o.batch_size = 3;
  const Batcher b(ex, o);
  EXPECT_EQ(b.num_batches(), 4);
  EXPECT_EQ(b.batch_samples(3), 2);
  EXPECT_EQ(b.epoch_order(0), b.epoch_order(0));
  EXPECT_NE(b.epoch_order(0), b.epoch_order(1));
  o.shuffle = false;
  const Batcher f(ex, o);
  std::vector<int64_t> id(11);
  std::iota(id.begin(), id.end(), 0);
  EXPECT_EQ(f.epoch_order(3), id);
}

TEST(TrainBatch, RightPaddingAndMaskedPad) {
  const auto ex = examples(4);
  BatchOptions o;
  o.batch_size = 3;
  o.shuffle = false;
  o.pad_id = 151643;
  const Batcher b(ex, o);
  const MicroBatch mb = b.batch(b.epoch_order(0), 0);  // lengths 1, 2, 3
  EXPECT_EQ(mb.B, 3);
  EXPECT_EQ(mb.T, 3);
  EXPECT_EQ(mb.ids, (std::vector<int32_t>{100, 151643, 151643, 101, 101, 151643, 102, 102, 102}));
  EXPECT_EQ(mb.labels, (std::vector<int32_t>{-100, -100, -100, -100, 101, -100, -100, 102, 102}));
  EXPECT_EQ(b.batch_tokens(b.epoch_order(0), 0), 6);
  const MicroBatch last = b.batch(b.epoch_order(0), 1);  // the short last batch
  EXPECT_EQ(last.B, 1);
  EXPECT_EQ(last.T, 4);
}

TEST(TrainBatch, GroupByLengthSortsWithinMegaBatches) {
  const auto ex = examples(40);
  BatchOptions o;
  o.batch_size = 2;
  o.group_by_length = true;
  const Batcher b(ex, o);
  const auto order = b.epoch_order(0);
  std::set<int64_t> seen(order.begin(), order.end());
  EXPECT_EQ(seen.size(), 40u);
  for (size_t i = 1; i < order.size(); ++i) EXPECT_GE(ex[order[i - 1]].ids.size(), ex[order[i]].ids.size());
}
