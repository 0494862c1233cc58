// Tokenizer loaded from a Hugging Face tokenizer.json (byte-level BPE as in Qwen2/Llama 3,
// or SentencePiece-style BPE with byte fallback as in Llama 2/Mistral).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/file.h"

namespace lorafit {

class Tokenizer {
 public:
  // A folder with tokenizer.json (or vocab.json + merges.txt), or the tokenizer.json itself.
  static Tokenizer load(const fs::path& dir_or_file);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // parse_special: match added tokens written in the text (as HF does by default).
  std::vector<int32_t> encode(std::string_view text, bool parse_special = true) const;
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;
  size_t vocab_size() const;  // including added tokens

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lorafit
