#include "tokenizer/split.h"

#include <array>
#include <cstdint>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/unicode.h"
#include "util/error.h"

namespace lorafit::tok {

struct Regex::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Impl() {
    if (code) pcre2_code_free(code);
  }
};

Regex::Regex(std::string_view pattern, std::string_view what) : impl_(std::make_unique<Impl>()) {
  int err = 0;
  PCRE2_SIZE err_off = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error("{}: cannot compile regex {:?} at offset {}: {}; fix the pattern", what,
                std::string(pattern), err_off, reinterpret_cast<const char*>(msg));
  }
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
}
Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

void Regex::find_all(std::string_view text, std::vector<Span>& out) const {
  find_some(text, 0, SIZE_MAX, out);
}

size_t Regex::find_some(std::string_view text, size_t from, size_t max, std::vector<Span>& out) const {
  // One match-data block per thread: encode may run on many threads at once.
  thread_local std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create(4, nullptr), &pcre2_match_data_free);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = from;
  for (size_t found = 0; pos <= text.size() && found < max; ++found) {
    const int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md.get(), nullptr)
                              : pcre2_match(impl_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) return text.size() + 1;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw Error("regex match failed: {}", reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    out.emplace_back(ov[0], ov[1]);
    if (ov[1] > ov[0]) {
      pos = ov[1];
    } else {  // empty match: step over one character
      if (ov[1] >= text.size()) return text.size() + 1;
      size_t i = ov[1];
      next_cp(text, i);
      pos = i;
    }
  }
  return pos;
}

namespace {
constexpr std::string_view kQwenPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kGpt4Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// One decoded character: code point, byte length, class.
struct Ch {
  char32_t cp;
  uint32_t len;
  CharClass cls;
};
inline Ch char_at(std::string_view t, size_t pos) {
  const auto b = static_cast<uint8_t>(t[pos]);
  if (b < 0x80) {  // ASCII: a small table instead of the general lookup
    static const auto ascii = [] {
      std::array<CharClass, 128> a{};
      for (char32_t c = 0; c < 128; ++c) a[c] = char_class(c);
      return a;
    }();
    return {b, 1, ascii[b]};
  }
  size_t i = pos;
  const char32_t cp = next_cp(t, i);
  return {cp, static_cast<uint32_t>(i - pos), char_class(cp)};
}

inline bool is_nl(char32_t c) { return c == '\r' || c == '\n'; }
inline char32_t fold(char32_t c) {  // the ASCII case folding (?i:...) needs, plus long s
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c == 0x17F) return 's';  // U+017F LATIN SMALL LETTER LONG S folds to s
  return c;
}
}  // namespace

bool is_fast_split_pattern(std::string_view pattern, int& max_digits) {
  if (pattern == kQwenPattern) {
    max_digits = 1;
    return true;
  }
  if (pattern == kGpt4Pattern) {
    max_digits = 3;
    return true;
  }
  return false;
}

// Each branch below is one alternative of the regex, tried in order at byte position i;
// where the regex would backtrack, the branch says what the backtracking ends in. Reads
// forward only (at most three characters of lookahead), so memory stays O(1) for any text.
void fast_split(std::string_view text, int max_digits, std::vector<Span>& out) {
  fast_split(text, 0, max_digits, out, SIZE_MAX);
}

size_t fast_split(std::string_view text, size_t from, int max_digits, std::vector<Span>& out, size_t max) {
  const size_t n = text.size();
  size_t i = from;
  for (size_t found = 0; i < n && found < max; ++found) {
    const Ch c = char_at(text, i);
    const size_t i1 = i + c.len;  // position of the next character
    size_t end = 0;               // end of the match at i (0: not found yet)
    // 1. (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if (c.cp == '\'' && i1 < n) {
      const Ch a = char_at(text, i1);
      const char32_t fa = fold(a.cp);
      const size_t i2 = i1 + a.len;
      const char32_t fb = i2 < n ? fold(char_at(text, i2).cp) : 0;
      if (fa == 's' || fa == 't' || fa == 'm' || fa == 'd') end = i2;
      else if ((fa == 'r' && fb == 'e') || (fa == 'v' && fb == 'e') || (fa == 'l' && fb == 'l')) end = i2 + 1;
    }
    // 2. [^\r\n\p{L}\p{N}]?\p{L}+
    if (!end) {
      size_t j = i;
      if (c.cls == kLetter) {
        j = i;
      } else if (c.cls != kNumber && !is_nl(c.cp) && i1 < n && char_at(text, i1).cls == kLetter) {
        j = i1;
      } else {
        j = n + 1;  // no match
      }
      if (j <= n) {
        while (j < n) {
          const Ch d = char_at(text, j);
          if (d.cls != kLetter) break;
          j += d.len;
        }
        end = j;
      }
    }
    // 3. \p{N} (or \p{N}{1,3})
    if (!end && c.cls == kNumber) {
      size_t j = i1;
      for (int k = 1; k < max_digits && j < n; ++k) {
        const Ch d = char_at(text, j);
        if (d.cls != kNumber) break;
        j += d.len;
      }
      end = j;
    }
    // 4. ' '?[^\s\p{L}\p{N}]+[\r\n]*
    if (!end) {
      size_t j = n + 1;
      if (c.cls == kOther) j = i;
      else if (c.cp == ' ' && i1 < n && char_at(text, i1).cls == kOther) j = i1;
      if (j <= n) {
        while (j < n) {
          const Ch d = char_at(text, j);
          if (d.cls != kOther) break;
          j += d.len;
        }
        while (j < n && (text[j] == '\r' || text[j] == '\n')) ++j;
        end = j;
      }
    }
    if (!end) {
      // Only whitespace is left (c.cls == kSpace). Scan the run once: r = its end,
      // last_nl_end = just after its last \r or \n, last_start = start of its last character.
      size_t r = i, last_nl_end = 0, last_start = i;
      while (r < n) {
        const Ch d = char_at(text, r);
        if (d.cls != kSpace) break;
        last_start = r;
        r += d.len;
        if (is_nl(d.cp)) last_nl_end = r;
      }
      if (last_nl_end) end = last_nl_end;       // 5. \s*[\r\n]+ : \s* backs off to the last newline
      else if (r == n) end = r;                 // 6. \s+(?!\S) at the end of the text
      else if (last_start > i) end = last_start;  // 6. leave the last space to what follows
      else end = r;                             // 7. \s+
    }
    out.emplace_back(i, end);
    i = end;
  }
  return i;
}

}  // namespace lorafit::tok
