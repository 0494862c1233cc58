// Evaluation results for the dashboard: a run folder's eval_results.json and predictions.jsonl
// (written by `lorafit eval --output_dir`, at the folder itself or in its eval/ subfolder),
// joined per question across models so the page can show base and adapters side by side.
#pragma once
#include <filesystem>

#include <nlohmann/json.hpp>

namespace lorafit::track {

// The folder holding eval_results.json for `run`, or empty when it has none.
std::filesystem::path eval_dir_of(const std::filesystem::path& run);

// {"found": false} when the run has no results; else {"found": true, "task", "models",
//  "results": {model: summary}, "settings", "truncated", "n", "rows": [{"id", "source",
//  "reference", "changed", "answers": {model: {"prediction", "answer"?, "correct"?,
//  "rouge-l"?}}}], "warnings": [...]}. "changed": some model's answer differs from the first
// model's (MCQ: the extracted letters; QA: the text), i.e. changed by fine-tuning when the
// first model is the base. Never throws for bad content: what is readable is returned.
nlohmann::json read_eval(const std::filesystem::path& run);

}  // namespace lorafit::track
