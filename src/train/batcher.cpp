#include "train/batcher.h"

#include <algorithm>
#include <numeric>

#include "util/error.h"
#include "util/rng.h"

namespace lorafit {

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  uint64_t s = seed;
  for (int64_t i = n - 1; i > 0; --i) {
    // Unbiased draw in [0, i] by rejection.
    const uint64_t bound = static_cast<uint64_t>(i) + 1;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do r = splitmix64_next(s);
    while (r >= limit);
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(r % bound)]);
  }
  return p;
}

std::vector<std::vector<int64_t>> pack_first_fit(const std::vector<int64_t>& lengths,
                                                 const std::vector<int64_t>& order, int64_t capacity) {
  LF_CHECK(capacity >= 1, "pack_first_fit: capacity {}", capacity);
  std::vector<std::vector<int64_t>> rows;
  if (order.empty()) return rows;
  // A max segment tree over the free space of up to n rows; rows not yet opened are empty
  // (free = capacity), so the leftmost leaf with enough room is the first-fit row, opened or
  // the next new one.
  size_t P = 1;
  while (P < order.size()) P *= 2;
  std::vector<int64_t> free_tree(2 * P, capacity);  // (2P): leaves P.. = free space of row i
  for (const int64_t idx : order) {
    LF_CHECK(idx >= 0 && idx < static_cast<int64_t>(lengths.size()), "pack_first_fit: index {}", idx);
    const int64_t len = lengths[static_cast<size_t>(idx)];
    LF_CHECK(len >= 1 && len <= capacity, "pack_first_fit: length {} outside [1, {}]", len, capacity);
    size_t node = 1;
    while (node < P) node = free_tree[2 * node] >= len ? 2 * node : 2 * node + 1;
    const size_t row = node - P;
    if (row == rows.size()) rows.emplace_back();
    rows[row].push_back(idx);
    free_tree[node] -= len;
    for (node /= 2; node >= 1; node /= 2) free_tree[node] = std::max(free_tree[2 * node], free_tree[2 * node + 1]);
  }
  return rows;
}

Batcher::Batcher(const std::vector<Example>& examples, const BatchOptions& o) : ex_(examples), o_(o) {
  LF_CHECK(o.batch_size >= 1);
  if (!o.packing) return;
  std::vector<int64_t> lengths(ex_.size());
  for (size_t i = 0; i < ex_.size(); ++i) {
    lengths[i] = static_cast<int64_t>(ex_[i].ids.size());
    if (lengths[i] < 1 || lengths[i] > o.cutoff_len)
      throw Error("packing: training example {} (record {}) has {} tokens; packed rows hold 1 to cutoff_len = {} "
                  "tokens per sample; raise cutoff_len or truncate the data",
                  i, ex_[i].record, lengths[i], o.cutoff_len);
  }
  const auto n = static_cast<int64_t>(ex_.size());
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  // A stream of its own ("pack" in the low bits), not the epoch-0 shuffle.
  if (o.shuffle) order = seeded_permutation(n, o.seed * 0x100000001b3ull ^ 0x7061636b00000000ull);
  rows_ = pack_first_fit(lengths, order, o.cutoff_len);
}

int64_t Batcher::num_rows() const {
  return o_.packing ? static_cast<int64_t>(rows_.size()) : static_cast<int64_t>(ex_.size());
}

int64_t Batcher::num_batches() const { return (num_rows() + o_.batch_size - 1) / o_.batch_size; }

int64_t Batcher::row_tokens(int64_t r) const {
  if (!o_.packing) return static_cast<int64_t>(ex_[static_cast<size_t>(r)].ids.size());
  int64_t n = 0;
  for (const int64_t i : rows_[static_cast<size_t>(r)])
    n += static_cast<int64_t>(ex_[static_cast<size_t>(i)].ids.size());
  return n;
}

std::vector<const Example*> Batcher::row_items(int64_t r) const {
  std::vector<const Example*> items;
  if (!o_.packing) return {&ex_[static_cast<size_t>(r)]};
  for (const int64_t i : rows_[static_cast<size_t>(r)]) items.push_back(&ex_[static_cast<size_t>(i)]);
  return items;
}

std::vector<int64_t> Batcher::epoch_order(int64_t epoch) const {
  const int64_t n = num_rows();
  if (!o_.shuffle) {
    std::vector<int64_t> p(static_cast<size_t>(n));
    std::iota(p.begin(), p.end(), 0);
    return p;
  }
  std::vector<int64_t> p = seeded_permutation(n, o_.seed * 0x100000001b3ull + static_cast<uint64_t>(epoch));
  if (o_.group_by_length) {
    const int64_t mega = o_.batch_size * 50;
    for (int64_t s = 0; s < n; s += mega) {
      auto b = p.begin() + s, e = p.begin() + std::min(n, s + mega);
      std::stable_sort(b, e, [&](int64_t x, int64_t y) { return row_tokens(x) > row_tokens(y); });
    }
  }
  return p;
}

