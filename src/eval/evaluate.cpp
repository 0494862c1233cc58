#include "eval/evaluate.h"

#include <algorithm>
#include <map>

#include "eval/mcq.h"
#include "formats/json_util.h"
#include "generate/batch_generate.h"
#include "model/model.h"
#include "tokenizer/jieba.h"
#include "util/error.h"
#include "util/file.h"

namespace lorafit::eval {

using nlohmann::ordered_json;

int default_max_new_tokens(Task t) { return t == Task::Mcq ? 64 : 512; }

std::string item_prompt(const Item& item, const Settings& s) {
  if (s.task == Task::Qa) return item.question;
  return mcq_prompt(item.question, item.options, item.multi, s.num_few_shot);
}

void score_row(Task task, Scored& r) {
  if (task == Task::Mcq) {
    r.extracted = extract_answer(r.prediction);
    r.correct = mcq_correct(r.reference, r.extracted);
  } else {
    r.qa = qa_scores(r.prediction, r.reference, tok::Jieba::builtin());
  }
}

ordered_json summarize(Task task, const std::vector<Scored>& rows) {
  ordered_json j;
  j["task"] = task_name(task);
  j["n"] = rows.size();
  if (task == Task::Mcq) {
    std::vector<std::string> order;  // sources in order of first appearance
    std::map<std::string, std::pair<int64_t, int64_t>> acc;  // right, total
    for (const auto& r : rows) {
      auto [it, added] = acc.try_emplace(r.source, 0, 0);
      if (added) order.push_back(r.source);
      it->second.first += r.correct;
      ++it->second.second;
    }
    ordered_json per = ordered_json::object();
    double sum = 0;
    for (const auto& s : order) {
      const double a = 100.0 * static_cast<double>(acc[s].first) / static_cast<double>(acc[s].second);
      per[s] = a;
      sum += a;
    }
    j["accuracy"] = order.empty() ? 0.0 : sum / static_cast<double>(order.size());
    j["per_source"] = per;
  } else {
    QaScores m;
    for (const auto& r : rows) m.rouge1 += r.qa.rouge1, m.rouge2 += r.qa.rouge2, m.rougel += r.qa.rougel, m.bleu4 += r.qa.bleu4;
    const double n = rows.empty() ? 1.0 : static_cast<double>(rows.size());
    j["rouge-1"] = m.rouge1 / n;
    j["rouge-2"] = m.rouge2 / n;
    j["rouge-l"] = m.rougel / n;
    j["bleu-4"] = m.bleu4 / n;
  }
  return j;
}

std::vector<Scored> run(const Generation& g, const std::vector<Item>& items, const Settings& s,
                        const std::function<void(size_t)>& on_done) {
  LF_CHECK(g.model && g.encode && g.decode, "eval::run needs a model, encode and decode");
  const int max_new = s.max_new_tokens > 0 ? s.max_new_tokens : default_max_new_tokens(s.task);
  if (s.batch_size < 1) throw Error("--batch_size is {}; it must be at least 1", s.batch_size);
  const int64_t context = context_length(g.model->config());
  if (context < 2) throw Error("the model's context ({}) has no room for a prompt and an answer", context);
  const int64_t room = std::max<int64_t>(1, context - max_new);  // prompt tokens that fit

  std::vector<Scored> rows(items.size());
  std::vector<std::vector<int32_t>> prompts(items.size());
  int64_t longest = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    rows[i].id = items[i].id;
    rows[i].source = items[i].source;
    rows[i].reference = items[i].reference;
    prompts[i] = g.encode(item_prompt(items[i], s));
    if (static_cast<int64_t>(prompts[i].size()) > room) {
      prompts[i].erase(prompts[i].begin(), prompts[i].end() - room);
      rows[i].truncated = true;
    }
    longest = std::max<int64_t>(longest, static_cast<int64_t>(prompts[i].size()));
  }
  GenerateSettings gs;
  gs.max_new_tokens = max_new;
  gs.eos_ids = g.eos_ids;  // greedy (SamplingParams default)
  // Rows never need more than the longest prompt plus the answer: a smaller cache.
  const int64_t capacity = std::min(context, longest + max_new);
  const int64_t slots = std::min<int64_t>(s.batch_size, static_cast<int64_t>(items.size()));
  BatchGenerator bg(*g.model, std::max<int64_t>(1, slots), capacity, g.lora);
  for (size_t i = 0; i < items.size(); ++i) bg.submit(static_cast<int64_t>(i), std::move(prompts[i]), gs);
  size_t done = 0;
  while (!bg.idle()) {
    for (auto& f : bg.step()) {
      std::vector<int32_t>& ids = f.result.ids;
      if (f.result.stop == StopReason::Eos && !ids.empty()) ids.pop_back();  // the eos token is not text
      Scored& r = rows[static_cast<size_t>(f.id)];
      r.prediction = g.decode(ids);
      score_row(s.task, r);
      if (on_done) on_done(++done);
    }
  }
  return rows;
}

}  // namespace lorafit::eval

