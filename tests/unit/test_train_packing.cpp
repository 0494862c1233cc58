// Sequence packing: the first-fit packer against a brute-force first-fit, the batcher's packed
// rows (every sample exactly once, seeded and deterministic, positions restart, boundaries
// masked), and the numbers: a packed micro-batch gives the loss and every LoRA gradient of the
// same samples unpacked in separate rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <numeric>

#include "backend/backend.h"
#include "model/model.h"
#include "train/batcher.h"
#include "train/train_step.h"
#include "unit/lora_train_fixture.h"

namespace lorafit {
namespace {

using testing::TrainCase;

// Deterministic pseudo-random integers (an LCG; only the test's inputs depend on it).
struct Lcg {
  uint64_t s;
  int64_t next(int64_t lo, int64_t hi) {  // uniform-ish in [lo, hi]
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return lo + static_cast<int64_t>((s >> 33) % static_cast<uint64_t>(hi - lo + 1));
  }
};

// Text-style examples (every label trained, as train_on_prompt or the text format give), so
// the boundary masking is what keeps a sample from predicting the next one's first token.
std::vector<Example> text_examples(int n, int64_t max_len, uint64_t seed, int32_t vocab) {
  Lcg r{seed};
  std::vector<Example> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const int64_t len = r.next(2, max_len);
    for (int64_t t = 0; t < len; ++t) v[i].ids.push_back(static_cast<int32_t>(r.next(3, vocab - 1)));
    v[i].labels = v[i].ids;
    v[i].record = i;
  }
  return v;
}

// First-fit the obvious way: scan every open row.
std::vector<std::vector<int64_t>> brute_first_fit(const std::vector<int64_t>& len, const std::vector<int64_t>& order,
                                                  int64_t cap) {
  std::vector<std::vector<int64_t>> rows;
  std::vector<int64_t> used;
  for (const int64_t i : order) {
    size_t r = 0;
    while (r < rows.size() && used[r] + len[static_cast<size_t>(i)] > cap) ++r;
    if (r == rows.size()) rows.emplace_back(), used.push_back(0);
    rows[r].push_back(i);
    used[r] += len[static_cast<size_t>(i)];
  }
  return rows;
}

TEST(TrainPacking, FirstFitByHand) {
  // cap 8: 5→r0 (3 free), 3→r0 (0), 4→r1 (4), 2→r1 (2), 6→r2 (2), 1→r1 (first row with room).
  const auto rows = pack_first_fit({5, 3, 4, 2, 6, 1}, {0, 1, 2, 3, 4, 5}, 8);
  EXPECT_EQ(rows, (std::vector<std::vector<int64_t>>{{0, 1}, {2, 3, 5}, {4}}));
  // Order matters: the same lengths in reverse.
  EXPECT_EQ(pack_first_fit({5, 3, 4, 2, 6, 1}, {5, 4, 3, 2, 1, 0}, 8),
            (std::vector<std::vector<int64_t>>{{5, 4}, {3, 2}, {1, 0}}));
}

TEST(TrainPacking, FirstFitMatchesBruteForce) {
  for (const int64_t cap : {1, 7, 64, 300}) {
    Lcg r{static_cast<uint64_t>(cap)};
    std::vector<int64_t> len(3001);
    for (auto& l : len) l = r.next(1, cap);
    const std::vector<int64_t> order = seeded_permutation(static_cast<int64_t>(len.size()), 5);
    EXPECT_EQ(pack_first_fit(len, order, cap), brute_first_fit(len, order, cap)) << "capacity " << cap;
  }
}

TEST(TrainPacking, BatcherPacksEverySampleOnceDeterministically) {
  const auto ex = text_examples(97, 40, 3, 613);
  BatchOptions o;
  o.batch_size = 3;
  o.packing = true;
  o.cutoff_len = 64;
  o.seed = 7;
  o.pad_id = 0;
  const Batcher b(ex, o);
  // The rows are first-fit over the seeded packing order, and the same on every construction.
  EXPECT_EQ(b.packed_rows(), Batcher(ex, o).packed_rows());
  std::vector<int64_t> len;
  for (const Example& e : ex) len.push_back(static_cast<int64_t>(e.ids.size()));
  std::vector<int64_t> flat;
  int64_t total = 0;
  for (const auto& row : b.packed_rows()) {
    int64_t used = 0;
    for (const int64_t i : row) used += len[static_cast<size_t>(i)], flat.push_back(i);
    EXPECT_LE(used, o.cutoff_len);
    total += used;
  }
  // Packing order: the seeded stream of its own the batcher documents.
  const std::vector<int64_t> pack_order = seeded_permutation(97, o.seed * 0x100000001b3ull ^ 0x7061636b00000000ull);
  EXPECT_EQ(b.packed_rows(), brute_first_fit(len, pack_order, o.cutoff_len));
  std::sort(flat.begin(), flat.end());
  std::vector<int64_t> all(ex.size());
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(flat, all);  // every sample exactly once
  EXPECT_LT(b.num_rows(), 97 / 2);  // lengths 2..40 in rows of 64: packing actually packs
  o.seed = 8;
  EXPECT_NE(Batcher(ex, o).packed_rows(), b.packed_rows());  // seeded
  o.shuffle = false;
  std::vector<int64_t> file_order(97);
  std::iota(file_order.begin(), file_order.end(), 0);
  EXPECT_EQ(Batcher(ex, o).packed_rows(), brute_first_fit(len, file_order, o.cutoff_len));

  // Over an epoch's micro-batches every sample appears once; tokens add up; rows shuffle per epoch.
  int64_t samples = 0, tokens = 0;
  const auto order = b.epoch_order(1);
  EXPECT_EQ(order, b.epoch_order(1));
  EXPECT_NE(order, b.epoch_order(2));
  for (int64_t k = 0; k < b.num_batches(); ++k) {
    samples += b.batch_samples(order, k);
    tokens += b.batch_tokens(order, k);
    const MicroBatch mb = b.batch(order, k);
    EXPECT_EQ(mb.pos.size(), mb.ids.size());
    EXPECT_EQ(mb.seg.size(), mb.ids.size());
    EXPECT_LE(mb.T, o.cutoff_len);
  }
  EXPECT_EQ(samples, 97);
  EXPECT_EQ(tokens, total);
  EXPECT_NE(b.packing_summary().find("97 samples into"), std::string::npos) << b.packing_summary();
}

TEST(TrainPacking, CollateMarksPositionsSegmentsAndBoundaries) {
  Example a, c, d;
  a.ids = {11, 12, 13};
  a.labels = {11, 12, 13};  // every token trained: the boundary mask has to come from packing
  c.ids = {21, 22};
  c.labels = {21, 22};
  d.ids = {31, 32, 33, 34};
  d.labels = {-100, -100, 33, 34};
  const MicroBatch mb = collate_packed({{&a, &c}, {&d}}, 9);
  EXPECT_EQ(mb.B, 2);
  EXPECT_EQ(mb.T, 5);
  EXPECT_EQ(mb.ids, (std::vector<int32_t>{11, 12, 13, 21, 22, 31, 32, 33, 34, 9}));
  EXPECT_EQ(mb.labels, (std::vector<int32_t>{-100, 12, 13, -100, 22, -100, -100, 33, 34, -100}));
  EXPECT_EQ(mb.pos, (std::vector<int32_t>{0, 1, 2, 0, 1, 0, 1, 2, 3, 0}));
  EXPECT_EQ(mb.seg, (std::vector<int32_t>{0, 0, 0, 1, 1, 0, 0, 0, 0, 1}));  // padding: a seg of its own
  // The loss's shift: token 13 (last of a) must not be trained to predict 21 (first of c).
  const std::vector<int32_t> targets = shift_labels(mb.labels, mb.B, mb.T, mb.seg);
  EXPECT_EQ(targets, (std::vector<int32_t>{12, 13, -100, 22, -100, -100, 33, 34, -100, -100}));
  // Even with the first label left unmasked, seg stops the shift at the boundary.
  std::vector<int32_t> raw = mb.labels;
  raw[3] = 21;
  EXPECT_EQ(shift_labels(raw, mb.B, mb.T, mb.seg)[2], -100);
  EXPECT_EQ(shift_labels(raw, mb.B, mb.T)[2], 21);  // what no seg would train
}

TEST(TrainPacking, OverlongSampleIsAnError) {
  const auto ex = text_examples(3, 10, 1, 613);
  BatchOptions o;
  o.packing = true;
  o.cutoff_len = 1;
  try {
    Batcher b(ex, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              fmt::format("packing: training example 0 (record 0) has {} tokens; packed rows hold 1 to cutoff_len = 1 "
                          "tokens per sample; raise cutoff_len or truncate the data",
                          ex[0].ids.size()));
  }
}

// ---- packed vs unpacked numbers ----

struct Numbers {
  double ce = 0;  // Σ token CE
  int64_t predicted = 0;
  std::vector<float> grads;  // (P)
};

Numbers run(const Model& m, LoraParams& p, const MicroBatch& mb, double scale, bool checkpointing) {
  TrainConfig c;
  c.gradient_checkpointing = checkpointing;
  LoraTrainer t(m, p, c, LrSchedule(LrSchedulerType::Constant, 1e-3, 10));  // zeroes the grads
  Numbers r;
  r.ce = t.accumulate(mb, scale, 0, &r.predicted);
  r.grads.resize(static_cast<size_t>(p.num_params()));
  m.backend().download(r.grads.data(), p.grads().data, r.grads.size() * sizeof(float));
  return r;
}

// Equivalence: the same samples as packed rows and one per row. Every per-token quantity
// (norms, projections, RoPE at the same positions, attention over the same keys in the same
// order, the lm-head CE) is computed from the same inputs by the same row-wise kernels, so
// the per-token fp32 losses agree; what may differ is the order of the reductions over
// tokens: Σ CE (in double) and each LoRA gradient element g = Σ_n t_n over the N rows of the
// batch (padding rows add exact zeros).
//  - Σ CE: n ≤ N positive terms summed in double in another order: |Δ| ≤ 2·N·2⁻⁵³·Σ.
//  - g: an fp32 sum of N terms in any order errs by ≤ γ_N·Σ|t_n| ≈ N·u·Σ|t_n| (u = 2⁻²⁴), so
//    the two sides differ by ≤ 2·N·u·Σ|t_n|. Σ|t_n| is not observable here; as in
//    test_model_backward we bound it normwise, each token's term by the tensor's largest
//    gradient: Σ|t_n| ≤ N·max|g|, giving |Δg| ≤ 2·N²·u·max|g|.
void expect_same(const LoraParams& p, const Numbers& packed, const Numbers& unpacked, int64_t N) {
  EXPECT_EQ(packed.predicted, unpacked.predicted);
  EXPECT_NEAR(packed.ce, unpacked.ce, 2.0 * static_cast<double>(N) * (DBL_EPSILON / 2) * unpacked.ce) << "loss";
  const double rel = 2.0 * static_cast<double>(N) * static_cast<double>(N) * (FLT_EPSILON / 2);
  double worst = 0;
  for (const LoraTensor& t : p.tensors()) {
    double scale = 0;
    for (int64_t i = 0; i < t.numel(); ++i)
      scale = std::max(scale, static_cast<double>(std::fabs(unpacked.grads[static_cast<size_t>(t.offset + i)])));
    ASSERT_GT(scale, 0.0) << t.key << ": zero gradient (B = 0?)";
    int bad = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const auto k = static_cast<size_t>(t.offset + i);
      const double d = std::fabs(static_cast<double>(packed.grads[k]) - unpacked.grads[k]);
      worst = std::max(worst, d / (rel * scale));
      if (!(d <= rel * scale) && ++bad <= 3)
        ADD_FAILURE() << t.key << "[" << i << "]: packed " << packed.grads[k] << " unpacked " << unpacked.grads[k];
    }
  }
  ::testing::Test::RecordProperty("worst_err_over_bound", std::to_string(worst));
  std::printf("packing equivalence: worst |Δg| / bound = %.3g\n", worst);
}

