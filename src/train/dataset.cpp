#include "train/dataset.h"

#include <map>

#include "formats/json_util.h"
#include "util/error.h"
#include "util/parse.h"

namespace lorafit {

using ojson = nlohmann::ordered_json;

DatasetFormat parse_dataset_format(const std::string& name) {
  if (name == "auto" || name.empty()) return DatasetFormat::Auto;
  if (name == "pair" || name == "disc") return DatasetFormat::Pair;
  if (name == "alpaca") return DatasetFormat::Alpaca;
  if (name == "chat" || name == "messages" || name == "openai") return DatasetFormat::Chat;
  if (name == "sharegpt") return DatasetFormat::ShareGpt;
  if (name == "text") return DatasetFormat::Text;
  throw Error("dataset_format: \"{}\" is not one of auto, pair, alpaca, chat, sharegpt, text", name);
}

const char* dataset_format_name(DatasetFormat f) {
  switch (f) {
    case DatasetFormat::Auto:
      return "auto";
    case DatasetFormat::Pair:
      return "pair";
    case DatasetFormat::Alpaca:
      return "alpaca";
    case DatasetFormat::Chat:
      return "chat";
    case DatasetFormat::ShareGpt:
      return "sharegpt";
    case DatasetFormat::Text:
      return "text";
  }
  return "?";
}

namespace {

// Our field name → the file's field name.
std::map<std::string, std::string> parse_columns(const std::string& spec) {
  std::map<std::string, std::string> m;
  size_t start = 0;
  while (start < spec.size()) {
    size_t end = spec.find(',', start);
    if (end == std::string::npos) end = spec.size();
    const std::string item = spec.substr(start, end - start);
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      throw Error("columns: \"{}\" is not ours=theirs (e.g. columns: input=question,output=answer)", item);
    m[item.substr(0, eq)] = item.substr(eq + 1);
    start = end + 1;
  }
  return m;
}

struct Converter {
  const DatasetOptions& opts;
  std::map<std::string, std::string> cols;
  std::string col(const std::string& ours) const {
    auto it = cols.find(ours);
    return it == cols.end() ? ours : it->second;
  }
  bool has(const ojson& j, const std::string& ours) const { return j.contains(col(ours)); }

  std::string str(const ojson& j, const std::string& ours, bool required) const {
    const std::string name = col(ours);
    if (!j.contains(name) || j[name].is_null()) {
      if (required) throw Error("has no \"{}\" field", name);
      return "";
    }
    if (!j[name].is_string()) throw Error("field \"{}\" must be a string", name);
    return j[name].get<std::string>();
  }

  DatasetFormat detect(const ojson& j) const {
    if (has(j, "messages")) return DatasetFormat::Chat;
    if (has(j, "conversations")) return DatasetFormat::ShareGpt;
    if (has(j, "instruction")) return DatasetFormat::Alpaca;
    if (has(j, "input") && has(j, "output")) return DatasetFormat::Pair;
    if (has(j, "text")) return DatasetFormat::Text;
    throw Error(
        "matches no dataset form: expected {{input, output}}, {{instruction, input, output}}, "
        "{{messages}}, {{conversations}} or {{text}} (set dataset_format, or map field names with columns)");
  }

  std::string reference_text(const ojson& j) const {
    const std::string name = col("reference");
    if (!opts.include_reference || !j.contains(name) || j[name].is_null()) return "";
    std::string out;
    if (j[name].is_array()) {
      for (const auto& r : j[name])
        out += (out.empty() ? "" : "\n") + (r.is_string() ? r.get<std::string>() : r.dump());
    } else {
      out = j[name].is_string() ? j[name].get<std::string>() : j[name].dump();
    }
    return out;
  }

