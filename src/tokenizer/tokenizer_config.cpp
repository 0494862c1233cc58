// GCC 12 at -O3 reports a false -Wrestrict inside std::string for "literal" + string
// (GCC bug 105329); the code is fine, so the warning is off for this file.
#pragma GCC diagnostic ignored "-Wrestrict"

#include "tokenizer/tokenizer_config.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "formats/json_util.h"
#include "util/error.h"
#include "util/parse.h"

namespace lorafit {
namespace {

using json = nlohmann::json;

std::optional<std::string> token_string(const json& j, const char* field, const std::string& src) {
  if (!j.contains(field) || j[field].is_null()) return std::nullopt;
  const json& v = j[field];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  throw Error("{}: field '{}' must be a string or an object with \"content\", got {}; fix the file",
              src, field, v.dump());
}

bool get_bool(const json& j, const char* field, bool fallback, const std::string& src) {
  if (!j.contains(field) || j[field].is_null()) return fallback;
  if (!j[field].is_boolean()) throw Error("{}: field '{}' must be true or false, got {}", src, field, j[field].dump());
  return j[field].get<bool>();
}

}  // namespace

TokenizerConfig TokenizerConfig::parse(const json& j, const std::string& source) {
  if (!j.is_object()) throw Error("{}: expected a JSON object at the top level", source);
  TokenizerConfig c;
  c.source = source;
  c.bos_token = token_string(j, "bos_token", source);
  c.eos_token = token_string(j, "eos_token", source);
  c.pad_token = token_string(j, "pad_token", source);
  c.unk_token = token_string(j, "unk_token", source);
  c.add_bos_token = get_bool(j, "add_bos_token", false, source);
  c.add_eos_token = get_bool(j, "add_eos_token", false, source);
  c.clean_up_tokenization_spaces = get_bool(j, "clean_up_tokenization_spaces", false, source);
  if (j.contains("model_max_length") && j["model_max_length"].is_number()) {
    // transformers writes "no limit" as 1e30; a float outside int64 must not be converted (UB).
    double m = j["model_max_length"].get<double>();
    c.model_max_length = m >= 9.2e18 || std::isnan(m) ? std::numeric_limits<int64_t>::max()
                         : m <= -9.2e18             ? 0
                                                    : j["model_max_length"].get<int64_t>();
  }
  if (j.contains("additional_special_tokens") && j["additional_special_tokens"].is_array()) {
    for (const auto& t : j["additional_special_tokens"]) {
      if (t.is_string()) c.additional_special_tokens.push_back(t.get<std::string>());
      else if (t.is_object() && t.contains("content")) c.additional_special_tokens.push_back(t["content"].get<std::string>());
    }
  }
  if (j.contains("added_tokens_decoder")) {
    const json& d = j["added_tokens_decoder"];
    if (!d.is_object()) throw Error("{}: 'added_tokens_decoder' must be an object of id -> token", source);
    for (auto it = d.begin(); it != d.end(); ++it) {
      AddedToken t;
      const std::optional<int64_t> id = try_parse_int(it.key());
      if (!id || *id < 0 || *id > INT32_MAX)
        throw Error("{}: added_tokens_decoder key '{}' is not a token id", source, it.key());
      t.id = static_cast<int32_t>(*id);
      const json& v = it.value();
      if (!v.is_object() || !v.contains("content") || !v["content"].is_string())
        throw Error("{}: added_tokens_decoder[{}] needs a string 'content'", source, it.key());
      t.content = v["content"].get<std::string>();
      const std::string where = fmt::format("{} added_tokens_decoder[{}]", source, it.key());
      t.special = get_bool(v, "special", false, where);
      t.lstrip = get_bool(v, "lstrip", false, where);
      t.rstrip = get_bool(v, "rstrip", false, where);
      t.single_word = get_bool(v, "single_word", false, where);
      t.normalized = get_bool(v, "normalized", false, where);
      c.added_tokens_decoder.push_back(std::move(t));
    }
    std::sort(c.added_tokens_decoder.begin(), c.added_tokens_decoder.end(),
              [](const AddedToken& a, const AddedToken& b) { return a.id < b.id; });
  }
  if (j.contains("chat_template") && !j["chat_template"].is_null()) {
    const json& t = j["chat_template"];
    if (t.is_string()) {
      c.chat_templates["default"] = t.get<std::string>();
    } else if (t.is_array()) {
      for (const auto& e : t) {
        if (!e.is_object() || !e.contains("name") || !e.contains("template") || !e["name"].is_string() ||
            !e["template"].is_string())
          throw Error("{}: each entry of 'chat_template' must be {{\"name\": ..., \"template\": ...}}", source);
        c.chat_templates[e["name"].get<std::string>()] = e["template"].get<std::string>();
      }
    } else {
      throw Error("{}: 'chat_template' must be a string or a list of {{name, template}}", source);
    }
  }
  return c;
}

TokenizerConfig TokenizerConfig::load(const fs::path& dir_or_file) {
  fs::path file = fs::is_directory(dir_or_file) ? dir_or_file / "tokenizer_config.json" : dir_or_file;
  std::string text = read_file(file);
  const json j = parse_json(text, file.string());
  TokenizerConfig c;
  try {
    c = parse(j, file.string());
  } catch (const json::exception& e) {  // a field of a type parse() does not check
    throw Error("{}: unexpected JSON structure: {}", file.string(), json_error_text(e));
  }
  c.template_source = file.string();
  // A sibling chat_template.jinja takes priority over the json's template, as in transformers
  // (>= 4.43 saves the template there; lorafit's adapters carry the one a run trained with).
  fs::path jinja = file.parent_path() / "chat_template.jinja";
  if (fs::exists(jinja)) {
    c.chat_templates.clear();
    c.chat_templates["default"] = read_file(jinja);
    c.template_source = jinja.string();
  }
  return c;
}

std::string TokenizerConfig::chat_template_name(bool with_tools) const {
  if (chat_templates.empty())
    throw Error("{}: no chat_template; add one to tokenizer_config.json (or a chat_template.jinja beside it)", source);
  if (with_tools && chat_templates.count("tool_use")) return "tool_use";
  if (chat_templates.count("default")) return "default";
  std::string names;
  for (const auto& [k, v] : chat_templates) names += (names.empty() ? "" : ", ") + k;
  throw Error("{}: chat_template has several templates ({}) and none is named 'default' (transformers would refuse too); rename one to 'default'", source, names);
}

const std::string& TokenizerConfig::chat_template(bool with_tools) const {
  return chat_templates.at(chat_template_name(with_tools));
}

nlohmann::ordered_json TokenizerConfig::special_tokens_map() const {
  nlohmann::ordered_json m = nlohmann::ordered_json::object();
  if (bos_token) m["bos_token"] = *bos_token;
  if (eos_token) m["eos_token"] = *eos_token;
  if (unk_token) m["unk_token"] = *unk_token;
  if (pad_token) m["pad_token"] = *pad_token;
  if (!additional_special_tokens.empty()) m["additional_special_tokens"] = additional_special_tokens;
  return m;
}

}  // namespace lorafit