TEST(TrainPacking, PackedBatchEqualsUnpackedRows) {
  TrainCase tc("qwen2-gqa7-untied-f32");
  auto be = make_backend("cpu");
  Model m(*be, tc.model_dir);
  LoraConfig lc = tc.lora_config();
  lc.dropout = 0;
  LoraParams p(*be, lc, m.config());
  tc.load_gradcheck_point(p);  // B ≠ 0: every A and B gets a gradient
  const int32_t V = static_cast<int32_t>(m.config().vocab_size);
  auto ex = text_examples(5, 12, 17, V);
  // Prompt-style masking on two samples, so masked and trained labels mix.
  ex[1].labels[1] = -100;
  ex[3].labels[1] = ex[3].labels[2] = -100;
  // Packed: rows {0, 1, 2} and {3, 4} (the second row padded). Unpacked: five rows.
  const MicroBatch packed = collate_packed({{&ex[0], &ex[1], &ex[2]}, {&ex[3], &ex[4]}}, 0);
  // The unpacked side keeps the samples' own labels: its first labels are never predicted
  // anyway (the shift drops them), so both predict the same tokens.
  const MicroBatch unpacked = collate({&ex[0], &ex[1], &ex[2], &ex[3], &ex[4]}, 0);
  int64_t predicted = 0;
  for (const Example& e : ex)
    for (size_t i = 1; i < e.labels.size(); ++i) predicted += e.labels[i] != -100;
  const double scale = 1.0 / static_cast<double>(predicted);  // the same token-sum normalisation
  const Numbers a = run(m, p, packed, scale, true), u = run(m, p, unpacked, scale, true);
  EXPECT_EQ(u.predicted, predicted);
  expect_same(p, a, u, std::max(packed.B * packed.T, unpacked.B * unpacked.T));
  // Recomputation (checkpointing) keeps the segments: off gives the same bits.
  const Numbers off = run(m, p, packed, scale, false);
  EXPECT_EQ(off.ce, a.ce);
  EXPECT_EQ(off.grads, a.grads);
  // And the segment mask is live: without it (one long sequence) the loss changes.
  MicroBatch leaky = packed;
  leaky.seg.assign(leaky.seg.size(), 0);
  for (int64_t b = 0; b < leaky.B; ++b)
    for (int64_t t = 0; t < leaky.T; ++t) leaky.pos[static_cast<size_t>(b * leaky.T + t)] = static_cast<int32_t>(t);
  EXPECT_GT(std::fabs(run(m, p, leaky, scale, true).ce - u.ce), 1e-3 * u.ce);
}

TEST(TrainPacking, StepRejectsMismatchedSegments) {
  TrainCase tc("qwen2-gqa7-untied-f32");
  auto be = make_backend("cpu");
  Model m(*be, tc.model_dir);
  LoraParams p(*be, tc.lora_config(), m.config());
  tc.load_gradcheck_point(p);
  LoraTrainer t(m, p, TrainConfig{}, LrSchedule(LrSchedulerType::Constant, 1e-3, 10));
  auto ex = text_examples(2, 6, 2, static_cast<int32_t>(m.config().vocab_size));
  MicroBatch mb = collate_packed({{&ex[0], &ex[1]}}, 0);
  mb.pos.pop_back();
  mb.seg.pop_back();
  try {
    t.step({mb});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              fmt::format(
                  "micro-batch 0: a packed batch needs pos and seg of B·T = {} entries each, got {} pos and {} seg", mb.T,
                  mb.T - 1, mb.T - 1));
  }
}

}  // namespace
}  // namespace lorafit
