// Splitting text into pieces: a PCRE2 regex engine for any Split pattern from tokenizer.json,
// and a hand-written splitter for the Qwen2 / GPT-4 family pattern that gives the same pieces.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lorafit::tok {

using Span = std::pair<size_t, size_t>;  // [begin, end) byte offsets

// Finds non-overlapping matches left to right like Oniguruma's find_iter (which HF uses):
// after an empty match the search resumes one character later. Compiled with UTF + UCP so
// \s, \d, \w and \p{..} are Unicode-aware; JIT when available. Text must be valid UTF-8.
class Regex {
 public:
  // `what` names the pattern's place for error messages (e.g. "pre_tokenizer.pattern.Regex").
  Regex(std::string_view pattern, std::string_view what);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;
  void find_all(std::string_view text, std::vector<Span>& out) const;
  // Resumable form: appends at most `max` matches found from byte `from` on; returns where
  // to resume (text.size() + 1 when the text is exhausted).
  size_t find_some(std::string_view text, size_t from, size_t max, std::vector<Span>& out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The hand-written splitter. It matches this regex (Qwen2/2.5/3 with max_digits 1; GPT-4 /
// Llama 3 cl100k with max_digits 3, where the third alternative is \p{N}{1,3}):
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// Returns true and fills `max_digits` if `pattern` is one of the two.
bool is_fast_split_pattern(std::string_view pattern, int& max_digits);
void fast_split(std::string_view text, int max_digits, std::vector<Span>& out);
// Resumable form (the splitter keeps no state between pieces): appends at most `max` pieces
// from byte `from` on and returns where the next piece starts (text.size() when done).
size_t fast_split(std::string_view text, size_t from, int max_digits, std::vector<Span>& out, size_t max);

}  // namespace lorafit::tok
