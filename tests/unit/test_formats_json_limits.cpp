// Untrusted JSON (config.json, tokenizer files, adapter configs, datasets, safetensors
// headers) is parsed with a nesting limit and lorafit's own one-line messages: deep nesting
// (generated here, 100,000 levels) is an Error, never a stack overflow, and no raw
// "[json.exception...]" text reaches the user.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "formats/generation_config.h"
#include "formats/json_util.h"
#include "formats/model_config.h"
#include "formats/safetensors.h"
#include "tensor/dtype.h"
#include "util/error.h"

using namespace lorafit;

namespace {

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(accepted)";
}

std::string nested(const std::string& open, const std::string& close, int depth, const std::string& inner = "1") {
  std::string s;
  for (int i = 0; i < depth; ++i) s += open;
  s += inner;
  for (int i = 0; i < depth; ++i) s += close;
  return s;
}

}  // namespace

TEST(JsonLimits, DeepNestingIsAnErrorNotACrash) {
  const std::string deep_array = nested("[", "]", 100000);
  const std::string deep_object = nested("{\"a\":", "}", 100000);
  EXPECT_EQ(error_of([&] { parse_json(deep_array, "x.json"); }),
            "x.json: JSON nested deeper than 127 levels (lorafit's limit, as serde_json's); flatten the data");
  EXPECT_EQ(error_of([&] { parse_json_ordered(deep_object, "x.json"); }),
            "x.json: JSON nested deeper than 127 levels at field `" + [] {
              std::string p = "a";
              for (int i = 1; i < 127; ++i) p += ".a";
              return p;
            }() + "` (lorafit's limit, as serde_json's); flatten the data");
  EXPECT_EQ(error_of([&] { parse_json_strict(deep_array, "x.json"); }),
            "x.json: JSON nested deeper than 127 levels (lorafit's limit, as serde_json's); flatten the data");
  // Every reader built on these: config.json, generation_config.json, a safetensors header.
  EXPECT_EQ(error_of([&] { parse_model_config("{\"x\": " + deep_array + "}", "cfg.json"); }),
            "cfg.json: JSON nested deeper than 127 levels at field `x` (lorafit's limit, as serde_json's); flatten the "
            "data");
  EXPECT_EQ(error_of([&] { parse_generation_config(deep_array, "g.json"); }),
            "g.json: JSON nested deeper than 127 levels (lorafit's limit, as serde_json's); flatten the data");
  std::string header = "{\"__metadata__\": " + deep_array + "}";
  std::string st(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(st.data(), &n, 8);
  st += header;
  EXPECT_EQ(error_of([&] {
              SafetensorsFile::from_bytes(std::span(reinterpret_cast<const uint8_t*>(st.data()), st.size()), "m.st");
            }),
            "m.st (header): JSON nested deeper than 127 levels at field `__metadata__` (lorafit's limit, as "
            "serde_json's); flatten the data");
}

TEST(JsonLimits, ExactlyTheLimitIsAccepted) {
  // serde_json (tokenizers) reads 127 levels and refuses the 128th; so do we.
  EXPECT_EQ(error_of([] { parse_json(nested("[", "]", 127), "x.json"); }), "(accepted)");
  EXPECT_NE(error_of([] { parse_json(nested("[", "]", 128), "x.json"); }), "(accepted)");
  EXPECT_EQ(parse_json(nested("[", "]", 127), "x.json").dump(), nested("[", "]", 127));
}

TEST(JsonLimits, OwnMessagesWithLineAndColumn) {
  EXPECT_EQ(error_of([] { parse_json("{\n  \"a\": 1,\n  \"b\": tru\n}", "t.json"); }),
            "t.json: not valid JSON at line 3, column 11 (reading field `b`): syntax error while parsing value - "
            "invalid literal; last read: '\"b\": tru<U+000A>'");
  EXPECT_EQ(error_of([] { parse_json("{\"a\": 1e999}", "t.json"); }),
            "t.json: 1e999 in field `a` is too large for a 64-bit float; use a smaller number");
  // A JSONL record: no file label, the file's line number.
  EXPECT_EQ(error_of([] { parse_json_ordered("{\"a\": }", "", 7); }),
            "not valid JSON at line 7, column 7 (reading field `a`): syntax error while parsing value - unexpected "
            "'}'; expected '[', '{', or a literal");
  // Python's json keeps the last of two equal keys; the lenient readers do too.
  EXPECT_EQ(parse_json(R"({"a": 1, "a": 2})", "t.json")["a"], 2);
}

TEST(JsonLimits, OrderedObjectsHaveAKeyLimit) {
  // ordered_json inserts in O(n): a crafted record with a million keys would take hours.
  std::string s = "{";
  for (size_t i = 0; i <= kMaxOrderedKeys; ++i) s += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":0";
  s += "}";
  EXPECT_EQ(error_of([&] { parse_json_ordered(s, "d.json"); }),
            "d.json: an object with more than 10000 keys; lorafit reads at most that many here");
  EXPECT_EQ(error_of([&] { parse_json(s, "d.json"); }), "(accepted)");  // sorted: O(log n), no limit
}

TEST(JsonLimits, LibraryTextIsStripped) {
  try {
    (void)nlohmann::json(1).get<std::string>();
    FAIL();
  } catch (const nlohmann::json::exception& e) {
    EXPECT_EQ(json_error_text(e), "type must be string, but is number");
  }
}

// Found by fuzz_tokenizer_config and fuzz_serve_request (fuzz/regressions/*/newline-in-key): a
// key holding a newline (JSON "\n") is quoted in the field path; the message stays one line.
TEST(JsonLimits, QuotedKeysStayOneLine) {
  EXPECT_EQ(error_of([] { parse_json("{\"a\\nb\": tru}", "t.json"); }),
            "t.json: not valid JSON at line 1, column 13 (reading field `a<U+000A>b`): syntax error while parsing "
            "value - invalid literal; last read: '\"a\\nb\": tru}'");
  EXPECT_EQ(error_of([] { parse_json_strict("{\"k\\u001b\": 1, \"k\\u001b\": 2}", "t.json"); }),
            "t.json: duplicate key \"k<U+001B>\" (JSON readers would silently keep only the last one); remove the "
            "duplicate");
}

TEST(Dtype, ConversionReadsMisalignedSources) {
  // A tensor at an odd byte offset of a memory-mapped file: read element by element with
  // memcpy (UBSan flags a misaligned uint16_t load; scripts/sanitize.sh runs this test).
  alignas(8) uint8_t buf[1 + 2 * 3] = {};
  const uint16_t bf[3] = {0x3f80, 0xc000, 0x4040};  // 1, -2, 3 in bf16
  std::memcpy(buf + 1, bf, sizeof bf);
  float out[3];
  convert_to_f32(out, buf + 1, DType::BF16, 3);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 3.0f);
}
