#include "formats/json_util.h"
#include "track/eval_reader.h"

#include <fstream>
#include <map>
#include <sstream>

namespace lorafit::track {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path eval_dir_of(const fs::path& run) {
  std::error_code ec;
  for (const fs::path& d : {run, run / "eval"})
    if (fs::exists(d / "eval_results.json", ec)) return d;
  return {};
}

json read_eval(const fs::path& run) {
  const fs::path dir = eval_dir_of(run);
  if (dir.empty()) return {{"found", false}};
  json out = {{"found", true}, {"warnings", json::array()}};
  std::ifstream rf(dir / "eval_results.json");
  std::stringstream ss;
  ss << rf.rdbuf();
  json res;
  try {  // depth-limited: the dashboard reads whatever the folder holds
    res = parse_json(ss.str(), (dir / "eval_results.json").string());
  } catch (const std::exception&) {
  }
  if (!res.is_object()) {
    out["warnings"].push_back("eval_results.json is not valid JSON");
    return out;
  }
  for (const char* k : {"task", "models", "results", "settings", "truncated", "n", "data"})
    if (res.contains(k)) out[k] = res[k];
  const bool mcq = res.value("task", "") == "mcq";
  std::string first_model;
  if (res.contains("models") && res["models"].is_array() && !res["models"].empty() && res["models"][0].is_string())
    first_model = res["models"][0].get<std::string>();

  std::vector<std::string> order;  // question ids in file order
  std::map<std::string, json> rows;
  std::ifstream pf(dir / "predictions.jsonl");
  std::string line;
  size_t bad = 0;
  while (std::getline(pf, line)) {
    if (line.empty()) continue;
    json p;
    try {
      p = parse_json(line, "predictions.jsonl");
    } catch (const std::exception&) {
    }
    if (!p.is_object() || !p.contains("id")) {
      ++bad;
      continue;
    }
    const std::string id = p["id"].is_string() ? p["id"].get<std::string>() : p["id"].dump();
    auto [it, added] = rows.try_emplace(id, json::object());
    if (added) {
      order.push_back(id);
      it->second = {{"id", id}, {"source", p.value("source", "")}, {"reference", p.value("reference", "")},
                    {"answers", json::object()}};
    }
    json a = {{"prediction", p.value("prediction", "")}};
    for (const char* k : {"answer", "correct", "rouge-l", "bleu-4", "truncated"})
      if (p.contains(k)) a[k] = p[k];
    it->second["answers"][p.value("model", "")] = a;
  }
  if (bad) out["warnings"].push_back(std::to_string(bad) + " lines of predictions.jsonl could not be read");
  json list = json::array();
  for (const auto& id : order) {
    json& r = rows[id];
    const json& ans = r["answers"];
    const char* key = mcq ? "answer" : "prediction";
    const json* base = ans.contains(first_model) ? &ans[first_model] : nullptr;
    bool changed = false;
    if (base)
      for (const auto& [m, a] : ans.items())
        if (m != first_model && a.value(key, json()) != base->value(key, json())) changed = true;
    r["changed"] = changed;
    list.push_back(std::move(r));
  }
  out["rows"] = std::move(list);
  return out;
}

}  // namespace lorafit::track
