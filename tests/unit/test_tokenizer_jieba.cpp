// jieba in C++ against jieba 0.42.1 itself: tests/fixtures/eval/jieba_cut.json holds
// jieba.cut(text) (tools/golden/make_eval_fixtures.py) for the bundled QA texts and tricky
// strings (English, numbers with % and decimals, \r\n, full-width characters, masked names,
// the classic ambiguous sentences, a character outside the BMP). Equality is exact.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tokenizer/jieba.h"
#include "util/error.h"
#include "util/file.h"

using namespace lorafit;

TEST(Jieba, EqualsJiebaOnFixtureTexts) {
  const auto doc = nlohmann::json::parse(read_file(fs::path(LORAFIT_FIXTURES) / "eval" / "jieba_cut.json"));
  ASSERT_GT(doc.size(), 60u);
  const tok::Jieba& j = tok::Jieba::builtin();
  size_t words = 0;
  for (const auto& c : doc) {
    const auto want = c["words"].get<std::vector<std::string>>();
    EXPECT_EQ(j.cut(c["text"].get<std::string>()), want) << c["text"];
    words += want.size();
  }
  EXPECT_GT(words, 5000u);
}

TEST(Jieba, HmmFindsWordsOutsideTheDictionary) {
  // "杭研" is not in dict.txt: only the HMM joins it (jieba's README example).
  const auto w = tok::Jieba::builtin().cut("他来到了网易杭研大厦");
  EXPECT_EQ(w, (std::vector<std::string>{"他", "来到", "了", "网易", "杭研", "大厦"}));
}

TEST(Jieba, BadDictionaryNamesTheLine) {
  try {
    tok::Jieba j("好 3 a\n坏 x n\n", "", "test data");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "test data dict.txt line 2: expected 'word frequency [tag]'");
  }
}
