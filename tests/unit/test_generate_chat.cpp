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

// Multi-line messages: a """ block (as ollama run) and trailing-\ continuations (as
// llama-cli) each reach the model as one user turn with its newlines.
TEST(ChatLoop, MultiLineMessages) {
  FakeModel m;
  const std::string out = run(m, "\"\"\"\nline one\n\nline three\"\"\"\nfirst \\\nsecond\n\"\"\"one line\"\"\"\n");
  EXPECT_EQ(out, "A1\nA2\nA3\n");
  ASSERT_EQ(m.seen.size(), 3u);
  EXPECT_EQ(m.seen[0].back()["content"], "line one\n\nline three");
  EXPECT_EQ(m.seen[1].back()["content"], "first \nsecond");
  EXPECT_EQ(m.seen[2].back()["content"], "one line");
  FakeModel m2;
  EXPECT_EQ(run(m2, "\"\"\"unfinished\nblock\n"), "[the input ended inside a \"\"\" message; it was not sent]\n");
  EXPECT_TRUE(m2.seen.empty());
}

// After each answer: tokens/s (on a terminal), the max_new_tokens cut (terminal), and a full
// context, which says the answer was cut and suggests /reset (always).
struct CutModel : FakeModel {
  ReplyInfo info;
  ReplyInfo last_reply() const override { return info; }
};

TEST(ChatLoop, StatsAndCutAnswers) {
  CutModel m;
  m.info = {12, 0.5, "max_new_tokens", 40, 64, 12};
  std::istringstream in("hi\n");
  std::ostringstream out;
  ChatLoopOptions o;
  o.prompts = false;
  o.stats = true;
  run_chat_loop(m, in, out, o);
  EXPECT_EQ(out.str(),
            "A1\n[the answer was cut at max_new_tokens (12); raise --max_new_tokens for longer answers]\n"
            "[12 tokens, 24.0 tokens/s]\n");
  m.info = {24, 1.0, "context_full", 64, 64, 100};
  EXPECT_EQ(run(m, "hi\n"),  // not a terminal: no speed, but the cut is said
            "A2\n[the context is full (64 of 64 positions): the answer was cut; /reset starts a new conversation]\n");
  m.info.stop = "eos";
  EXPECT_EQ(run(m, "hi\n"), "A3\n");
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

// A full context: an answer that fills it is cut (and says so through last_reply), and a
// conversation that no longer fits is an error that suggests /reset.
TEST(ChatContext, FullContextCutsAndSuggestsReset) {
  InferenceOptions o;
  o.model = (fs::path(LORAFIT_TEST_DATA) / "stories260K").string();
  o.raw = true;
  Inference inf(o);
  GenerateSettings s = inf.defaults();
  s.max_new_tokens = 100;
  s.eos_ids.clear();  // never stop early: the 16 positions fill up
  InferenceChat chat(inf, s, 16);
  const ojson turn = ojson::parse(R"([{"role": "user", "content": "Once upon a time"}])");
  const std::vector<int32_t> prompt = inf.encode_messages(turn, "t");
  chat.reply(turn, [](std::string_view) {});
  const ReplyInfo r = chat.last_reply();
  EXPECT_EQ(r.stop, "context_full");
  EXPECT_EQ(r.context_size, 16);
  // Tokens are chosen until the cache holds 16 positions: the prompt and all answer tokens
  // but the last (which has no position left to be fed at).
  EXPECT_EQ(r.tokens, 16 + 1 - static_cast<int64_t>(prompt.size()));
  EXPECT_EQ(r.context_used, 16);
  EXPECT_GT(r.seconds, 0);
  const ojson longer = ojson::parse(R"([{"role": "user", "content": "Once upon a time there was a girl named Lily who had a big red ball"}])");
  try {
    chat.reply(longer, [](std::string_view) {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no longer fits the context of 16 positions, so nothing was answered; "
                                         "/reset starts a new conversation (or raise --max_context)"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace lorafit
