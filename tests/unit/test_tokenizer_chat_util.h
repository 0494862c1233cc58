// Shared helpers of the chat-template tests: the fixture file and the template each case uses.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer_config.h"
#include "util/file.h"

namespace chat_test {

using ojson = nlohmann::ordered_json;

inline ojson load_renderings() {
  // ordered_json keeps the key order of the tool schemas, which `tojson` prints.
  return ojson::parse(lorafit::read_file(lorafit::fs::path(LORAFIT_FIXTURES) / "chat" / "chat_renderings.json"));
}

inline lorafit::fs::path template_path(const std::string& family) {
  const char* file = family == "llama3"     ? "llama3-8b-instruct.jinja"
                     : family == "llama3.1" ? "llama3.1-8b-instruct.jinja"
                                            : "mistral-7b-instruct-v0.1.jinja";
  return lorafit::fs::path(LORAFIT_TEST_DATA) / "chat-templates" / file;
}

inline lorafit::ChatTemplate qwen_template(const std::string& dir, bool with_tools = false) {
  return lorafit::ChatTemplate::from_config(
      lorafit::TokenizerConfig::load(lorafit::fs::path(LORAFIT_TEST_DATA) / "qwen-tokenizer" / dir), with_tools);
}

inline lorafit::ChatTemplate template_for(const ojson& doc, const ojson& c) {
  const std::string family = c["template"].get<std::string>();
  if (family == "qwen2.5" || family == "qwen3") return qwen_template(family, c.contains("tools"));
  return lorafit::ChatTemplate(lorafit::read_file(template_path(family)), family, doc["special_tokens"][family]);
}

inline lorafit::ChatOptions options_for(const ojson& c) {
  lorafit::ChatOptions o;
  o.add_generation_prompt = c["add_generation_prompt"].get<bool>();
  if (c.contains("tools")) o.tools = c["tools"];
  if (c.contains("kwargs")) o.extra = c["kwargs"];
  return o;
}

}  // namespace chat_test
