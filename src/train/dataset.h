// Datasets (docs/DESIGN.md §2, §8): JSONL or a JSON array of records in one of the forms people
// already have, turned into conversations for the chat template.
//   pair     {input, output} (DISC-Law-SFT; `reference` appended to the input on request)
//   alpaca   {instruction, input, output} (user = instruction + "\n" + input when both are set)
//   chat     {messages: [{role, content}]}
//   sharegpt {conversations: [{from, value}]} (human→user, gpt→assistant, system→system)
//   text     {text} (plain language modelling: every token is trained, no chat template)
// The format is named or detected from the first record; a column map renames fields.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/file.h"

namespace lorafit {

enum class DatasetFormat { Auto, Pair, Alpaca, Chat, ShareGpt, Text };
DatasetFormat parse_dataset_format(const std::string& name);  // Error listing the names
const char* dataset_format_name(DatasetFormat f);

struct DatasetOptions {
  DatasetFormat format = DatasetFormat::Auto;
  std::string columns;  // "input=question,output=answer": our field name = the file's name
  std::string system;   // replaces/sets the system message when non-empty
  bool include_reference = false;
  bool skip_bad = false;  // on_bad_record: skip (counted) instead of error
};

struct Record {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // chat forms
  std::string text;     // text form
  int64_t line = 0;     // 1-based line (JSONL) or array index + 1 (JSON)
};

struct Dataset {
  DatasetFormat format = DatasetFormat::Auto;  // resolved
  std::vector<Record> records;
  int64_t skipped_bad = 0;     // records skipped with on_bad_record: skip
  int64_t empty_outputs = 0;   // among them: an empty assistant reply
  std::string first_error;     // the first skipped record's problem, for the summary
};

// Reads `path`. Bad records (not JSON, missing fields, empty outputs) are an Error naming
// file:line, or skipped and counted with opts.skip_bad. An empty result is an Error.
Dataset load_dataset(const fs::path& path, const DatasetOptions& opts);

// "a:b" (Python slice, either side may be empty, negatives count from the end) over n items.
struct IndexRange {
  int64_t begin = 0, end = 0;
};
IndexRange parse_range(const std::string& spec, int64_t n, const std::string& key);

// The conversation without its last assistant turn, for generation (prompt), and that turn's
// content (the ground truth).
nlohmann::ordered_json prompt_messages(const Record& r);
std::string reference_answer(const Record& r);

}  // namespace lorafit
