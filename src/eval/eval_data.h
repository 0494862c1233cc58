// Evaluation sets: what `lorafit eval --data` and `train --eval_data` read.
//   MCQ: the official DISC-Law-Eval CSVs (input,output,A,B,C,D[,source,multichoice]; a folder
//        of them, e.g. tests/data/disc-law/eval/objective, one source per file), or JSONL rows
//        {"input", "output", "id"?, "source"?, "A".."D"?, "multichoice"?}.
//   QA:  the official qa_short_answer.json (a JSON list of {"input", "output", "id"?}) or JSONL
//        rows of the same fields.
// Bad rows fail with one line naming the file, the line and the field.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace lorafit::eval {

namespace fs = std::filesystem;

enum class Task { Mcq, Qa };
Task parse_task(std::string_view s, std::string_view what);  // "mcq" | "qa"; Error naming `what`
const char* task_name(Task t);

struct Item {
  std::string id;
  std::string source;     // the per-source group: the CSV file's stem, or the row's "source"
  std::string question;   // mcq: the question; qa: the input
  std::string options;    // mcq: "A. ..\nB. ..\nC. ..\nD. .." or "" when in the question already
  bool multi = false;     // mcq: several correct options (the 多项 prompt)
  std::string reference;  // mcq: the letters; qa: the reference answer
};

std::vector<Item> load_items(const fs::path& path, Task task);

// Checks an MCQ reference: one or more of the letters A-D, nothing else. Throws Error
// "<where>: field 'output' is '<x>'; an MCQ reference is letters A-D (e.g. \"BD\")".
void check_mcq_reference(std::string_view ref, std::string_view where, std::string_view field);

}  // namespace lorafit::eval
