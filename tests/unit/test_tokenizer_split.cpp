// The hand-written Qwen2 / GPT-4 splitter against PCRE2 running the original regex, on a
// large generated corpus of mixed scripts, digits, punctuation, whitespace, contractions
// and invalid bytes (replaced by U+FFFD first, as encode does).
#include <gtest/gtest.h>

#include <random>

#include "tokenizer/split.h"
#include "tokenizer/unicode.h"

namespace lorafit::tok {
namespace {

constexpr const char* kQwen =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kGpt4 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Pools of code points that PCRE2 10.42 (Unicode 14) and utf8proc 2.8 (Unicode 15) classify
// alike; characters new in Unicode 15 would differ between the two tables, not the logic.
std::string random_text(std::mt19937& rng, size_t n_chunks) {
  static const std::vector<std::u32string> pools = {
      U"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", U"0123456789", U"０１２٠١٢३४ⅠⅡ½²①",
      U" ", U"  ", U"\t", U"\n", U"\r", U"\r\n", U"\u00a0\u3000\u2028\u2029\u0085\u000b\u000c\u1680\u2007\u202f",
      U".,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&`~", U"。，、；：？！“”‘’《》（）", U"的一是不了人我在有他这为之大来以个中上们",
      U"αβγΔΣ", U"абвгДЖ", U"مرحبا", U"नमस्ते", U"สวัสดี", U"안녕하세요", U"\u0301\u0300\u0308\u200d\u200b\ufeff",
      U"🙂👍🏽🇨🇳", std::u32string{0, 1, 0x1f, 0x7f}, U"'s'S'll'LL'd'D're'RE've'm't'x'ſ",
  };
  std::string out;
  for (size_t k = 0; k < n_chunks; ++k) {
    const auto& pool = pools[rng() % pools.size()];
    const size_t len = 1 + rng() % 6;
    for (size_t q = 0; q < len; ++q) append_utf8(out, pool[rng() % pool.size()]);
    if (rng() % 40 == 0) out.push_back(static_cast<char>(0x80 + rng() % 0x80));  // invalid byte
    if (rng() % 60 == 0) out += "\xE4\xB8";                                       // truncated character
  }
  return out;
}

void compare(const char* pattern, int max_digits) {
  int fd = 0;
  ASSERT_TRUE(is_fast_split_pattern(pattern, fd));
  ASSERT_EQ(fd, max_digits);
  const Regex re(pattern, "test");
  std::mt19937 rng(12345);
  size_t total = 0;
  for (int doc = 0; doc < 400; ++doc) {
    const std::string text = utf8_lossy(random_text(rng, 1 + rng() % 400));
    std::vector<Span> want, got;
    re.find_all(text, want);
    fast_split(text, max_digits, got);
    ASSERT_EQ(got, want) << "document " << doc;
    total += text.size();
  }
  EXPECT_GT(total, 1'000'000u / 2);
}

TEST(TokenizerSplit, FastQwenMatchesPcre2) { compare(kQwen, 1); }
TEST(TokenizerSplit, FastGpt4MatchesPcre2) { compare(kGpt4, 3); }

TEST(TokenizerSplit, KnownPieces) {
  std::vector<Span> got;
  const std::string text = "Hello world's  123\n\n  x";
  fast_split(text, 1, got);
  std::vector<std::string> pieces;
  for (auto [b, e] : got) pieces.push_back(text.substr(b, e - b));
  EXPECT_EQ(pieces, (std::vector<std::string>{"Hello", " world", "'s", " ", " ", "1", "2", "3", "\n\n", " ", " x"}));
}

TEST(TokenizerSplit, EmptyMatchesAdvanceOneCharacter) {
  const Regex re("x*", "test");
  std::vector<Span> got;
  re.find_all("axxé", got);
  // As Oniguruma's find_iter: empty at 0, "xx" at 1..3, empty at 3, then after é (2 bytes) at 5.
  EXPECT_EQ(got, (std::vector<Span>{{0, 0}, {1, 3}, {3, 3}, {5, 5}}));
}

TEST(TokenizerSplit, BadRegexNamesField) {
  try {
    Regex re("(unclosed", "pre_tokenizer.pattern.Regex");
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("pre_tokenizer.pattern.Regex"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lorafit::tok
