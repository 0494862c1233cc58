// The parts of a tokenizer.json pipeline around the model: normalizer, pre-tokenizer and
// decoder, each parsed from JSON into a flat list of steps (Sequence flattened). A component
// we do not implement is refused at load with its name and JSON path, never skipped.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/split.h"
#include "tokenizer/unicode.h"

namespace lorafit::tok {

// Normalizers: NFC, NFD, NFKC, NFKD, Replace (String or Regex pattern), Prepend, Strip, Sequence.
class Normalizer {
 public:
  static Normalizer parse(const nlohmann::json& j, const std::string& path);  // null -> none
  static Normalizer nfc();
  std::string apply(std::string s) const;
  bool empty() const { return steps_.empty(); }

  struct Step;
  Normalizer();
  ~Normalizer();
  Normalizer(Normalizer&&) noexcept;
  Normalizer& operator=(Normalizer&&) noexcept;

 private:
  void add(const nlohmann::json& j, const std::string& path);
  std::vector<Step> steps_;
};

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// Pre-tokenizers: Split (any regex or literal string, any behaviour, invert), ByteLevel,
// Metaspace, Digits, Sequence. `byte_level()` tells the model to work on raw bytes: the
// ByteLevel step (which must come last) maps each byte to one character, so BPE over those
// characters equals BPE over the bytes, and we skip the mapping.
class PreTokenizer {
 public:
  static PreTokenizer parse(const nlohmann::json& j, const std::string& path);  // null -> none
  static PreTokenizer qwen2();  // Split(Qwen2 regex, Isolated) + ByteLevel(no prefix, no regex)
  // Splits `text` into words. `at_start`: the text starts at offset 0 of the input
  // (Metaspace prepend_scheme "first" needs it).
  void split(std::string_view text, bool at_start, std::vector<std::string>& words) const;
  // The same words, handed to `f` one at a time; for the common Split-first pipelines this
  // works through the text in bounded chunks, so a 100 MB line needs no 100 MB of words.
  void for_each_word(std::string_view text, bool at_start, const std::function<void(std::string_view)>& f) const;
  bool byte_level() const { return byte_level_; }

  struct Step;
  PreTokenizer();
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

 private:
  void add(const nlohmann::json& j, const std::string& path);
  std::vector<Step> steps_;
  bool byte_level_ = false;
};

// Decoders: ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence. They work on
// byte strings; `exact` = true reproduces HF's invalid-UTF-8 handling (ByteLevel: lossy;
// ByteFallback: one U+FFFD per byte of an invalid group); false leaves the bytes raw so a
// streaming decoder can hold back an incomplete character.
class Decoder {
 public:
  static Decoder parse(const nlohmann::json& j, const std::string& path);  // null -> none
  static Decoder byte_level();
  std::string decode(std::vector<std::string> tokens, bool exact) const;
  bool empty() const { return steps_.empty(); }

  struct Step;
  Decoder();
  ~Decoder();
  Decoder(Decoder&&) noexcept;
  Decoder& operator=(Decoder&&) noexcept;

 private:
  void add(const nlohmann::json& j, const std::string& path);
  std::vector<Step> steps_;
};

// GPT-2's byte -> printable character table (bytes_to_unicode) and its inverse.
char32_t byte_to_char(uint8_t b);
int char_to_byte(char32_t c);  // -1 when c is not in the table
// A byte-level token string back to its bytes; false when a character is not in the table.
bool unmap_byte_level(std::string_view token, std::string& out);

}  // namespace lorafit::tok
