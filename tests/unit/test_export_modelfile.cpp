// The Ollama TEMPLATE derived from a Jinja chat template (export/modelfile.h) renders the plain
// chat case exactly as the Jinja template does (transformers' apply_chat_template, which our
// Jinja engine matches: test_tokenizer_chat_golden), for the official templates in tests/data.
#include <gtest/gtest.h>

#include "export/modelfile.h"
#include "tokenizer/tokenizer_config.h"
#include "util/error.h"
#include "util/file.h"

using namespace lorafit;

namespace {

using Conv = std::vector<std::pair<std::string, std::string>>;

const std::vector<Conv> kConversations = {
    {{"user", "Hi"}},
    {{"user", "What is a tort?"}, {"assistant", "A civil wrong."}, {"user", "Example?"}},
    {{"user", "一"}, {"assistant", "二"}, {"user", "三"}, {"assistant", "四"}, {"user", "五 with\nnewline"}},
};

nlohmann::ordered_json to_json(const std::string& system, const Conv& c) {
  nlohmann::ordered_json m = nlohmann::ordered_json::array();
  if (!system.empty()) m.push_back({{"role", "system"}, {"content", system}});
  for (const auto& [r, t] : c) m.push_back({{"role", r}, {"content", t}});
  return m;
}

// Every conversation, with and without a system prompt when the template takes one.
void expect_equivalent(const ChatTemplate& tmpl, const ChatParts& p, const std::string& bos) {
  ChatOptions gen;
  gen.add_generation_prompt = true;
  for (const std::string system : {"", "You are a legal expert."}) {
    if (!system.empty() && !p.system) continue;
    for (const Conv& c : kConversations) {
      std::string want = tmpl.render(to_json(system, c), gen);
      if (!bos.empty() && want.rfind(bos, 0) == 0) want = want.substr(bos.size());
      EXPECT_EQ(render_chat_parts(p, system, c), want) << tmpl.name() << " system=\"" << system << "\"";
    }
  }
}

ChatTemplate from_file(const std::string& file, const std::string& bos, const std::string& eos) {
  return ChatTemplate(read_file(fs::path(LORAFIT_TEST_DATA) / "chat-templates" / file), file,
                      {{"bos_token", bos}, {"eos_token", eos}});
}

}  // namespace

TEST(ExportModelfile, QwenTemplatesMatchJinja) {
  for (const char* v : {"qwen2.5", "qwen3"}) {
    const TokenizerConfig tc = TokenizerConfig::load(fs::path(LORAFIT_TEST_DATA) / "qwen-tokenizer" / v);
    const ChatTemplate tmpl = ChatTemplate::from_config(tc);
    const ChatParts p = chat_parts(tmpl, "", {"<|im_end|>"});
    EXPECT_TRUE(p.system);
    EXPECT_EQ(p.user_open, "<|im_start|>user\n") << v;
    EXPECT_EQ(p.asst_close, "<|im_end|>\n") << v;
    expect_equivalent(tmpl, p, "");
  }
}

TEST(ExportModelfile, Llama3TemplatesMatchJinja) {
  for (const char* f : {"llama3-8b-instruct.jinja", "llama3.1-8b-instruct.jinja"}) {
    const ChatTemplate tmpl = from_file(f, "<|begin_of_text|>", "<|eot_id|>");
    const ChatParts p = chat_parts(tmpl, "<|begin_of_text|>", {"<|eot_id|>"});
    EXPECT_TRUE(p.system) << f;
    EXPECT_EQ(p.user_open, "<|start_header_id|>user<|end_header_id|>\n\n") << f;
    expect_equivalent(tmpl, p, "<|begin_of_text|>");
  }
}

TEST(ExportModelfile, MistralTemplateHasNoSystemAndDropsBos) {
  const ChatTemplate tmpl = from_file("mistral-7b-instruct-v0.1.jinja", "<s>", "</s>");
  const ChatParts p = chat_parts(tmpl, "<s>", {"</s>"});
  EXPECT_FALSE(p.system);  // the template raises on a system message
  EXPECT_EQ(ollama_template(p), "{{ range .Messages }}{{ if eq .Role \"user\" }}[INST] {{ .Content }} [/INST]"
                                "{{ else if eq .Role \"assistant\" }}{{ .Content }}</s> {{ end }}{{ end }}");
  expect_equivalent(tmpl, p, "<s>");
}

TEST(ExportModelfile, IrregularTemplateIsRefused) {
  // The generation prompt differs from what follows a user turn inside the conversation.
  const ChatTemplate tmpl("{% for m in messages %}{{ m.role }}: {{ m.content }}{% if not loop.last %}|{% endif %}"
                          "{% endfor %}{% if add_generation_prompt %}>{% endif %}",
                          "odd", {});
  EXPECT_THROW(chat_parts(tmpl, "", {}), Error);
}

TEST(ExportModelfile, ModelfileText) {
  EXPECT_EQ(modelfile_text("./m.gguf", "T", {"<|im_end|>", "a\"b"}, "sys"),
            "# Ollama Modelfile written by lorafit export: ollama create NAME -f Modelfile\n"
            "FROM ./m.gguf\nTEMPLATE \"\"\"T\"\"\"\nPARAMETER stop \"<|im_end|>\"\nPARAMETER stop \"a\\\"b\"\n"
            "SYSTEM \"\"\"sys\"\"\"\n");
}
