// Rendering + masking of the DISC legal data against transformers (fixture from
// tools/golden/make_render_fixtures.py: apply_chat_template with the Qwen2.5 tokenizer_config,
// labels −100 on the generation prompt, truncation to cutoff_len 384).
// Exact equality of every id and label, except the documented end-of-turn choice: the
// reference also trains the "\n" the template writes after the final <|im_end|>; we mask it.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "train/dataset.h"
#include "train/render.h"
#include "util/error.h"
#include "util/file.h"

using namespace lorafit;

namespace {
const fs::path kData = fs::path(LORAFIT_TEST_DATA);
const fs::path kQwen = kData / "qwen-tokenizer/qwen2.5";
constexpr int32_t kImEnd = 151645, kNewline = 198;
}  // namespace

TEST(TrainRender, DiscLawMatchesReferenceRecipe) {
  const auto fx = nlohmann::json::parse(read_file(fs::path(LORAFIT_FIXTURES) / "render/disc_law_qwen2.5.json"));
  DatasetOptions o;
  o.format = DatasetFormat::Pair;
  o.system = fx["system"].get<std::string>();
  const Dataset ds = load_dataset(kData / "disc-law/disc_law_eval_sft.jsonl", o);
  ASSERT_EQ(ds.records.size(), 2863u);  // 300 subjective QA first, then 2,563 exam questions
  const ChatRenderer r(kQwen);
  RenderOptions ro;
  ro.cutoff_len = fx["cutoff_len"].get<int64_t>();
  int checked_tail = 0;
  for (const auto& c : fx["cases"]) {
    const int64_t line = c["line"].get<int64_t>();
    const Record& rec = ds.records[static_cast<size_t>(line - 1)];
    ASSERT_EQ(rec.line, line);
    RenderStats st;
    const auto ex = r.render(rec, ro, st);
    ASSERT_TRUE(ex.has_value()) << "line " << line;
    const auto ids = c["input_ids"].get<std::vector<int32_t>>();
    const auto labels = c["labels"].get<std::vector<int32_t>>();
    EXPECT_EQ(ex->ids, ids) << "line " << line;
    ASSERT_EQ(ex->labels.size(), labels.size());
    const bool truncated = c["full_len"].get<size_t>() > ids.size();
    EXPECT_EQ(st.truncated, truncated ? 1 : 0);
    for (size_t i = 0; i < labels.size(); ++i) {
      const bool final_newline = !truncated && i + 1 == labels.size();
      if (final_newline) {  // the documented difference: "\n" after the last <|im_end|>
        ASSERT_EQ(ids[i], kNewline);
        ASSERT_EQ(ids[i - 1], kImEnd);
        EXPECT_EQ(labels[i], kNewline);
        EXPECT_EQ(ex->labels[i], -100);
        EXPECT_EQ(ex->labels[i - 1], kImEnd) << "the end-of-turn token is trained";
        ++checked_tail;
      } else {
        EXPECT_EQ(ex->labels[i], labels[i]) << "line " << line << " token " << i;
      }
    }
  }
  EXPECT_GT(checked_tail, 5);
}

TEST(TrainRender, TrainOnPromptAndNoTargetAfterTruncation) {
  DatasetOptions o;
  o.format = DatasetFormat::Pair;
  o.system = "你是一个法律专家，请根据用户的问题给出专业的回答";
  const Dataset ds = load_dataset(kData / "disc-law/disc_law_eval_sft.jsonl", o);
  const ChatRenderer r(kQwen);
  RenderOptions ro;
  ro.cutoff_len = 100;  // line 1's prompt alone is 282 tokens: nothing trainable remains
  RenderStats st;
  EXPECT_FALSE(r.render(ds.records[0], ro, st).has_value());
  EXPECT_EQ(st.no_target, 1);
  EXPECT_EQ(st.truncated, 1);
  ro.train_on_prompt = true;
  const auto ex = r.render(ds.records[0], ro, st);
  ASSERT_TRUE(ex.has_value());
  EXPECT_EQ(ex->labels, ex->ids);
}

TEST(TrainRender, PromptIdsEndWithGenerationPrompt) {
  DatasetOptions o;
  o.format = DatasetFormat::Pair;
  const Dataset ds = load_dataset(kData / "disc-law/disc_law_eval_sft.jsonl", o);
  const ChatRenderer r(kQwen);
  const std::vector<int32_t> p = r.prompt_ids(ds.records[1]);
  // "<|im_start|>assistant\n" = 151644, 77091, 198
  ASSERT_GE(p.size(), 3u);
  EXPECT_EQ(std::vector<int32_t>(p.end() - 3, p.end()), (std::vector<int32_t>{151644, 77091, 198}));
  EXPECT_EQ(r.pad_id(), 151643);
  EXPECT_EQ(r.eos_ids().front(), kImEnd);
}

