// util/parse.h: the one number/bool parser takes the whole text or reports an exact error.
#include <gtest/gtest.h>

#include "util/error.h"
#include "util/parse.h"

using namespace lorafit;

namespace {
std::string error_of(auto f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST(UtilParse, Integers) {
  EXPECT_EQ(parse_int("42", "--n"), 42);
  EXPECT_EQ(parse_int("-7", "--n"), -7);
  EXPECT_EQ(parse_int("+5", "--n"), 5);
  EXPECT_EQ(parse_int("9223372036854775807", "--n"), INT64_MAX);
  for (const char* bad : {"", "4x", "1.5", " 3", "3 ", "0x10", "9223372036854775808", "+-1", "+"})
    EXPECT_FALSE(try_parse_int(bad).has_value()) << bad;
  EXPECT_EQ(error_of([] { parse_int("eight", "--lora_r"); }), "--lora_r: \"eight\" is not an integer");
  EXPECT_EQ(error_of([] { parse_int_in("70000", "--port", 0, 65535); }), "--port: 70000 is out of range; use 0..65535");
}

TEST(UtilParse, Doubles) {
  EXPECT_DOUBLE_EQ(parse_double("2e-4", "x"), 2e-4);
  EXPECT_DOUBLE_EQ(parse_double("+1.5", "x"), 1.5);
  EXPECT_DOUBLE_EQ(parse_double("-0.25", "x"), -0.25);
  EXPECT_DOUBLE_EQ(parse_double("3", "x"), 3.0);
  for (const char* bad : {"", "inf", "nan", "1e999", "1.0.0", "2GB", "abc"})
    EXPECT_FALSE(try_parse_double(bad).has_value()) << bad;
  EXPECT_EQ(error_of([] { parse_double("fast", "--learning_rate"); }), "--learning_rate: \"fast\" is not a number");
}

TEST(UtilParse, Bools) {
  for (const char* t : {"true", "True", "TRUE", "1", "yes", "on"}) EXPECT_TRUE(parse_bool(t, "x")) << t;
  for (const char* f : {"false", "False", "0", "no", "off"}) EXPECT_FALSE(parse_bool(f, "x")) << f;
  EXPECT_EQ(error_of([] { parse_bool("maybe", "--do_sample"); }),
            "--do_sample: \"maybe\" is not a boolean; write true or false");
}

TEST(UtilParse, TokenIds) {
  EXPECT_EQ(parse_token_ids("1, 410 ,469,347", "--input_ids"), (std::vector<int32_t>{1, 410, 469, 347}));
  EXPECT_EQ(error_of([] { parse_token_ids("1,x", "--input_ids"); }),
            "--input_ids: item 2 (\"x\") is not an integer token id; expected comma-separated ids such as "
            "1,410,469,347");
  EXPECT_FALSE(error_of([] { parse_token_ids("1,,2", "--input_ids"); }) == "(no error)");
  EXPECT_FALSE(error_of([] { parse_token_ids("2147483648", "--input_ids"); }) == "(no error)");
}

// A literal message is formatted even without arguments: {{ }} print as single braces
// (the dataset error once printed "{{input, output}}").
TEST(UtilError, LiteralBracesPrintOnce) {
  EXPECT_STREQ(Error("expected {{input, output}}").what(), "expected {input, output}");
  EXPECT_STREQ(Error(std::string("kept {{as is}}")).what(), "kept {{as is}}");
}