namespace lorafit::eval {

std::vector<std::pair<std::string, std::vector<Scored>>> load_predictions(const fs::path& file, Task task) {
  const std::string text = read_file(file);
  std::vector<std::pair<std::string, std::vector<Scored>>> out;
  auto group = [&](const std::string& model) -> std::vector<Scored>& {
    for (auto& [m, v] : out)
      if (m == model) return v;
    return out.emplace_back(model, std::vector<Scored>{}).second;
  };
  size_t lineno = 0;
  for (size_t a = 0; a < text.size();) {
    size_t b = text.find('\n', a);
    if (b == std::string::npos) b = text.size();
    const std::string_view line(text.data() + a, b - a);
    a = b + 1;
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = fmt::format("{} line {}", file.string(), lineno);
    const ordered_json o = parse_json_strict(line, where);
    if (!o.is_object()) throw Error("{}: expected an object {{\"id\", \"prediction\", \"reference\"}}", where);
    auto field = [&](const char* k, bool required) -> std::string {
      const auto it = o.find(k);
      if (it == o.end() || it->is_null()) {
        if (required) throw Error("{}: missing field '{}'; rows are {{\"id\", \"prediction\", \"reference\", \"source\"?}}", where, k);
        return {};
      }
      if (it->is_string()) return it->get<std::string>();
      if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
      throw Error("{}: field '{}' is {}, expected a string", where, k, json_type_name(*it));
    };
    Scored r;
    r.id = field("id", true);
    r.prediction = field("prediction", true);
    r.reference = field("reference", true);
    r.source = field("source", false);
    if (r.source.empty()) r.source = "all";
    if (task == Task::Mcq) check_mcq_reference(r.reference, where, "reference");
    const auto tr = o.find("truncated");
    r.truncated = tr != o.end() && tr->is_boolean() && tr->get<bool>();
    score_row(task, r);
    group(field("model", false)).push_back(std::move(r));
  }
  if (out.empty()) throw Error("{}: no rows; expected JSONL {{\"id\", \"prediction\", \"reference\"}}", file.string());
  return out;
}

ordered_json prediction_json(Task task, const std::string& model, const Scored& r) {
  ordered_json j;
  if (!model.empty()) j["model"] = model;
  j["id"] = r.id;
  j["source"] = r.source;
  j["prediction"] = r.prediction;
  j["reference"] = r.reference;
  if (task == Task::Mcq) {
    j["extracted"] = r.extracted;
    j["answer"] = answer_letters(r.extracted);
    j["correct"] = r.correct;
  } else {
    j["rouge-1"] = r.qa.rouge1;
    j["rouge-2"] = r.qa.rouge2;
    j["rouge-l"] = r.qa.rougel;
    j["bleu-4"] = r.qa.bleu4;
  }
  if (r.truncated) j["truncated"] = true;
  return j;
}

}  // namespace lorafit::eval
