// Examples → micro-batches (SPEC.md "Collation"): a seeded shuffle per epoch (a pure
// function of (seed, epoch), so a resumed run sees the same order), optional length grouping
// (LengthGroupedSampler-style: shuffle, then sort each mega-batch of 50 batches by length),
// and right padding with pad_id, labels −100.
#pragma once
#include <cstdint>
#include <vector>

#include "train/render.h"
#include "train/train_step.h"

namespace lorafit {

struct BatchOptions {
  int64_t batch_size = 2;
  bool shuffle = true;
  bool group_by_length = false;
  uint64_t seed = 42;
  int32_t pad_id = 0;
};

class Batcher {
 public:
  Batcher(const std::vector<Example>& examples, const BatchOptions& o);

  int64_t num_batches() const;  // per epoch: ceil(examples / batch)
  // The example order of `epoch` (0-based).
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // Micro-batch b of an epoch's order.
  MicroBatch batch(const std::vector<int64_t>& order, int64_t b) const;
  int64_t batch_samples(int64_t b) const;  // examples in micro-batch b (the last may be short)
  int64_t batch_tokens(const std::vector<int64_t>& order, int64_t b) const;  // their tokens, no padding

 private:
  const std::vector<Example>& ex_;
  BatchOptions o_;
};

// Pads `items` into one right-padded micro-batch (T = the longest; pad_id, labels −100).
MicroBatch collate(const std::vector<const Example*>& items, int32_t pad_id);

// A portable seeded permutation (Fisher–Yates over splitmix64), the same on every platform.
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);

}  // namespace lorafit
