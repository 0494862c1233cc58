// tokenizer_config.json of a Hugging Face model folder: special tokens, BOS/EOS flags, and
// the Jinja chat template(s).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"
#include "util/file.h"

namespace lorafit {

struct TokenizerConfig {
  // Special tokens may be written as strings or as AddedToken objects {"content": ...};
  // absent or null gives nullopt.
  std::optional<std::string> bos_token, eos_token, pad_token, unk_token;
  std::vector<std::string> additional_special_tokens;
  bool add_bos_token = false;
  bool add_eos_token = false;
  bool clean_up_tokenization_spaces = false;
  std::optional<int64_t> model_max_length;  // clamped to INT64_MAX (configs write 1e30)
  std::vector<AddedToken> added_tokens_decoder;  // sorted by id
  // name -> template. A plain string is stored as "default"; a list of {name, template}
  // keeps its names. A sibling chat_template.jinja (newer transformers) replaces them as "default".
  std::map<std::string, std::string> chat_templates;
  std::string source;           // the file it came from, for error messages
  std::string template_source;  // the file chat_templates came from (json or chat_template.jinja)

  // A model folder containing tokenizer_config.json, or the file itself.
  static TokenizerConfig load(const fs::path& dir_or_file);
  static TokenizerConfig parse(const nlohmann::json& j, const std::string& source);

  // The template transformers 4.46 picks: "tool_use" when tools are given and it exists,
  // else "default". Throws Error if there is none.
  const std::string& chat_template(bool with_tools) const;
  std::string chat_template_name(bool with_tools) const;

  // What apply_chat_template passes to the template as **special_tokens_map: the set
  // special tokens as strings (bos_token, eos_token, unk_token, pad_token,
  // additional_special_tokens).
  nlohmann::ordered_json special_tokens_map() const;
};

}  // namespace lorafit
