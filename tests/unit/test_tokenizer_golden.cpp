// Encoding and decoding against independent references: the golden Qwen2.5/Qwen3 ids in
// tests/data/tokenizer-golden (transformers.js + transformers' own integration test), and
// fixtures written by HF `tokenizers` 0.20.3 (tools/golden/make_tokenizer_fixtures.py) for
// Qwen2.5, the converted stories260K tokenizer and pipeline variants.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <unistd.h>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace lorafit {
namespace {

using json = nlohmann::json;
const fs::path kData = LORAFIT_TEST_DATA;
const fs::path kFix = fs::path(LORAFIT_FIXTURES) / "tokenizer";

json load_json(const fs::path& p) { return json::parse(read_file(p)); }
std::vector<int32_t> ids_of(const json& j) { return j.get<std::vector<int32_t>>(); }
std::string show(std::string_view s) { return json(std::string(s)).dump(); }

const Tokenizer& qwen25() {
  static const Tokenizer t = Tokenizer::load(kData / "qwen-tokenizer" / "qwen2.5");
  return t;
}
const Tokenizer& qwen3() {
  static const Tokenizer t = Tokenizer::load(kData / "qwen-tokenizer" / "qwen3");
  return t;
}
const Tokenizer& stories() {
  static const Tokenizer t = Tokenizer::load(kData / "stories260K");
  return t;
}

std::string fnv1a64(const std::vector<int32_t>& ids) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (int32_t id : ids)
    for (int k = 0; k < 4; ++k) h = (h ^ ((static_cast<uint32_t>(id) >> (8 * k)) & 0xFF)) * 0x100000001B3ull;
  return fmt::format("{:016x}", h);
}

TEST(TokenizerGolden, QwenGoldenIds) {
  const json g = load_json(kData / "tokenizer-golden" / "qwen_golden_ids.json");
  ASSERT_GT(g["cases"].size(), 80u);
  for (const json& c : g["cases"]) {
    const std::string text = c["text"];
    SCOPED_TRACE(fmt::format("case {} ({}): {}", c["id"].get<int>(), c["category"].get<std::string>(), show(text)));
    const auto want = ids_of(c["ids"]);
    EXPECT_EQ(qwen25().encode(text), want);
    EXPECT_EQ(qwen3().encode(text), c.contains("ids_qwen3") ? ids_of(c["ids_qwen3"]) : want);
    // decode(ids) == NFC(text) (decode_roundtrip is true for every case)
    EXPECT_EQ(qwen25().decode(want), tok::normalize(text, tok::NormForm::NFC));
    std::vector<std::string> tokens;
    for (int32_t id : want) tokens.push_back(qwen25().id_to_token(id));
    EXPECT_EQ(tokens, c["tokens"].get<std::vector<std::string>>());
  }
}

