// What `lorafit generate/chat` load (generate/inference.h) for a Qwen2.5-Instruct-style folder:
// a fixture model with the real Qwen2.5 tokenizer files and Qwen2.5-0.5B-Instruct's
// generation_config.json. Eos ids are both <|im_end|> and <|endoftext|>; sampling defaults
// come from generation_config.json; --prompt renders the model's own ChatML template (with
// Qwen's default system prompt, docs/SPEC.md "Tokenizer"); bad conversations are refused by name.
#include <gtest/gtest.h>

#include <unistd.h>

#include "generate/inference.h"
#include "util/file.h"

namespace lorafit {
namespace {

class QwenFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lorafit_qwen_folder" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const fs::path model = fs::path(LORAFIT_FIXTURES) / "models" / "qwen2-untied-bf16";
    const fs::path tok = fs::path(LORAFIT_TEST_DATA) / "qwen-tokenizer" / "qwen2.5";
    for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(model / f, dir_ / f);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) fs::copy_file(tok / f, dir_ / f);
    // Qwen2.5-0.5B-Instruct's generation_config.json.
    write_file_atomic(dir_ / "generation_config.json",
                      R"({"bos_token_id": 151643, "pad_token_id": 151643, "do_sample": true,
                          "eos_token_id": [151645, 151643], "repetition_penalty": 1.1, "temperature": 0.7,
                          "top_p": 0.8, "top_k": 20, "transformers_version": "4.37.0"})");
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST_F(QwenFolder, DefaultsEosAndChatTemplate) {
  InferenceOptions o;
  o.model = dir_.string();
  Inference inf(o);
  const GenerateSettings& s = inf.defaults();
  // generation_config's two ids (config.json's eos 2 of the random fixture model follows).
  ASSERT_GE(s.eos_ids.size(), 2u);
  EXPECT_EQ(s.eos_ids[0], 151645);
  EXPECT_EQ(s.eos_ids[1], 151643);
  EXPECT_TRUE(s.sampling.do_sample);
  EXPECT_DOUBLE_EQ(s.sampling.temperature, 0.7);
  EXPECT_DOUBLE_EQ(s.sampling.top_p, 0.8);
  EXPECT_EQ(s.sampling.top_k, 20);
  EXPECT_DOUBLE_EQ(s.sampling.repetition_penalty, 1.1);

  const std::vector<int32_t> ids = inf.encode_prompt("你好", std::nullopt);
  EXPECT_EQ(inf.tokenizer()->decode(ids),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(ids.front(), 151644);  // <|im_start|> as one special token
  const std::vector<int32_t> with_system = inf.encode_prompt("hi", std::string("你是一个法律专家"));
  EXPECT_EQ(inf.tokenizer()->decode(with_system),
            "<|im_start|>system\n你是一个法律专家<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");

  // The Qwen ids exceed this tiny model's vocabulary (389): refused before the backend.
  Generator g(inf.model(), 64);
  EXPECT_NE(error_of([&] { g.generate(ids, s); }).find("is outside the vocabulary"), std::string::npos);
}

TEST_F(QwenFolder, BadConversationsAreRefusedByName) {
  InferenceOptions o;
  o.model = dir_.string();
  const Inference inf(o);
  using J = nlohmann::ordered_json;
  auto err = [&](const J& m) { return error_of([&] { inf.encode_messages(m, "chat.json"); }); };
  EXPECT_EQ(err(J::array()), "chat.json: the message list is empty; give at least one user message");
  EXPECT_EQ(err(J::parse(R"([{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}])")),
            "chat.json: message 2 has the unknown role \"robot\"; expected system, user, assistant or tool");
  EXPECT_EQ(err(J::parse(R"([{"role": "user"}])")),
            "chat.json: message 1 is not an object with string \"role\" and \"content\"");
  EXPECT_EQ(err(J::parse(R"({"role": "user"})")),
            "chat.json: expected a JSON list of {\"role\", \"content\"} messages");
}

TEST(InferenceOptionsErrors, NothingToLoad) {
  EXPECT_NE(error_of([] { Inference inf(InferenceOptions{}); }).find("give the model with --model DIR"),
            std::string::npos);
  InferenceOptions o;
  o.model = (fs::path(LORAFIT_TEST_DATA) / "stories260K").string();
  o.merge = true;
  EXPECT_NE(error_of([&] { Inference inf(o); }).find("--merge merges exactly one adapter"), std::string::npos);
}

}  // namespace
}  // namespace lorafit