std::vector<int64_t> Batcher::batch_rows(const std::vector<int64_t>& order, int64_t b) const {
  LF_CHECK(b >= 0 && b < num_batches(), "batch {} of {}", b, num_batches());
  LF_CHECK(static_cast<int64_t>(order.size()) == num_rows(), "order of {} for {} rows", order.size(), num_rows());
  std::vector<int64_t> r;
  for (int64_t i = b * o_.batch_size; i < std::min(num_rows(), (b + 1) * o_.batch_size); ++i)
    r.push_back(order[static_cast<size_t>(i)]);
  return r;
}

int64_t Batcher::batch_samples(int64_t b) const { return std::min(o_.batch_size, num_rows() - b * o_.batch_size); }

int64_t Batcher::batch_samples(const std::vector<int64_t>& order, int64_t b) const {
  int64_t n = 0;
  for (const int64_t r : batch_rows(order, b))
    n += o_.packing ? static_cast<int64_t>(rows_[static_cast<size_t>(r)].size()) : 1;
  return n;
}

int64_t Batcher::batch_tokens(const std::vector<int64_t>& order, int64_t b) const {
  int64_t n = 0;
  for (const int64_t r : batch_rows(order, b)) n += row_tokens(r);
  return n;
}

MicroBatch Batcher::batch(const std::vector<int64_t>& order, int64_t b) const {
  const std::vector<int64_t> rows = batch_rows(order, b);
  if (!o_.packing) {
    std::vector<const Example*> items;
    for (const int64_t r : rows) items.push_back(&ex_[static_cast<size_t>(r)]);
    return collate(items, o_.pad_id);
  }
  std::vector<std::vector<const Example*>> packed;
  for (const int64_t r : rows) packed.push_back(row_items(r));
  return collate_packed(packed, o_.pad_id);
}

std::string Batcher::packing_summary() const {
  if (!o_.packing) return "";
  int64_t tokens = 0;
  for (int64_t r = 0; r < num_rows(); ++r) tokens += row_tokens(r);
  const double fill = rows_.empty() ? 0.0
                                    : 100.0 * static_cast<double>(tokens) /
                                          (static_cast<double>(rows_.size()) * static_cast<double>(o_.cutoff_len));
  return fmt::format("packing: {} samples into {} rows of <= {} tokens ({:.1f}% filled)", ex_.size(), rows_.size(),
                     o_.cutoff_len, fill);
}

MicroBatch collate(const std::vector<const Example*>& items, int32_t pad_id) {
  MicroBatch mb;
  mb.B = static_cast<int64_t>(items.size());
  for (const Example* e : items) mb.T = std::max<int64_t>(mb.T, static_cast<int64_t>(e->ids.size()));
  mb.ids.assign(static_cast<size_t>(mb.B * mb.T), pad_id);
  mb.labels.assign(mb.ids.size(), -100);
  for (int64_t b = 0; b < mb.B; ++b) {
    const Example& e = *items[static_cast<size_t>(b)];
    std::copy(e.ids.begin(), e.ids.end(), mb.ids.begin() + b * mb.T);
    std::copy(e.labels.begin(), e.labels.end(), mb.labels.begin() + b * mb.T);
  }
  return mb;
}

MicroBatch collate_packed(const std::vector<std::vector<const Example*>>& rows, int32_t pad_id) {
  MicroBatch mb;
  mb.B = static_cast<int64_t>(rows.size());
  for (const auto& row : rows) {
    int64_t len = 0;
    for (const Example* e : row) len += static_cast<int64_t>(e->ids.size());
    mb.T = std::max(mb.T, len);
  }
  const auto N = static_cast<size_t>(mb.B * mb.T);
  mb.ids.assign(N, pad_id);
  mb.labels.assign(N, -100);
  mb.pos.assign(N, 0);
  mb.seg.assign(N, 0);
  for (int64_t b = 0; b < mb.B; ++b) {
    const auto& row = rows[static_cast<size_t>(b)];
    auto t = static_cast<size_t>(b * mb.T);
    const size_t end = t + static_cast<size_t>(mb.T);
    for (size_t j = 0; j < row.size(); ++j) {
      const Example& e = *row[j];
      LF_CHECK(e.labels.size() == e.ids.size(), "example of {} ids has {} labels", e.ids.size(), e.labels.size());
      for (size_t i = 0; i < e.ids.size(); ++i, ++t) {
        mb.ids[t] = e.ids[i];
        // The first token is never a target of its own sample; masking it also keeps the
        // previous sample's last token from learning to predict it.
        mb.labels[t] = i == 0 ? -100 : e.labels[i];
        mb.pos[t] = static_cast<int32_t>(i);
        mb.seg[t] = static_cast<int32_t>(j);
      }
    }
    for (int32_t p = 0; t < end; ++t, ++p) {  // padding: a segment of its own
      mb.pos[t] = p;
      mb.seg[t] = static_cast<int32_t>(row.size());
    }
  }
  return mb;
}

}  // namespace lorafit