TEST(TokenizerGolden, TransformersIntegrationCases) {
  const json g = load_json(kData / "tokenizer-golden" / "hf_transformers_qwen2_cases.json");
  for (const json& c : g["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(qwen25().encode(text), ids_of(c["ids"])) << show(text);
  }
}

void check_fixture(const Tokenizer& tok, const std::string& name) {
  const json f = load_json(kFix / name);
  EXPECT_EQ(tok.vocab_size(), f["vocab_size"].get<size_t>());
  for (const json& c : f["cases"]) {
    const std::string text = c["text"];
    SCOPED_TRACE(show(text));
    EXPECT_EQ(tok.encode(text), ids_of(c["ids"]));
    EXPECT_EQ(tok.encode(text, /*parse_special=*/false), ids_of(c["ids_no_special"]));
    EXPECT_EQ(tok.decode(ids_of(c["ids"])), c["decoded"].get<std::string>());
    EXPECT_EQ(tok.decode(ids_of(c["ids"]), /*skip_special=*/true), c["decoded_skip"].get<std::string>());
  }
  // The disc-law corpus: every input/output string, compared by count and hash of the ids.
  std::vector<json> records;
  {
    std::ifstream in(kData / f["corpus_file"].get<std::string>());
    std::string line;
    while (std::getline(in, line)) records.push_back(json::parse(line));
  }
  size_t n = 0;
  for (const json& row : f["corpus"]) {
    const std::string text = records.at(row[0].get<size_t>()).at(row[1].get<std::string>());
    const auto ids = tok.encode(text);
    if (row.size() > 4) {
      EXPECT_EQ(ids, ids_of(row[4])) << "line " << row[0] << " " << row[1];
    }
    EXPECT_EQ(ids.size(), row[2].get<size_t>()) << "line " << row[0] << " " << row[1];
    EXPECT_EQ(fnv1a64(ids), row[3].get<std::string>()) << "line " << row[0] << " " << row[1];
    EXPECT_EQ(tok.decode(ids), tok::normalize(text, tok::NormForm::NFC)) << "line " << row[0];
    ++n;
  }
  EXPECT_GT(n, 5000u);
  for (const json& c : f["decode"]) {
    const auto ids = ids_of(c["ids"]);
    EXPECT_EQ(tok.decode(ids), c["text"].get<std::string>()) << c["ids"].dump();
    EXPECT_EQ(tok.decode(ids, true), c["text_skip"].get<std::string>()) << c["ids"].dump();
  }
}

TEST(TokenizerGolden, Qwen25Fixture) { check_fixture(qwen25(), "qwen2.5.json"); }
TEST(TokenizerGolden, Stories260KFixture) { check_fixture(stories(), "stories260K.json"); }

TEST(TokenizerGolden, PipelineVariants) {
  for (const char* name : {"variant_added", "variant_metaspace", "variant_split", "variant_removed"}) {
    SCOPED_TRACE(name);
    const Tokenizer tok = Tokenizer::load(kFix / (std::string(name) + ".tokenizer.json"));
    const json f = load_json(kFix / (std::string(name) + ".json"));
    for (const json& c : f["cases"]) {
      const std::string text = c["text"];
      EXPECT_EQ(tok.encode(text), ids_of(c["ids"])) << show(text);
      EXPECT_EQ(tok.encode(text, false), ids_of(c["ids_no_special"])) << show(text);
      EXPECT_EQ(tok.decode(ids_of(c["ids"])), c["decoded"].get<std::string>()) << show(text);
    }
  }
}

// Llama 3 / GPT-4 style (\p{N}{1,3}, ignore_merges) and GPT-2 style (ByteLevel with its own
// regex and a prefix space) pipelines over the Qwen2.5 vocab, edited exactly as the fixture
// script edits them.
TEST(TokenizerGolden, QwenVocabOtherByteLevelPipelines) {
  const json f = load_json(kFix / "qwen_variants.json");
  const json base = load_json(kData / "qwen-tokenizer" / "qwen2.5" / "tokenizer.json");
  const fs::path dir = fs::temp_directory_path() / fmt::format("lorafit_tok_variants_{}", ::getpid());
  fs::create_directories(dir);
  for (const char* name : {"gpt4", "gpt2"}) {
    SCOPED_TRACE(name);
    json j = base;
    if (std::string(name) == "gpt4") {
      j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = f["gpt4_pattern"];
      j["model"]["ignore_merges"] = true;
    } else {
      j["normalizer"] = nullptr;
      j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    }
    write_file_atomic(dir / "tokenizer.json", j.dump());
    const Tokenizer tok = Tokenizer::load(dir / "tokenizer.json");
    for (const json& c : f[name]) {
      const std::string text = c["text"];
      EXPECT_EQ(tok.encode(text), ids_of(c["ids"])) << show(text);
    }
  }
  fs::remove_all(dir);
}

TEST(TokenizerGolden, Stories260KSentence) {
  // Checked with `tokenizers` and llama2.c's own encoder (tools/convert_tok512.py --check).
  const std::vector<int32_t> want{403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426};
  EXPECT_EQ(stories().encode("Once upon a time, there was a little girl named Lily."), want);
  EXPECT_EQ(stories().post_process(want).front(), 1);  // <s>
  EXPECT_EQ(stories().token_to_id("<s>"), 1);
  EXPECT_EQ(stories().token_to_id("</s>"), 2);
  EXPECT_EQ(qwen25().post_process({5, 6}), (std::vector<int32_t>{5, 6}));  // Qwen adds no BOS
  EXPECT_EQ(qwen25().vocab_size(), 151665u);
  EXPECT_EQ(qwen3().vocab_size(), 151669u);
  EXPECT_EQ(qwen25().token_to_id("<|im_end|>"), 151645);
  EXPECT_EQ(qwen25().id_to_token(151644), "<|im_start|>");
  EXPECT_TRUE(qwen25().is_special(151643));
  EXPECT_FALSE(qwen25().is_special(151657));  // <tool_call> is not special
}

}  // namespace
}  // namespace lorafit
