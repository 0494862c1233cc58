// Examples → micro-batches (docs/SPEC.md "Collation"): a seeded shuffle per epoch (a pure
// function of (seed, epoch), so a resumed run sees the same order), optional length grouping
// (LengthGroupedSampler-style: shuffle, then sort each mega-batch of 50 batches by length),
// and right padding with pad_id, labels −100.
//
// Packing (packing: true): before training, the examples are packed once into rows of at
// most cutoff_len tokens, greedy first-fit in a seeded order (every example in exactly one
// row); the epochs then shuffle and batch rows instead of examples, so the number of
// micro-batches is the same every epoch. Inside a row each sample keeps its own positions
// (from 0) and attention segment, and its first label is −100 (as transformers'
// DataCollatorWithFlattening), so no sample predicts or attends across a boundary.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/render.h"
#include "train/train_step.h"

namespace lorafit {

struct BatchOptions {
  int64_t batch_size = 2;  // rows per micro-batch (examples, or packed rows with packing)
  bool shuffle = true;
  bool group_by_length = false;
  uint64_t seed = 42;
  int32_t pad_id = 0;
  bool packing = false;
  int64_t cutoff_len = 1024;  // packed row capacity in tokens (only with packing)
};

class Batcher {
 public:
  // Throws Error (naming the example) when packing meets an example longer than cutoff_len.
  Batcher(const std::vector<Example>& examples, const BatchOptions& o);

  int64_t num_rows() const;     // examples, or packed rows with packing
  int64_t num_batches() const;  // per epoch: ceil(rows / batch)
  // The row order of `epoch` (0-based): a permutation of 0..num_rows()−1.
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // Micro-batch b of an epoch's order.
  MicroBatch batch(const std::vector<int64_t>& order, int64_t b) const;
  int64_t batch_samples(int64_t b) const;  // rows in micro-batch b (the last may be short)
  int64_t batch_samples(const std::vector<int64_t>& order, int64_t b) const;  // examples in it
  int64_t batch_tokens(const std::vector<int64_t>& order, int64_t b) const;   // their tokens, no padding
  // The packed rows (example indices in row order); empty without packing.
  const std::vector<std::vector<int64_t>>& packed_rows() const { return rows_; }
  // One line for the run log: "packing: 120 samples into 31 rows of <= 256 tokens (93.2% filled)".
  std::string packing_summary() const;

 private:
  int64_t row_tokens(int64_t r) const;
  std::vector<const Example*> row_items(int64_t r) const;
  std::vector<int64_t> batch_rows(const std::vector<int64_t>& order, int64_t b) const;

  const std::vector<Example>& ex_;
  BatchOptions o_;
  std::vector<std::vector<int64_t>> rows_;  // packed rows (packing only)
};

// Pads `items` into one right-padded micro-batch (T = the longest; pad_id, labels −100).
MicroBatch collate(const std::vector<const Example*>& items, int32_t pad_id);

// Packed rows → one right-padded micro-batch with pos and seg: row b is its samples one after
// another (positions 0..len−1 each, seg = the sample's index in the row, its first label
// −100), then padding (pad_id, labels −100, seg = the row's sample count, positions from 0).
MicroBatch collate_packed(const std::vector<std::vector<const Example*>>& rows, int32_t pad_id);

// Greedy first-fit: takes `order` (indices into lengths) one by one and puts each into the
// lowest-numbered row whose free space (capacity − tokens already there) is ≥ its length,
// opening a new row when none is. Rows list their indices in placement order. O(n log n).
// Every length must be in [1, capacity].
std::vector<std::vector<int64_t>> pack_first_fit(const std::vector<int64_t>& lengths,
                                                 const std::vector<int64_t>& order, int64_t capacity);

// A portable seeded permutation (Fisher–Yates over splitmix64), the same on every platform.
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);

}  // namespace lorafit
