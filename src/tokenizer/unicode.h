// UTF-8 and Unicode helpers for the tokenizer: decoding, the lossy conversions HF uses,
// NFC, and the character classes the pre-tokenizer regexes ask for (\p{L}, \p{N}, \s).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lorafit::tok {

inline constexpr char32_t kReplacementChar = 0xFFFD;
inline constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 when the bytes there are
// not a valid, complete sequence (overlong, surrogate, > U+10FFFF, truncated).
size_t valid_seq_len(std::string_view s, size_t i);

// Decodes the valid sequence at s[i] (caller checked it with valid_seq_len or knows s is
// valid); advances i.
char32_t next_cp(std::string_view s, size_t& i);
void append_utf8(std::string& out, char32_t cp);

bool is_valid_utf8(std::string_view s);

// Rust's String::from_utf8_lossy: every maximal invalid subpart (Unicode 3.9, "substitution
// of maximal subparts") becomes one U+FFFD. HF decode (ByteLevel) does exactly this.
// Encoding uses it too: invalid input bytes become U+FFFD before tokenization (HF's Rust
// core can only hold valid strings; see docs in tokenizer.h).
std::string utf8_lossy(std::string_view s);

// Bytes at the end of s that form an incomplete but so far valid sequence (0..3): what a
// streaming decoder must hold back until more bytes arrive.
size_t incomplete_tail(std::string_view s);

// Canonical composition (NFC) and friends via utf8proc; input must be valid UTF-8.
enum class NormForm { NFC, NFD, NFKC, NFKD };
std::string normalize(std::string_view s, NormForm form);
bool nfc_inert(char32_t cp);  // NFC leaves this character alone in any context

// Character classes used by the split regexes. kOther is "not \s, not \p{L}, not \p{N}".
enum CharClass : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kSpace = 3 };
CharClass char_class(char32_t cp);
bool is_whitespace(char32_t cp);  // Unicode White_Space (= Rust char::is_whitespace, PCRE2 \s with UCP)
bool is_numeric(char32_t cp);     // Nd, Nl, No (= Rust char::is_numeric)
bool is_alphanumeric(char32_t cp);

}  // namespace lorafit::tok