namespace lorafit {
namespace {

// --enable_thinking reaches the template at inference as in training (Qwen3's switch; the
// expected text is transformers' rendering in tests/fixtures/chat/chat_renderings.json).
TEST(InferenceTemplate, EnableThinkingOption) {
  const fs::path dir = fs::temp_directory_path() / ("lorafit_qwen3_folder" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path model = fs::path(LORAFIT_FIXTURES) / "models" / "qwen3-untied-bf16";
  const fs::path tok = fs::path(LORAFIT_TEST_DATA) / "qwen-tokenizer" / "qwen3";
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(model / f, dir / f);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) fs::copy_file(tok / f, dir / f);
  for (const std::optional<bool> think : {std::optional<bool>(false), std::optional<bool>(true), std::optional<bool>()}) {
    InferenceOptions o;
    o.model = dir.string();
    o.enable_thinking = think;
    Inference inf(o);
    EXPECT_EQ(inf.tokenizer()->decode(inf.encode_prompt("借款到期不还怎么办？", std::nullopt)),
              std::string("<|im_start|>user\n借款到期不还怎么办？<|im_end|>\n<|im_start|>assistant\n") +
                  (think == false ? "<think>\n\n</think>\n\n" : ""));
  }
  fs::remove_all(dir);
}

// An adapter folder whose template or eos differs from its base folder's: one warning each,
// naming both values.
TEST(InferenceTemplate, MismatchWarningsNameBothValues) {
  const TokenizerConfig a = TokenizerConfig::parse(
      nlohmann::json::parse(R"({"eos_token":"<|im_end|>","chat_template":"A{{ x }}\nB"})"), "adapter/tokenizer_config.json");
  const TokenizerConfig b = TokenizerConfig::parse(
      nlohmann::json::parse(R"({"eos_token":"<|endoftext|>","chat_template":"A{{ x }}\nC"})"), "base/tokenizer_config.json");
  const std::vector<std::string> w = chat_mismatches(a, b);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NE(w[0].find("chat template differs"), std::string::npos) << w[0];
  EXPECT_NE(w[0].find("first difference on line 2"), std::string::npos) << w[0];
  EXPECT_NE(w[1].find("adapter \"<|im_end|>\" (adapter/tokenizer_config.json), base \"<|endoftext|>\" "
                      "(base/tokenizer_config.json)"),
            std::string::npos)
      << w[1];
  EXPECT_TRUE(chat_mismatches(a, a).empty());
}

// What a training run recorded in the adapter (lorafit_base_model.json) is the default.
TEST(InferenceTemplate, TrainedTemplateVars) {
  const fs::path dir = fs::temp_directory_path() / ("lorafit_trained_vars" + std::to_string(::getpid()));
  fs::create_directories(dir);
  EXPECT_EQ(trained_template_vars(dir).dump(), "{}");
  write_file_atomic(dir / "lorafit_base_model.json", R"({"base_model_name_or_path": "m", "enable_thinking": false})");
  EXPECT_EQ(trained_template_vars(dir).dump(), R"({"enable_thinking":false})");
  write_file_atomic(dir / "lorafit_base_model.json", R"({"enable_thinking": "no"})");
  EXPECT_EQ(error_of([&] { trained_template_vars(dir); }),
            (dir / "lorafit_base_model.json").string() + ": enable_thinking must be true or false, not \"no\"");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lorafit
