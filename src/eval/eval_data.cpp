#include "eval/eval_data.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "eval/csv.h"
#include "formats/json_util.h"
#include "util/error.h"
#include "util/file.h"

namespace lorafit::eval {

namespace {

using nlohmann::ordered_json;

std::string options_text(const std::string& a, const std::string& b, const std::string& c, const std::string& d) {
  return fmt::format("A. {}\nB. {}\nC. {}\nD. {}", a, b, c, d);  // the official "{label}. {option}" lines
}

bool truthy(std::string_view s) { return s == "True" || s == "true" || s == "1"; }

void load_csv(const fs::path& p, Task task, std::vector<Item>& out) {
  if (task != Task::Mcq)
    throw Error("{}: a CSV file is an MCQ set; for --task qa give the JSON list or JSONL of {{\"input\", \"output\"}}",
                p.string());
  const CsvTable t = parse_csv(read_file(p), p.string());
  const size_t qi = t.column("input"), oi = t.column("output"), ai = t.column("A"), bi = t.column("B"),
               ci = t.column("C"), di = t.column("D");
  const std::string stem = p.stem().string();
  const bool has_multi = t.has("multichoice");
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& c = t.rows[r].cells;
    const std::string where = fmt::format("{} line {}", p.string(), t.rows[r].line);
    check_mcq_reference(c[oi], where, "output");
    if (c[qi].empty()) throw Error("{}: field 'input' is empty; every row needs its question", where);
    Item it;
    it.id = fmt::format("{}_{}", stem, r);
    it.source = stem;
    it.question = c[qi];
    it.options = options_text(c[ai], c[bi], c[ci], c[di]);
    it.multi = has_multi ? truthy(c[t.column("multichoice")]) : stem.find("mult") != std::string::npos;
    it.reference = c[oi];
    out.push_back(std::move(it));
  }
}

std::string str_field(const ordered_json& o, const char* key, const std::string& where, bool required) {
  const auto it = o.find(key);
  if (it == o.end() || it->is_null()) {
    if (required) throw Error("{}: missing field '{}'; each row needs \"input\" and \"output\"", where, key);
    return {};
  }
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  throw Error("{}: field '{}' is {}, expected a string", where, key, json_type_name(*it));
}

void add_json_row(const ordered_json& o, Task task, const std::string& where, const std::string& stem, size_t index,
                  std::vector<Item>& out) {
  if (!o.is_object()) throw Error("{}: a row is {}, expected an object {{\"input\", \"output\"}}", where, json_type_name(o));
  Item it;
  it.question = str_field(o, "input", where, true);
  it.reference = str_field(o, "output", where, true);
  it.id = str_field(o, "id", where, false);
  if (it.id.empty()) it.id = fmt::format("{}_{}", stem, index);
  it.source = str_field(o, "source", where, false);
  if (it.source.empty()) it.source = stem;
  if (task == Task::Mcq) {
    check_mcq_reference(it.reference, where, "output");
    if (o.contains("A")) {
      it.options = options_text(str_field(o, "A", where, true), str_field(o, "B", where, true),
                                str_field(o, "C", where, true), str_field(o, "D", where, true));
    }
    if (const auto m = o.find("multichoice"); m != o.end()) {
      it.multi = m->is_boolean() ? m->get<bool>() : truthy(m->is_string() ? m->get<std::string>() : "");
    } else {
      it.multi = it.id.find("mcq_mult") != std::string::npos;  // the bundled derived JSONL's ids
    }
  }
  out.push_back(std::move(it));
}

void load_json_file(const fs::path& p, Task task, std::vector<Item>& out) {
  const std::string text = read_file(p);
  const std::string stem = p.stem().string();
  const bool jsonl = p.extension() == ".jsonl";
  if (!jsonl) {
    const ordered_json doc = parse_json_strict(text, p.string());
    if (!doc.is_array()) throw Error("{}: expected a JSON list of {{\"input\", \"output\"}} rows", p.string());
    for (size_t i = 0; i < doc.size(); ++i) add_json_row(doc[i], task, fmt::format("{} row {}", p.string(), i + 1), stem, i, out);
    return;
  }
  size_t lineno = 0, index = 0;
  for (size_t a = 0; a < text.size();) {
    size_t b = text.find('\n', a);
    if (b == std::string::npos) b = text.size();
    const std::string_view line(text.data() + a, b - a);
    a = b + 1;
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = fmt::format("{} line {}", p.string(), lineno);
    add_json_row(parse_json_strict(line, where), task, where, stem, index++, out);
  }
}

}  // namespace

Task parse_task(std::string_view s, std::string_view what) {
  if (s == "mcq") return Task::Mcq;
  if (s == "qa") return Task::Qa;
  throw Error("{}: unknown task '{}'; use mcq (multiple choice, DISC-Law-Eval objective) or qa (ROUGE/BLEU)", what, s);
}

const char* task_name(Task t) { return t == Task::Mcq ? "mcq" : "qa"; }

void check_mcq_reference(std::string_view ref, std::string_view where, std::string_view field) {
  const bool ok = !ref.empty() && std::all_of(ref.begin(), ref.end(), [](char c) { return c >= 'A' && c <= 'D'; });
  if (!ok)
    throw Error("{}: field '{}' is '{}'; an MCQ reference is letters A-D (e.g. \"BD\"); use --task qa for free text",
                where, field, ref.substr(0, 40));
}

std::vector<Item> load_items(const fs::path& path, Task task) {
  std::vector<Item> out;
  if (fs::is_directory(path)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(path)) {
      const auto ext = e.path().extension();
      if (e.is_regular_file() && (ext == ".csv" || ext == ".json" || ext == ".jsonl")) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) throw Error("{}: no .csv, .json or .jsonl files in this folder", path.string());
    for (const auto& f : files) {
      if (f.extension() == ".csv") load_csv(f, task, out);
      else load_json_file(f, task, out);
    }
  } else if (!fs::exists(path)) {
    throw Error("{}: no such file or folder (--data)", path.string());
  } else if (path.extension() == ".csv") {
    load_csv(path, task, out);
  } else {
    load_json_file(path, task, out);
  }
  if (out.empty()) throw Error("{}: no rows", path.string());
  return out;
}

}  // namespace lorafit::eval