TEST(TrainRender, CacheRoundTrip) {
  const fs::path dir = fs::temp_directory_path() / "lorafit_test_render_cache";
  fs::remove_all(dir);
  std::vector<Example> ex(2);
  ex[0].ids = {1, 2, 3};
  ex[0].labels = {-100, 2, 3};
  ex[0].record = 7;
  ex[1].ids = {4};
  ex[1].labels = {4};
  RenderStats st;
  st.samples = 2;
  st.truncated = 1;
  st.max_len = 3;
  save_render_cache(dir / "c.bin", ex, st);
  std::vector<Example> back;
  RenderStats st2;
  ASSERT_TRUE(load_render_cache(dir / "c.bin", back, st2));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].ids, ex[0].ids);
  EXPECT_EQ(back[0].labels, ex[0].labels);
  EXPECT_EQ(back[0].record, 7);
  EXPECT_EQ(st2.truncated, 1);
  EXPECT_EQ(st2.lengths, (std::vector<int64_t>{3, 1}));
  write_file_atomic(dir / "c.bin", "LFTC garbage");
  EXPECT_FALSE(load_render_cache(dir / "c.bin", back, st2));
  fs::remove_all(dir);
}

// The run's enable_thinking setting reaches the template (ChatSetup): the generation prompt of
// a sample equals transformers' apply_chat_template(..., enable_thinking=...) on the Qwen3
// tokenizer_config (tests/fixtures/chat/chat_renderings.json, make_chat_fixtures.py), and
// unset leaves the template's default (thinking on).
TEST(TrainRender, EnableThinkingSettingReachesTheTemplate) {
  const auto fx = nlohmann::json::parse(read_file(fs::path(LORAFIT_FIXTURES) / "chat/chat_renderings.json"));
  std::map<std::string, std::string> want;
  for (const auto& c : fx["cases"])
    if (c["template"] == "qwen3" && c.contains("rendered")) want[c["name"].get<std::string>()] = c["rendered"];
  ASSERT_TRUE(want.count("enable_thinking_false_gen") && want.count("enable_thinking_true_gen"));
  Record rec;
  rec.messages = nlohmann::ordered_json::parse(R"([{"role":"user","content":"借款到期不还怎么办？"},
                                                   {"role":"assistant","content":"x"}])");
  const fs::path qwen3 = kData / "qwen-tokenizer/qwen3";
  for (const auto& [setting, name] : std::vector<std::pair<std::optional<bool>, std::string>>{
           {false, "enable_thinking_false_gen"}, {true, "enable_thinking_true_gen"},
           {std::nullopt, "enable_thinking_true_gen"}}) {
    SCOPED_TRACE(name);
    ChatSetup setup;
    setup.enable_thinking = setting;
    const ChatRenderer r(qwen3, setup);
    EXPECT_EQ(r.prompt_ids(rec), r.tokenizer().encode(want[name]));
  }
}

// --template FILE replaces the folder's template for rendering, and is what the run records.
TEST(TrainRender, TemplateFileReplacesTheFoldersTemplate) {
  const fs::path f = fs::temp_directory_path() / ("lorafit_tmpl_" + std::to_string(::getpid()) + ".jinja");
  const std::string t =
      "{% for m in messages %}<|im_start|>{{ m.role }}: {{ m.content }}<|im_end|>{% endfor %}"
      "{% if add_generation_prompt %}<|im_start|>assistant: {% endif %}";
  write_file_atomic(f, t);
  ChatSetup setup;
  setup.template_file = f.string();
  const ChatRenderer r(kQwen, setup);
  EXPECT_EQ(r.template_text(), t);
  Record rec;
  rec.messages = nlohmann::ordered_json::parse(R"([{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}])");
  EXPECT_EQ(r.prompt_ids(rec), r.tokenizer().encode("<|im_start|>user: hi<|im_end|><|im_start|>assistant: "));
  RenderStats st;
  const auto ex = r.render(rec, RenderOptions{}, st);
  ASSERT_TRUE(ex.has_value());
  EXPECT_EQ(ex->ids, r.tokenizer().encode("<|im_start|>user: hi<|im_end|><|im_start|>assistant: yo<|im_end|>"));
  fs::remove(f);
}

// stories260K's tokenizer (Llama 2 style) prepends "▁" and rewrites spaces, so its whole-text
// tokens cannot be placed on the messages: the error names the setting that avoids placement,
// and with that setting the sample is the whole text's ids, every token trained.
TEST(TrainRender, UnplaceableTokensNameTheSettingThatAvoidsPlacement) {
  const fs::path f = fs::temp_directory_path() / ("lorafit_tmpl_stories_" + std::to_string(::getpid()) + ".jinja");
  write_file_atomic(f, "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}");
  ChatSetup setup;
  setup.template_file = f.string();
  const ChatRenderer r(kData / "stories260K", setup);
  Record rec;
  rec.messages = nlohmann::ordered_json::parse(R"([{"role":"user","content":"Once upon a time"},
                                                   {"role":"assistant","content":"there was a cat"}])");
  RenderOptions ro;
  RenderStats st;
  try {
    r.render(rec, ro, st);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              f.string() +
                  " (--template): cannot tell which tokens belong to the assistant replies: the tokenizer's "
                  "normalizer or decoder rewrites the text (beyond NFC), so its tokens do not line up with the "
                  "messages; set train_on_prompt: true to train on every token of the conversation (no placement "
                  "needed then)");
  }
  ro.train_on_prompt = true;
  const auto ex = r.render(rec, ro, st);
  ASSERT_TRUE(ex.has_value());
  EXPECT_EQ(ex->ids, r.tokenizer().encode("user: Once upon a time\nassistant: there was a cat\n", true));
  EXPECT_EQ(ex->labels, ex->ids);
  fs::remove(f);
}
