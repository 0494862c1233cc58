#include "train/batcher.h"

#include <algorithm>
#include <numeric>

#include "util/error.h"

namespace lorafit {

namespace {
uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  uint64_t s = seed;
  for (int64_t i = n - 1; i > 0; --i) {
    // Unbiased draw in [0, i] by rejection.
    const uint64_t bound = static_cast<uint64_t>(i) + 1;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do r = splitmix64(s);
    while (r >= limit);
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(r % bound)]);
  }
  return p;
}

Batcher::Batcher(const std::vector<Example>& examples, const BatchOptions& o) : ex_(examples), o_(o) {
  LF_CHECK(o.batch_size >= 1);
}

int64_t Batcher::num_batches() const {
  const auto n = static_cast<int64_t>(ex_.size());
  return (n + o_.batch_size - 1) / o_.batch_size;
}

std::vector<int64_t> Batcher::epoch_order(int64_t epoch) const {
  const auto n = static_cast<int64_t>(ex_.size());
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
      std::stable_sort(b, e, [&](int64_t x, int64_t y) { return ex_[x].ids.size() > ex_[y].ids.size(); });
    }
  }
  return p;
}

int64_t Batcher::batch_samples(int64_t b) const {
  const auto n = static_cast<int64_t>(ex_.size());
  return std::min(o_.batch_size, n - b * o_.batch_size);
}

int64_t Batcher::batch_tokens(const std::vector<int64_t>& order, int64_t b) const {
  int64_t n = 0;
  for (int64_t i = b * o_.batch_size;
       i < std::min<int64_t>(static_cast<int64_t>(order.size()), (b + 1) * o_.batch_size); ++i)
    n += static_cast<int64_t>(ex_[static_cast<size_t>(order[static_cast<size_t>(i)])].ids.size());
  return n;
}

MicroBatch Batcher::batch(const std::vector<int64_t>& order, int64_t b) const {
  LF_CHECK(b >= 0 && b < num_batches(), "batch {} of {}", b, num_batches());
  std::vector<const Example*> items;
  for (int64_t i = b * o_.batch_size;
       i < std::min<int64_t>(static_cast<int64_t>(order.size()), (b + 1) * o_.batch_size); ++i)
    items.push_back(&ex_[static_cast<size_t>(order[static_cast<size_t>(i)])]);
  return collate(items, o_.pad_id);
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

}  // namespace lorafit
