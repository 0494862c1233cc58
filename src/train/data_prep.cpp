#include "train/data_prep.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include "train/batcher.h"
#include "util/error.h"

namespace lorafit {

namespace {

fs::path default_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "lorafit" / "tokenized";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "lorafit" / "tokenized";
  return fs::temp_directory_path() / "lorafit-tokenized";
}

std::vector<int64_t> iota_range(IndexRange r) {
  std::vector<int64_t> v;
  for (int64_t i = r.begin; i < r.end; ++i) v.push_back(i);
  return v;
}

}  // namespace

int64_t percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

ChatSetup chat_setup_of(const TrainSettings& s) {
  ChatSetup c;
  c.template_file = s.chat_template;
  if (!s.enable_thinking.empty()) c.enable_thinking = s.enable_thinking == "true";
  return c;
}

PreparedData prepare_data(const TrainSettings& s, const ChatRenderer& r) {
  PreparedData d;
  DatasetOptions dopt;
  dopt.format = parse_dataset_format(s.dataset_format);
  dopt.columns = s.columns;
  dopt.system = s.system;
  dopt.include_reference = s.include_reference;
  dopt.skip_bad = s.on_bad_record == "skip";
  d.ds = load_dataset(s.data, dopt);
  const auto n = static_cast<int64_t>(d.ds.records.size());

  // Splits: explicit ranges first (the reference recipe: eval 0:5, train 5:5000), else
  // val_size records chosen by a seeded permutation, else no eval split.
  if (!s.eval_range.empty()) {
    d.eval_idx = iota_range(parse_range(s.eval_range, n, "eval_range"));
  } else if (s.val_size > 0) {
    const auto k = static_cast<int64_t>(s.val_size < 1 ? std::ceil(s.val_size * static_cast<double>(n)) : s.val_size);
    if (k >= n) throw Error("val_size {} leaves no training records out of {}", s.val_size, n);
    std::vector<int64_t> p = seeded_permutation(n, static_cast<uint64_t>(s.seed) ^ 0x5eedull);
    d.eval_idx.assign(p.begin(), p.begin() + k);
    std::sort(d.eval_idx.begin(), d.eval_idx.end());
  }
  if (!s.train_range.empty()) {
    d.train_idx = iota_range(parse_range(s.train_range, n, "train_range"));
  } else {
    const std::set<int64_t> held(d.eval_idx.begin(), d.eval_idx.end());
    for (int64_t i = 0; i < n; ++i)
      if (!held.count(i)) d.train_idx.push_back(i);
  }
  if (d.train_idx.empty())
    throw Error("{}: no training records ({} records; train_range \"{}\", eval_range \"{}\")", s.data, n,
                s.train_range, s.eval_range);

  RenderOptions ro;
  ro.cutoff_len = s.cutoff_len;
  ro.train_on_prompt = s.train_on_prompt;

  // The cache key covers the data, the tokenizer files and every setting that changes tokens.
  std::string key_settings = fmt::format("v1|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", s.dataset_format, s.columns, s.system,
                                         s.include_reference, s.train_on_prompt, s.cutoff_len, s.train_range,
                                         s.eval_range, s.val_size, s.on_bad_record);
  key_settings += fmt::format("|{}", s.seed);
  const std::string& tmpl = r.template_text();  // --template or the folder's, and its variables
  key_settings += fmt::format("|{:016x}|{}", fnv1a64(tmpl.data(), tmpl.size()), r.setup().extra().dump());
  const fs::path cache_dir = s.cache_dir.empty() ? default_cache_dir() : fs::path(s.cache_dir);
  d.cache_file = cache_dir / (render_cache_key(s.data, s.model_name_or_path, key_settings) + ".train.bin");
  fs::path eval_file = d.cache_file;
  eval_file.replace_extension("").replace_extension(".eval.bin");
  if (!s.overwrite_cache && load_render_cache(d.cache_file, d.train, d.train_stats) &&
      load_render_cache(eval_file, d.eval, d.eval_stats)) {
    d.from_cache = true;
  } else {
    d.train_stats = {};
    d.eval_stats = {};
    d.train = render_all(r, d.ds, d.train_idx, ro, d.train_stats);
    d.eval = render_all(r, d.ds, d.eval_idx, ro, d.eval_stats);
    try {
      save_render_cache(d.cache_file, d.train, d.train_stats);
      save_render_cache(eval_file, d.eval, d.eval_stats);
    } catch (const std::exception&) {
      // A cache that cannot be written (read-only home) only costs time next run.
    }
  }
  if (d.train.empty())
    throw Error("{}: every training sample lost its trainable tokens after truncation to cutoff_len {} ({} dropped); "
                "raise cutoff_len or shorten the prompts",
                s.data, s.cutoff_len, d.train_stats.no_target);
  return d;
}

std::string describe_data(const PreparedData& d, const TrainSettings& s) {
  const RenderStats& t = d.train_stats;
  std::string out = fmt::format("data {}: {} records ({} form){}; train {} samples, eval {} samples{}\n", s.data,
                                d.ds.records.size(), dataset_format_name(d.ds.format),
                                d.ds.skipped_bad ? fmt::format(", {} bad records skipped ({} with empty outputs; "
                                                               "first: {})",
                                                               d.ds.skipped_bad, d.ds.empty_outputs, d.ds.first_error)
                                                 : "",
                                d.train.size(), d.eval.size(), d.from_cache ? " (tokenized cache)" : "");
  out += fmt::format(
      "tokens per sample: min {} / median {} / p95 {} / max {}, total {} ({} trained); {} truncated at cutoff_len {}, "
      "{} dropped with no trainable token\n",
      percentile(t.lengths, 0), percentile(t.lengths, 50), percentile(t.lengths, 95), t.max_len, t.total_tokens,
      t.trainable_tokens, t.truncated, s.cutoff_len, t.no_target);
  return out;
}

}  // namespace lorafit