  Record convert(const ojson& j, DatasetFormat f) const {
    if (!j.is_object()) throw Error("is not a JSON object");
    Record r;
    ojson msgs = ojson::array();
    auto push = [&](const std::string& role, const std::string& content) {
      msgs.push_back(ojson{{"role", role}, {"content", content}});
    };
    switch (f) {
      case DatasetFormat::Text:
        r.text = str(j, "text", true);
        if (r.text.empty()) throw Error("field \"{}\" is empty", col("text"));
        return r;
      case DatasetFormat::Pair: {
        std::string in = str(j, "input", true);
        const std::string ref = reference_text(j);
        if (!ref.empty()) in += "\n参考法条：\n" + ref;  // statutes after the question
        push("user", in);
        push("assistant", str(j, "output", true));
        break;
      }
      case DatasetFormat::Alpaca: {
        const std::string ins = str(j, "instruction", true), in = str(j, "input", false);
        const std::string sys = str(j, "system", false);
        if (!sys.empty()) push("system", sys);
        push("user", in.empty() ? ins : ins + "\n" + in);
        push("assistant", str(j, "output", true));
        break;
      }
      case DatasetFormat::Chat:
      case DatasetFormat::ShareGpt: {
        const bool share = f == DatasetFormat::ShareGpt;
        const std::string list = col(share ? "conversations" : "messages");
        if (!j.contains(list) || !j[list].is_array() || j[list].empty())
          throw Error("field \"{}\" must be a non-empty list of turns", list);
        const std::string rk = col(share ? "from" : "role"), ck = col(share ? "value" : "content");
        for (size_t i = 0; i < j[list].size(); ++i) {
          const ojson& t = j[list][i];
          if (!t.is_object() || !t.contains(rk) || !t[rk].is_string() || !t.contains(ck) || !t[ck].is_string())
            throw Error("turn {} of \"{}\" needs string fields \"{}\" and \"{}\"", i, list, rk, ck);
          std::string role = t[rk].get<std::string>();
          if (share) {
            if (role == "human" || role == "user")
              role = "user";
            else if (role == "gpt" || role == "assistant")
              role = "assistant";
            else if (role != "system")
              throw Error("turn {}: ShareGPT role \"{}\" is not human, gpt or system", i, role);
          } else if (role != "user" && role != "assistant" && role != "system" && role != "tool") {
            throw Error("turn {}: role \"{}\" is not system, user, assistant or tool", i, role);
          }
          push(role, t[ck].get<std::string>());
        }
        break;
      }
      case DatasetFormat::Auto:
        LF_CHECK(false, "format not resolved");
    }
    if (!opts.system.empty()) {
      if (msgs[0]["role"] == "system")
        msgs[0]["content"] = opts.system;
      else
        msgs.insert(msgs.begin(), ojson{{"role", "system"}, {"content", opts.system}});
    }
    bool any_assistant = false;
    for (const auto& m : msgs)
      if (m["role"] == "assistant") {
        any_assistant = true;
        if (m["content"].get<std::string>().empty()) throw Error("has an empty output (assistant reply)");
      }
    if (!any_assistant) throw Error("has no assistant turn to learn from");
    r.messages = std::move(msgs);
    return r;
  }
};

}  // namespace

Dataset load_dataset(const fs::path& path, const DatasetOptions& opts) {
  if (!fs::exists(path)) throw Error("{}: no such dataset file; pass --data FILE.jsonl", path.string());
  const std::string text = read_file(path);
  Converter conv{opts, parse_columns(opts.columns)};
  Dataset ds;
  ds.format = opts.format;

  auto take = [&](const std::string& src_line, int64_t line, const ojson* parsed) {
    try {
      ojson j;
      if (parsed) {
        j = *parsed;
      } else {
        try {
          j = parse_json_ordered(src_line, "", static_cast<size_t>(line));
        } catch (const Error& e) {
          throw Error("is {}", e.what());
        }
      }
      if (ds.format == DatasetFormat::Auto) {
        if (!j.is_object()) throw Error("is not a JSON object");
        ds.format = conv.detect(j);
      }
      ds.records.push_back(conv.convert(j, ds.format));
      ds.records.back().line = line;
    } catch (const Error& e) {
      if (!opts.skip_bad)
        throw Error("{}:{}: record {}; fix it or set on_bad_record: skip", path.string(), line, e.what());
      if (std::string(e.what()).find("empty output") != std::string::npos) ++ds.empty_outputs;
      if (ds.skipped_bad++ == 0) ds.first_error = fmt::format("{}:{}: {}", path.string(), line, e.what());
    }
  };

  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {  // a JSON array
    ojson arr;
    try {
      arr = parse_json_ordered(text, path.string());
    } catch (const Error& e) {
      throw Error("{}; expected an array of records or one record per line", e.what());
    }
    for (size_t i = 0; i < arr.size(); ++i) take("", static_cast<int64_t>(i + 1), &arr[i]);
  } else {
    size_t start = 0;
    int64_t line = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      ++line;
      std::string l = text.substr(start, end - start);
      if (!l.empty() && l.back() == '\r') l.pop_back();
      if (l.find_first_not_of(" \t") != std::string::npos) take(l, line, nullptr);
      start = end + 1;
    }
  }
  if (ds.records.empty())
    throw Error("{}: no usable records{}; a dataset needs at least one", path.string(),
                ds.skipped_bad ? fmt::format(" ({} skipped; first: {})", ds.skipped_bad, ds.first_error) : "");
  return ds;
}

IndexRange parse_range(const std::string& spec, int64_t n, const std::string& key) {
  const size_t colon = spec.find(':');
  if (colon == std::string::npos)
    throw Error("{}: \"{}\" is not a range a:b (e.g. 5:5000 = records 5..4999)", key, spec);
  auto bound = [&](std::string s, int64_t dflt) -> int64_t {
    if (s.empty()) return dflt;
    const std::optional<int64_t> parsed = try_parse_int(s);
    if (!parsed) throw Error("{}: \"{}\" is not a range a:b of integers", key, spec);
    int64_t v = *parsed;
    if (v < 0) v += n;
    return std::clamp<int64_t>(v, 0, n);
  };
  IndexRange r{bound(spec.substr(0, colon), 0), bound(spec.substr(colon + 1), n)};
  if (r.end < r.begin) r.end = r.begin;
  return r;
}

nlohmann::ordered_json prompt_messages(const Record& r) {
  ojson m = r.messages;
  while (!m.empty() && m.back()["role"] == "assistant") m.erase(m.size() - 1);
  return m;
}

std::string reference_answer(const Record& r) {
  if (r.messages.empty() || r.messages.back()["role"] != "assistant") return "";
  return r.messages.back()["content"].get<std::string>();
}

}  // namespace lorafit
