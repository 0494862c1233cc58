// The chat loop (generate/chat_loop.h) driven with a fake model: what reaches the model each
// turn (system prompt, history, commands), what is printed, and that errors keep the loop
// alive. Also the streaming decoder on Chinese and emoji text with the Qwen2.5 tokenizer:
// token by token it reproduces the full decode exactly and never gives out a partial
// UTF-8 character.
#include <gtest/gtest.h>

#include <sstream>

#include <csignal>

#include "generate/chat_loop.h"
#include "generate/inference.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace lorafit {
namespace {

using ojson = nlohmann::ordered_json;

// Answers "A<n>" and records each conversation it saw.
struct FakeModel : ChatModel {
  std::vector<ojson> seen;
  std::string adapter = "base";
  std::string reply(const ojson& messages, const std::function<void(std::string_view)>& emit) override {
    seen.push_back(messages);
    if (messages.back()["content"] == "fail") throw Error("the prompt has 9 tokens, but the context holds 8");
    const std::string a = fmt::format("A{}", seen.size());
    emit(a.substr(0, 1));
    emit(a.substr(1));
    return a;
  }
  std::vector<std::string> adapter_names() const override { return {"law"}; }
  std::string current_adapter() const override { return adapter; }
  void use_adapter(const std::string& name) override {
    if (name != "law" && name != "base") throw Error("unknown adapter \"{}\"", name);
    adapter = name;
  }
};

std::string run(FakeModel& m, const std::string& input, std::optional<std::string> system = std::nullopt) {
  std::istringstream in(input);
  std::ostringstream out;
  ChatLoopOptions o;
  o.system = std::move(system);
  o.prompts = false;
  run_chat_loop(m, in, out, o);
  return out.str();
}

TEST(ChatLoop, MultiTurnKeepsHistoryAndSystem) {
  FakeModel m;
  const std::string out = run(m, "hi\n\nhow are you?\n", "be brief");
  EXPECT_EQ(out, "A1\nA2\n");
  ASSERT_EQ(m.seen.size(), 2u);
  EXPECT_EQ(m.seen[1], ojson::parse(R"([{"role":"system","content":"be brief"},{"role":"user","content":"hi"},
    {"role":"assistant","content":"A1"},{"role":"user","content":"how are you?"}])"));
}

TEST(ChatLoop, ResetSystemAndQuit) {
  FakeModel m;
  const std::string out = run(m, "one\n/reset\ntwo\n/system you are a lawyer\nthree\n/system\nfour\n/quit\nnever\n");
  EXPECT_EQ(out,
            "A1\n[new conversation]\nA2\n[system prompt set; new conversation]\nA3\n"
            "[system prompt removed; new conversation]\nA4\n");
  ASSERT_EQ(m.seen.size(), 4u);
  EXPECT_EQ(m.seen[1], ojson::parse(R"([{"role":"user","content":"two"}])"));
  EXPECT_EQ(m.seen[2], ojson::parse(R"([{"role":"system","content":"you are a lawyer"},{"role":"user","content":"three"}])"));
  EXPECT_EQ(m.seen[3], ojson::parse(R"([{"role":"user","content":"four"}])"));
}

TEST(ChatLoop, AdaptersAndUnknownCommands) {
  FakeModel m;
  const std::string out = run(m, "/adapters\n/adapter law\n/adapter nope\n/frobnicate\n");
  EXPECT_NE(out.find("[adapters: base, law; current: base]\n"), std::string::npos) << out;
  EXPECT_NE(out.find("[adapter: law]\n"), std::string::npos) << out;
  EXPECT_NE(out.find("[error: unknown adapter \"nope\"]\n"), std::string::npos) << out;
  EXPECT_NE(out.find("[unknown command /frobnicate; commands:"), std::string::npos) << out;
  EXPECT_TRUE(m.seen.empty());
}

TEST(ChatLoop, AFailedTurnIsReportedAndForgotten) {
  FakeModel m;
  const std::string out = run(m, "fail\nok\n");
  EXPECT_EQ(out, "[error: the prompt has 9 tokens, but the context holds 8]\nA2\n");
  EXPECT_EQ(m.seen[1], ojson::parse(R"([{"role":"user","content":"ok"}])"));  // the failed turn is gone
}

// The streaming decoder on mixed CJK / emoji / ASCII text: every prefix of the token stream
// yields only complete characters, and all pieces together equal decode(all ids).
TEST(ChatStreaming, ChineseAndEmojiWholeCharacters) {
  const Tokenizer tok = Tokenizer::load(fs::path(LORAFIT_TEST_DATA) / "qwen-tokenizer" / "qwen2.5");
  const std::string text = "根据《中华人民共和国民法典》第一千零六十二条，夫妻共同财产🙂👨‍👩‍👧 OK! 😀🎉 法律";
  const std::vector<int32_t> ids = tok.encode(text);
  StreamDecoder dec(tok);
  std::string all;
  int pieces = 0;
  for (int32_t id : ids) {
    const std::string piece = dec.push(id);
    // A whole number of UTF-8 characters: does not end inside a multi-byte sequence.
    size_t i = 0;
    while (i < piece.size()) {
      const auto c = static_cast<unsigned char>(piece[i]);
      const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
      ASSERT_LE(i + len, piece.size()) << "partial character after token " << id;
      for (size_t k = 1; k < len; ++k) ASSERT_EQ(static_cast<unsigned char>(piece[i + k]) >> 6, 2u);
      i += len;
    }
    pieces += !piece.empty();
    all += piece;
  }
  all += dec.flush();
  EXPECT_EQ(all, tok.decode(ids));
  EXPECT_EQ(all, text);
  EXPECT_GT(ids.size(), 20u);  // byte-level BPE splits the emoji across tokens: the case matters
  EXPECT_GT(pieces, 10);
}

// Ctrl-C during an answer (a real SIGINT, raised from the stream callback) stops that answer
// after the current token and leaves the process and the conversation usable.
TEST(ChatInterrupt, SigintStopsTheAnswerNotTheProgram) {
  InferenceOptions o;
  o.model = (fs::path(LORAFIT_TEST_DATA) / "stories260K").string();
  o.raw = true;
  Inference inf(o);
  GenerateSettings s = inf.defaults();
  s.max_new_tokens = 40;
  InferenceChat chat(inf, s, 256);
  const ojson turn = ojson::parse(R"([{"role": "user", "content": "Once upon a time"}])");
  const std::string full = chat.reply(turn, [](std::string_view) {});
  int pieces = 0;
  const std::string cut = chat.reply(turn, [&](std::string_view) {
    if (++pieces == 1) std::raise(SIGINT);  // as if the user pressed Ctrl-C now
  });
  EXPECT_EQ(pieces, 1);
  EXPECT_FALSE(cut.empty());
  EXPECT_LT(cut.size(), full.size());
  EXPECT_EQ(full.substr(0, cut.size()), cut);  // greedy: the same answer, stopped early
  EXPECT_EQ(chat.reply(turn, [](std::string_view) {}), full);  // the next answer runs in full
}

}  // namespace
}  // namespace lorafit
