// Settings → the train and eval examples: load the records, pick the splits (train_range /
// eval_range as in the reference recipe, or val_size), render them through the model's chat
// template (with the tokenized cache), and count what was truncated or dropped.
// Shared by `lorafit train` and `lorafit prepare`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/dataset.h"
#include "train/render.h"
#include "train/train_config.h"

namespace lorafit {

struct PreparedData {
  Dataset ds;
  std::vector<int64_t> train_idx, eval_idx;  // into ds.records
  std::vector<Example> train, eval;
  RenderStats train_stats, eval_stats;
  bool from_cache = false;
  fs::path cache_file;
};

PreparedData prepare_data(const TrainSettings& s, const ChatRenderer& r);

// The chat template settings of a run (`template`, `enable_thinking`).
ChatSetup chat_setup_of(const TrainSettings& s);

// A one-paragraph summary (records, skipped, splits, truncated, dropped, token lengths).
std::string describe_data(const PreparedData& d, const TrainSettings& s);

// Percentile p (0..100) of `v` (nearest rank), 0 when empty.
int64_t percentile(std::vector<int64_t> v, double p);

}  // namespace lorafit
