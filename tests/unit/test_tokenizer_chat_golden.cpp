// Chat templates rendered exactly as transformers 4.46 apply_chat_template(tokenize=False):
// tests/fixtures/chat/chat_renderings.json (tools/golden/make_chat_fixtures.py) for the
// Qwen2.5, Qwen3, Llama 3, Llama 3.1 and Mistral v0.1 templates, and the chat renderings in
// tests/data/tokenizer-golden/qwen_golden_ids.json. Plus tokenizer_config.json parsing.
#include <gtest/gtest.h>

#include "unit/test_tokenizer_chat_util.h"
#include "util/error.h"

using namespace lorafit;
using ojson = nlohmann::ordered_json;

namespace {

TEST(ChatGolden, MatchesTransformersRenderings) {
  ojson doc = chat_test::load_renderings();
  ASSERT_GT(doc["cases"].size(), 60u);
  for (const auto& c : doc["cases"]) {
    SCOPED_TRACE(c["template"].get<std::string>() + " / " + c["name"].get<std::string>());
    ChatTemplate tmpl = chat_test::template_for(doc, c);
    ChatOptions opts = chat_test::options_for(c);
    if (c.contains("rendered")) {
      try {
        EXPECT_EQ(tmpl.render(c["messages"], opts), c["rendered"].get<std::string>());
      } catch (const Error& e) {
        ADD_FAILURE() << "unexpected error: " << e.what();
      }
    } else {
      try {
        tmpl.render(c["messages"], opts);
        ADD_FAILURE() << "expected the template to raise: " << c["error"];
      } catch (const Error& e) {
        // Our message: "<template name>:<line>: template raised an exception: <jinja2's message>".
        std::string msg = e.what();
        EXPECT_NE(msg.find("template raised an exception: " + c["error"].get<std::string>()), std::string::npos) << msg;
        EXPECT_EQ(msg.rfind(tmpl.name() + ":", 0), 0u) << msg;
      }
    }
  }
}

TEST(ChatGolden, QwenGoldenIdsRenderings) {
  ojson doc = ojson::parse(read_file(fs::path(LORAFIT_TEST_DATA) / "tokenizer-golden" / "qwen_golden_ids.json"));
  int n = 0;
  for (const char* family : {"qwen2_5", "qwen3"}) {
    const std::string dir = std::string(family) == "qwen2_5" ? "qwen2.5" : "qwen3";
    ChatTemplate tmpl = ChatTemplate::from_config(
        TokenizerConfig::load(fs::path(LORAFIT_TEST_DATA) / "qwen-tokenizer" / dir));
    for (const auto& c : doc["chat_template"][family]) {
      SCOPED_TRACE(c["name"].get<std::string>());
      ChatOptions opts;
      opts.add_generation_prompt = c["add_generation_prompt"].get<bool>();
      if (c.contains("enable_thinking")) opts.extra["enable_thinking"] = c["enable_thinking"];
      EXPECT_EQ(tmpl.render(c["messages"], opts), c["rendered"].get<std::string>());
      ++n;
    }
  }
  EXPECT_EQ(n, 5);
}

TEST(ChatGolden, EmptyMessagesIsAnError) {
  ChatTemplate tmpl = chat_test::qwen_template("qwen2.5");
  try {
    tmpl.render(ojson::array());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no messages to render"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tmpl.render(ojson::parse(R"(["not an object"])")), Error);
}

TEST(ChatGolden, UnknownRoleRaisesWithTemplateMessage) {
  ChatTemplate tmpl(read_file(chat_test::template_path("mistral")), "mistral", {{"bos_token", "<s>"}, {"eos_token", "</s>"}});
  try {
    tmpl.render(ojson::parse(R"([{"role": "user", "content": "a"}, {"role": "critic", "content": "b"}])"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "mistral:1: template raised an exception: Only user and assistant roles are supported!");
  }
}

TEST(TokenizerConfig, QwenConfigs) {
  TokenizerConfig q25 = TokenizerConfig::load(fs::path(LORAFIT_TEST_DATA) / "qwen-tokenizer" / "qwen2.5");
  EXPECT_FALSE(q25.bos_token.has_value());
  EXPECT_EQ(q25.eos_token.value(), "<|im_end|>");
  EXPECT_EQ(q25.pad_token.value(), "<|endoftext|>");
  EXPECT_FALSE(q25.unk_token.has_value());
  EXPECT_FALSE(q25.add_bos_token);
  EXPECT_FALSE(q25.add_eos_token);
  EXPECT_FALSE(q25.clean_up_tokenization_spaces);
  EXPECT_EQ(q25.model_max_length.value(), 131072);
  ASSERT_EQ(q25.added_tokens_decoder.size(), 22u);
  EXPECT_EQ(q25.added_tokens_decoder.front().id, 151643);
  EXPECT_EQ(q25.added_tokens_decoder.front().content, "<|endoftext|>");
  EXPECT_TRUE(q25.added_tokens_decoder.front().special);
  EXPECT_EQ(q25.added_tokens_decoder[14].content, "<tool_call>");
  EXPECT_FALSE(q25.added_tokens_decoder[14].special);
  EXPECT_EQ(q25.additional_special_tokens.size(), 13u);
  EXPECT_EQ(q25.chat_template_name(true), "default");
  ojson map = q25.special_tokens_map();
  EXPECT_EQ(map["eos_token"], "<|im_end|>");
  EXPECT_FALSE(map.contains("bos_token"));

  TokenizerConfig q3 = TokenizerConfig::load(fs::path(LORAFIT_TEST_DATA) / "qwen-tokenizer" / "qwen3" / "tokenizer_config.json");
  EXPECT_EQ(q3.added_tokens_decoder.size(), 26u);
  EXPECT_EQ(q3.added_tokens_decoder.back().content, "</think>");
}

TEST(TokenizerConfig, AddedTokenObjectsAndTemplateLists) {
  ojson j = ojson::parse(R"({
    "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
    "eos_token": "</s>", "unk_token": null, "add_bos_token": true, "model_max_length": 1e30,
    "chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}]})");
  TokenizerConfig c = TokenizerConfig::parse(nlohmann::json::parse(j.dump()), "cfg.json");
  EXPECT_EQ(c.bos_token.value(), "<s>");
  EXPECT_EQ(c.eos_token.value(), "</s>");
  EXPECT_FALSE(c.unk_token.has_value());
  EXPECT_TRUE(c.add_bos_token);
  EXPECT_EQ(c.model_max_length.value(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(c.chat_template(false), "D");
  EXPECT_EQ(c.chat_template(true), "T");

  TokenizerConfig only_named = TokenizerConfig::parse(
      nlohmann::json::parse(R"({"chat_template": [{"name": "rag", "template": "R"}]})"), "cfg.json");
  EXPECT_THROW(only_named.chat_template(false), Error);  // transformers also refuses
  TokenizerConfig none = TokenizerConfig::parse(nlohmann::json::parse("{}"), "cfg.json");
  try {
    none.chat_template(false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cfg.json: no chat_template"), std::string::npos) << e.what();
  }
}

TEST(TokenizerConfig, BadFieldsNameTheField) {
  auto msg = [](const char* text) {
    try {
      TokenizerConfig::parse(nlohmann::json::parse(text), "x/tokenizer_config.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(msg(R"({"eos_token": 5})"),
            "x/tokenizer_config.json: field 'eos_token' must be a string or an object with \"content\", got 5; fix the file");
  EXPECT_EQ(msg(R"({"add_bos_token": "yes"})"),
            "x/tokenizer_config.json: field 'add_bos_token' must be true or false, got \"yes\"");
  EXPECT_EQ(msg(R"({"chat_template": 3})"),
            "x/tokenizer_config.json: 'chat_template' must be a string or a list of {name, template}");
  EXPECT_EQ(msg(R"({"added_tokens_decoder": {"abc": {"content": "x"}}})"),
            "x/tokenizer_config.json: added_tokens_decoder key 'abc' is not a token id");
  EXPECT_EQ(msg("[]"), "x/tokenizer_config.json: expected a JSON object at the top level");
}

}  // namespace
