// Which bytes each message produced, and which are trained: for every rendering in the
// golden fixture, the trainable text of each plain assistant message must be exactly its
// reply plus the end-of-turn token, written out here from the model cards' formats
// (independent of how render_with_spans finds it), and nothing else may be trainable.
#include <gtest/gtest.h>

#include "unit/test_tokenizer_chat_util.h"
#include "util/error.h"

using namespace lorafit;
using ojson = nlohmann::ordered_json;

namespace {

std::string trim_ws(const std::string& s) {  // Python str.strip() for the ASCII test contents
  size_t b = s.find_first_not_of(" \t\n\r\f\v"), e = s.find_last_not_of(" \t\n\r\f\v");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// What the model is trained to produce for a plain assistant message (no tool calls, no
// <think> in the content), per family.
std::string expected_trained(const std::string& family, const ojson& msgs, size_t i) {
  const std::string content = msgs[i]["content"].get<std::string>();
  if (family == "qwen2.5") return content + "<|im_end|>";
  if (family == "qwen3") {
    // The last assistant turn after the last user query carries an (empty) think block,
    // and its content loses leading newlines.
    if (i + 1 != msgs.size()) return content + "<|im_end|>";
    return "<think>\n\n</think>\n\n" + content.substr(content.find_first_not_of('\n')) + "<|im_end|>";
  }
  if (family == "mistral") return content + "</s>";
  return trim_ws(content) + "<|eot_id|>";  // llama3, llama3.1 trim the content
}

struct Check {
  std::string trained;  // concatenated trainable bytes of the message
  bool contiguous = true;
};

std::vector<Check> trained_per_message(const ChatRendering& r, size_t n_msgs) {
  std::vector<Check> out(n_msgs);
  std::vector<size_t> last_end(n_msgs, std::string::npos);
  for (const auto& s : r.segments) {
    if (!s.trainable) continue;
    EXPECT_GE(s.message, 0);
    auto m = static_cast<size_t>(s.message);
    if (last_end[m] != std::string::npos && last_end[m] != s.begin) out[m].contiguous = false;
    out[m].trained += r.text.substr(s.begin, s.end - s.begin);
    last_end[m] = s.end;
  }
  return out;
}

TEST(ChatSpans, AssistantRepliesAreExactlyTheTrainedText) {
  ojson doc = chat_test::load_renderings();
  int checked = 0;
  for (const auto& c : doc["cases"]) {
    if (!c.contains("rendered")) continue;
    const std::string family = c["template"].get<std::string>();
    SCOPED_TRACE(family + " / " + c["name"].get<std::string>());
    ChatTemplate tmpl = chat_test::template_for(doc, c);
    ChatRendering r = tmpl.render_with_spans(c["messages"], chat_test::options_for(c));
    ASSERT_EQ(r.text, c["rendered"].get<std::string>());
    // Segments tile the text.
    size_t pos = 0;
    for (const auto& s : r.segments) {
      EXPECT_EQ(s.begin, pos);
      EXPECT_LT(s.begin, s.end);
      pos = s.end;
    }
    EXPECT_EQ(pos, r.text.size());

    const ojson& msgs = c["messages"];
    auto trained = trained_per_message(r, msgs.size());
    for (size_t i = 0; i < msgs.size(); ++i) {
      const ojson& m = msgs[i];
      const bool assistant = m["role"] == "assistant";
      if (!assistant) {
        EXPECT_EQ(trained[i].trained, "") << "message " << i << " (" << m["role"] << ") must not be trained";
        continue;
      }
      EXPECT_TRUE(trained[i].contiguous) << "message " << i;
      const std::string content = m["content"].get<std::string>();
      if (m.contains("tool_calls") || content.find("<think>") != std::string::npos || m.contains("reasoning_content"))
        continue;  // checked by hand below
      EXPECT_EQ(trained[i].trained, expected_trained(family, msgs, i)) << "message " << i;
      ++checked;
    }
  }
  EXPECT_GT(checked, 50);
}

// The hand-checked cases: think blocks, reasoning_content, tool calls.
std::vector<std::string> trained_for(const std::string& family, const std::string& name) {
  ojson doc = chat_test::load_renderings();
  for (const auto& c : doc["cases"])
    if (c["template"] == family && c["name"] == name) {
      ChatRendering r = chat_test::template_for(doc, c).render_with_spans(c["messages"], chat_test::options_for(c));
      std::vector<std::string> out;
      for (auto& t : trained_per_message(r, c["messages"].size())) out.push_back(t.trained);
      return out;
    }
  ADD_FAILURE() << "no case " << family << "/" << name;
  return {};
}

TEST(ChatSpans, Qwen3Thinking) {
  auto t = trained_for("qwen3", "think_last_turn");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[1], "<think>\n先回忆民法典。\n</think>\n\n合同是协议。<|im_end|>");
  t = trained_for("qwen3", "think_early_turn");  // the early turn loses its reasoning
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[1], "三年。<|im_end|>");
  EXPECT_EQ(t[3], "<think>\n\n</think>\n\n一般为三年，自知道或应当知道权利受到损害之日起计算。<|im_end|>");
  t = trained_for("qwen3", "reasoning_content");
  EXPECT_EQ(t[1], "<think>\n查第188条\n</think>\n\n三年。<|im_end|>");
  // enable_thinking=false: the empty think block is part of the prompt, as at inference.
  t = trained_for("qwen3", "enable_thinking_false_multi");
  EXPECT_EQ(t[1], "可以先协商，协商不成可向法院起诉。<|im_end|>");
}

TEST(ChatSpans, ToolCalls) {
  auto t = trained_for("qwen2.5", "tools_system_call_response");
  ASSERT_EQ(t.size(), 5u);
  // Header "<|im_start|>assistant\n" is the generation prompt, so the "\n" the template
  // writes before <tool_call> belongs to it, as at inference.
  EXPECT_EQ(t[2], "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"北京\", \"unit\": \"celsius\"}}\n</tool_call><|im_end|>");
  EXPECT_EQ(t[3], "");  // the tool response is prompt
  EXPECT_EQ(t[4], "北京现在22摄氏度。<|im_end|>");
  t = trained_for("llama3.1", "tools_system_call_response");
  EXPECT_EQ(t[2], "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"北京\", \"unit\": \"celsius\"}}<|eot_id|>");
  t = trained_for("qwen3", "tools_two_calls_two_responses");
  EXPECT_EQ(t[1], "我来查一下。\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"上海\"}}\n</tool_call>\n"
                  "<tool_call>\n{\"name\": \"search_law\", \"arguments\": {\"article\": 464}}\n</tool_call><|im_end|>");
}

TEST(ChatSpans, MessageRangesFollowTheLoop) {
  // Llama 3.1 hoists the system message out of its loop (`messages = messages[1:]`): it is
  // template text of no message; the others keep their original indices.
  ojson msgs = ojson::parse(R"([{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
                                {"role": "assistant", "content": "A"}])");
  ChatTemplate tmpl(read_file(chat_test::template_path("llama3.1")), "llama3.1",
                    {{"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|eot_id|>"}});
  ChatRendering r = tmpl.render_with_spans(msgs);
  std::string by_msg[3];
  for (const auto& s : r.segments)
    if (s.message >= 0) by_msg[s.message] += r.text.substr(s.begin, s.end - s.begin);
  EXPECT_EQ(by_msg[0], "");
  EXPECT_EQ(by_msg[1], "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>");
  EXPECT_EQ(by_msg[2], "<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>");
}

}  // namespace
