// encode_chat: ids of the rendered conversation equal transformers' (the chat renderings in
// tests/data/tokenizer-golden/qwen_golden_ids.json), encoding per span equals encoding the
// whole text, and the trainable tokens are exactly the assistant replies + <|im_end|>.
#include <gtest/gtest.h>

#include "tokenizer/tokenizer.h"
#include "unit/test_tokenizer_chat_util.h"
#include "util/error.h"

using namespace lorafit;
using ojson = nlohmann::ordered_json;

namespace {

// family: "qwen2.5" or "qwen3" (Qwen3 adds <think>, <tool_response> ... as added tokens).
const Tokenizer& qwen_tokenizer(const std::string& family = "qwen2.5") {
  static Tokenizer q25 = Tokenizer::load(fs::path(LORAFIT_TEST_DATA) / "qwen-tokenizer" / "qwen2.5");
  static Tokenizer q3 = Tokenizer::load(fs::path(LORAFIT_TEST_DATA) / "qwen-tokenizer" / "qwen3");
  return family == "qwen3" ? q3 : q25;
}

std::string trained_text(const Tokenizer& tok, const ChatEncoding& enc, int message) {
  std::vector<int32_t> ids;
  for (size_t k = 0; k < enc.ids.size(); ++k)
    if (enc.trainable[k] && enc.message[k] == message) ids.push_back(enc.ids[k]);
  return tok.decode(ids);
}

TEST(ChatEncode, QwenGoldenIds) {
  ojson doc = ojson::parse(read_file(fs::path(LORAFIT_TEST_DATA) / "tokenizer-golden" / "qwen_golden_ids.json"));
  int n = 0;
  for (const char* family : {"qwen2_5", "qwen3"}) {
    const std::string dir = std::string(family) == "qwen2_5" ? "qwen2.5" : "qwen3";
    const Tokenizer& tok = qwen_tokenizer(dir);
    ChatTemplate tmpl = chat_test::qwen_template(dir);
    for (const auto& c : doc["chat_template"][family]) {
      SCOPED_TRACE(c["name"].get<std::string>());
      ChatOptions opts;
      opts.add_generation_prompt = c["add_generation_prompt"].get<bool>();
      if (c.contains("enable_thinking")) opts.extra["enable_thinking"] = c["enable_thinking"];
      ChatEncoding enc = encode_chat(tok, tmpl, c["messages"], opts);
      EXPECT_EQ(enc.ids, c["ids"].get<std::vector<int32_t>>());
      ASSERT_EQ(enc.trainable.size(), enc.ids.size());
      ASSERT_EQ(enc.message.size(), enc.ids.size());
      const ojson& msgs = c["messages"];
      for (size_t i = 0; i < msgs.size(); ++i) {
        std::string expect;
        if (msgs[i]["role"] == "assistant")
          expect = (std::string(family) == "qwen3" ? "<think>\n\n</think>\n\n" : "") +
                   msgs[i]["content"].get<std::string>() + "<|im_end|>";
        EXPECT_EQ(trained_text(tok, enc, static_cast<int>(i)), expect) << "message " << i;
      }
      ++n;
    }
  }
  EXPECT_EQ(n, 5);
}

TEST(ChatEncode, AllQwenFixtureConversationsSplitAtTokenBoundaries) {
  ojson doc = chat_test::load_renderings();
  int n = 0;
  for (const auto& c : doc["cases"]) {
    const std::string family = c["template"].get<std::string>();
    if (!c.contains("rendered") || (family != "qwen2.5" && family != "qwen3")) continue;
    const std::string name = c["name"].get<std::string>();
    SCOPED_TRACE(family + " / " + name);
    const Tokenizer& tok = qwen_tokenizer(family);
    ChatTemplate tmpl = chat_test::template_for(doc, c);
    ChatOptions opts = chat_test::options_for(c);
    const std::vector<int32_t> whole = tok.encode(c["rendered"].get<std::string>());
    if (family == "qwen2.5" && name.rfind("unicode", 0) == 0) {
      // The reply starts with "\n": after "assistant\n" BPE makes one "\n\n" token, so the
      // prompt/reply boundary falls inside a token. (Qwen3 strips the reply's leading
      // newlines after its think block, so there it splits cleanly.)
      EXPECT_THROW(encode_chat(tok, tmpl, c["messages"], opts), Error);
      opts.boundary = ChatBoundaryPolicy::kWholeText;
      ChatEncoding w = encode_chat(tok, tmpl, c["messages"], opts);
      EXPECT_EQ(w.ids, whole);
      // The straddling "\n\n" token has a reply byte, so it is trained.
      EXPECT_EQ(trained_text(tok, w, 1), "\n" + c["messages"][1]["content"].get<std::string>() + "<|im_end|>");
      opts.boundary = ChatBoundaryPolicy::kPerSegment;
      ChatEncoding p = encode_chat(tok, tmpl, c["messages"], opts);
      EXPECT_EQ(p.ids.size(), whole.size() + 1);  // "\n" + "\n..." instead of "\n\n..."
      EXPECT_EQ(tok.decode(p.ids), tok.decode(whole));  // same text (NFC), other split
      continue;
    }
    ChatEncoding enc;
    try {
      enc = encode_chat(tok, tmpl, c["messages"], opts);
    } catch (const Error& e) {
      ADD_FAILURE() << e.what();
      continue;
    }
    EXPECT_EQ(enc.ids, whole);
    // Every trained run ends with <|im_end|> (151645): the model learns to stop.
    for (size_t k = 0; k < enc.ids.size(); ++k) {
      if (enc.trainable[k] && (k + 1 == enc.ids.size() || !enc.trainable[k + 1])) {
        EXPECT_EQ(enc.ids[k], 151645);
      }
    }
    // Message attribution survives runs that span several messages (tool responses).
    for (size_t i = 0; i < c["messages"].size(); ++i) {
      if (c["messages"][i]["role"] != "tool") continue;
      std::vector<int32_t> ids;
      for (size_t k = 0; k < enc.ids.size(); ++k)
        if (enc.message[k] == static_cast<int>(i)) ids.push_back(enc.ids[k]);
      EXPECT_NE(tok.decode(ids).find(c["messages"][i]["content"].get<std::string>()), std::string::npos)
          << "message " << i << ": " << tok.decode(ids);
    }
    ++n;
  }
  EXPECT_GT(n, 30);
}

TEST(ChatEncode, BoundaryInsideATokenIsAnError) {
  // "a " + "x" encode as ["a", " "] + ["x"], but "a x" as ["a", " x"].
  ChatTemplate tmpl("{% for m in messages %}{{ m.content }}{% endfor %}", "plain", ojson::object());
  ojson msgs = ojson::parse(R"([{"role": "user", "content": "a "}, {"role": "assistant", "content": "x"}])");
  try {
    encode_chat(qwen_tokenizer(), tmpl, msgs);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("plain: a message boundary falls inside a token"), std::string::npos)
        << e.what();
  }
}

}  // namespace
