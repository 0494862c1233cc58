#include "tokenizer/unicode.h"

#include <utf8proc.h>

#include <array>
#include <cstdlib>
#include <memory>

#include "util/error.h"

namespace lorafit::tok {

namespace {

// For a lead byte: the sequence length and the allowed range of the second byte
// (Unicode Table 3-7, "well-formed UTF-8 byte sequences"). Length 0: not a lead byte.
struct Lead {
  uint8_t len, lo, hi;
};
constexpr Lead lead_info(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How many bytes from s[i] match a well-formed sequence's prefix (the "maximal subpart"
// when the sequence is cut short), and the full length that sequence needs.
std::pair<size_t, size_t> prefix_match(std::string_view s, size_t i) {
  const Lead l = lead_info(static_cast<uint8_t>(s[i]));
  if (l.len == 0) return {0, 1};
  if (l.len == 1) return {1, 1};
  size_t n = 1;
  for (; n < l.len && i + n < s.size(); ++n) {
    const uint8_t c = static_cast<uint8_t>(s[i + n]);
    const uint8_t lo = n == 1 ? l.lo : 0x80, hi = n == 1 ? l.hi : 0xBF;
    if (c < lo || c > hi) break;
  }
  return {n, l.len};
}

}  // namespace

size_t valid_seq_len(std::string_view s, size_t i) {
  const auto [got, need] = prefix_match(s, i);
  return got == need ? need : 0;
}

char32_t next_cp(std::string_view s, size_t& i) {
  const uint8_t b = static_cast<uint8_t>(s[i]);
  if (b < 0x80) {
    ++i;
    return b;
  }
  const size_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
  char32_t cp = b & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
  i += len;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = valid_seq_len(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      out.push_back(s[i++]);
      continue;
    }
    const auto [got, need] = prefix_match(s, i);
    if (got == need) {
      out.append(s.substr(i, need));
      i += need;
    } else {  // one U+FFFD for the maximal subpart (at least the lead byte)
      out.append(kReplacementUtf8);
      i += got == 0 ? 1 : got;
    }
  }
  return out;
}

size_t incomplete_tail(std::string_view s) {
  for (size_t k = 1; k <= 3 && k <= s.size(); ++k) {
    const size_t p = s.size() - k;
    const uint8_t b = static_cast<uint8_t>(s[p]);
    if (b < 0x80) return 0;
    if (b >= 0xC0) {  // a lead byte: incomplete if every byte after it fits and more are needed
      const auto [got, need] = prefix_match(s, p);
      return (got == k && need > k) ? k : 0;
    }
  }
  return 0;
}

namespace {
// A character NFC leaves alone whatever surrounds it: no canonical decomposition, combining
// class 0, not a combining mark, and not a Hangul jamo. Every second character of a
// canonical composition is a mark (Mn/Mc) or a jamo, so text made only of inert characters
// is already NFC and needs no utf8proc pass (most text: ASCII, CJK, punctuation, emoji).
bool inert_slow(char32_t cp) {
  const utf8proc_property_t* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp));
  if (p->combining_class != 0) return false;
  if (p->category == UTF8PROC_CATEGORY_MN || p->category == UTF8PROC_CATEGORY_MC ||
      p->category == UTF8PROC_CATEGORY_ME || p->category == UTF8PROC_CATEGORY_CN)
    return false;
  if (cp >= 0x1100 && cp <= 0x11FF) return false;                      // Hangul jamo
  if ((cp >= 0xA960 && cp <= 0xA97F) || (cp >= 0xD7B0 && cp <= 0xD7FF)) return false;  // jamo extended
  if (p->decomp_seqindex != UINT16_MAX && p->decomp_type == 0) return false;  // canonical decomposition
  return true;
}
}  // namespace

bool nfc_inert(char32_t cp) {
  static const auto table = [] {
    auto t = std::make_unique<std::array<bool, 0x10000>>();
    for (char32_t c = 0; c < 0x10000; ++c) (*t)[c] = inert_slow(c);
    return t;
  }();
  return cp < 0x10000 ? (*table)[cp] : inert_slow(cp);
}

std::string normalize(std::string_view s, NormForm form) {
  int opts = UTF8PROC_STABLE;
  switch (form) {
    case NormForm::NFC: opts |= UTF8PROC_COMPOSE; break;
    case NormForm::NFD: opts |= UTF8PROC_DECOMPOSE; break;
    case NormForm::NFKC: opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case NormForm::NFKD: opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
  }
  if (form == NormForm::NFC) {
    bool stable = true;
    for (size_t i = 0; i < s.size() && stable;) {
      if (static_cast<uint8_t>(s[i]) < 0x80) {
        ++i;
        continue;
      }
      stable = nfc_inert(next_cp(s, i));
    }
    if (stable) return std::string(s);
  }
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                          static_cast<utf8proc_ssize_t>(s.size()), &out,
                                          static_cast<utf8proc_option_t>(opts));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> hold(out, &std::free);
  LF_CHECK(n >= 0, "utf8proc_map failed on sanitized text: {}", utf8proc_errmsg(n));
  return std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
}

bool is_whitespace(char32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

namespace {
CharClass class_slow(char32_t cp) {
  if (is_whitespace(cp)) return kSpace;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
      return kLetter;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
      return kNumber;
    default:
      return kOther;
  }
}

// The Basic Multilingual Plane in a table (64 KiB), built once; the rest asks utf8proc.
const std::array<uint8_t, 0x10000>& bmp_table() {
  static const auto table = [] {
    auto t = std::make_unique<std::array<uint8_t, 0x10000>>();
    for (char32_t cp = 0; cp < 0x10000; ++cp) (*t)[cp] = class_slow(cp);
    return t;
  }();
  return *table;
}
}  // namespace

CharClass char_class(char32_t cp) {
  if (cp < 0x10000) return static_cast<CharClass>(bmp_table()[cp]);
  return class_slow(cp);
}

bool is_numeric(char32_t cp) { return char_class(cp) == kNumber; }
bool is_alphanumeric(char32_t cp) {
  const CharClass c = char_class(cp);
  return c == kLetter || c == kNumber;
}

}  // namespace lorafit::tok
