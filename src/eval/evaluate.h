// One evaluation: prompts for the items (the official MCQ prompt, or the QA input as it is),
// answers generated in batches (generate/batch_generate.h), each answer scored, and the
// summary `lorafit eval --json` prints. The same code scores given predictions
// (--predictions) and runs inside training (train --eval_data).
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/eval_data.h"
#include "eval/text_metrics.h"
#include "generate/generate.h"

namespace lorafit {
class Model;
class LoraParams;
}  // namespace lorafit

namespace lorafit::eval {

struct Settings {
  Task task = Task::Mcq;
  int max_new_tokens = 0;  // 0: default_max_new_tokens(task)
  int batch_size = 16;     // rows decoded together
  int num_few_shot = 4;    // the official default (--n-shot 4 in eval/src/main.py)
};
int default_max_new_tokens(Task t);  // mcq 64 (the prompt asks for the letters only), qa 512

// The prompt text of an item before the chat template: mcq_prompt(...) for MCQ (the options
// line left out when the question carries them), the input itself for QA (qa_formatter).
std::string item_prompt(const Item& item, const Settings& s);

// One answered (or given) row.
struct Scored {
  std::string id, source, prediction, reference;
  std::string extracted;  // mcq: the official extraction of the prediction
  bool correct = false;   // mcq
  QaScores qa;            // qa
  bool truncated = false; // the prompt was cut to fit the context
};

void score_row(Task task, Scored& row);  // fills extracted/correct or qa

// {"task": "mcq", "n", "accuracy", "per_source": {...}} (accuracy = plain mean of the per-source
// accuracies, as the official summary averages its datasets) or
// {"task": "qa", "n", "rouge-1", "rouge-2", "rouge-l", "bleu-4"}: scores ×100.
nlohmann::ordered_json summarize(Task task, const std::vector<Scored>& rows);

// What generation needs from the caller: the model and adapter (null: base), how a prompt
// text becomes ids (chat template) and ids become text, and the eos ids.
struct Generation {
  const Model* model = nullptr;
  const LoraParams* lora = nullptr;
  std::function<std::vector<int32_t>(const std::string&)> encode;
  std::function<std::string(const std::vector<int32_t>&)> decode;
  std::vector<int32_t> eos_ids;
};

// Answers every item greedily, batch_size at a time, and scores them. Prompts longer than
// the context minus max_new_tokens keep their last tokens (left truncation, the end holds the
// question and "答案：") and are marked truncated. on_done(k) after each finished row
// (k = rows done so far).
std::vector<Scored> run(const Generation& g, const std::vector<Item>& items, const Settings& s,
                        const std::function<void(size_t)>& on_done = {});

// Given predictions (JSONL rows {"id", "prediction", "reference", "source"?, "model"?}), grouped
// by "model" in order of first appearance ("" when absent). Errors name the file, line, field.
std::vector<std::pair<std::string, std::vector<Scored>>> load_predictions(const fs::path& file, Task task);

// A predictions.jsonl line (no newline).
nlohmann::ordered_json prediction_json(Task task, const std::string& model, const Scored& r);

}  // namespace lorafit::eval
