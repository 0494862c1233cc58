// Dataset forms, detection, column map, system prompt, ranges and bad-record handling.
#include <gtest/gtest.h>

#include "train/dataset.h"
#include "util/error.h"

using namespace lorafit;

namespace {
fs::path write_tmp(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / ("lorafit_test_ds_" + name);
  write_file_atomic(p, text);
  return p;
}
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
using ojson = nlohmann::ordered_json;
ojson msg(const char* role, const char* content) { return ojson{{"role", role}, {"content", content}}; }
}  // namespace

TEST(TrainDataset, DetectsEveryForm) {
  struct Case {
    const char* line;
    DatasetFormat format;
    ojson messages;
  } cases[] = {
      {R"({"input": "q", "output": "a", "id": 1})", DatasetFormat::Pair, ojson{msg("user", "q"), msg("assistant", "a")}},
      {R"({"instruction": "do", "input": "x", "output": "a"})", DatasetFormat::Alpaca,
       ojson{msg("user", "do\nx"), msg("assistant", "a")}},
      {R"({"instruction": "do", "input": "", "output": "a"})", DatasetFormat::Alpaca,
       ojson{msg("user", "do"), msg("assistant", "a")}},
      {R"({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})",
       DatasetFormat::Chat, ojson{msg("user", "hi"), msg("assistant", "yo")}},
      {R"({"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]})",
       DatasetFormat::ShareGpt, ojson{msg("system", "s"), msg("user", "hi"), msg("assistant", "yo")}},
  };
  for (const Case& c : cases) {
    const Dataset ds = load_dataset(write_tmp("form.jsonl", std::string(c.line) + "\n"), {});
    EXPECT_EQ(ds.format, c.format) << c.line;
    ASSERT_EQ(ds.records.size(), 1u);
    EXPECT_EQ(ds.records[0].messages, c.messages) << c.line;
  }
  const Dataset t = load_dataset(write_tmp("text.json", R"([{"text": "once"}, {"text": "upon"}])"), {});
  EXPECT_EQ(t.format, DatasetFormat::Text);
  ASSERT_EQ(t.records.size(), 2u);
  EXPECT_EQ(t.records[1].text, "upon");
  EXPECT_EQ(t.records[1].line, 2);
}

TEST(TrainDataset, SystemPromptColumnsAndReference) {
  DatasetOptions o;
  o.system = "S";
  o.columns = "input=question,output=answer";
  o.include_reference = true;
  const Dataset ds =
      load_dataset(write_tmp("cols.jsonl", R"({"question": "q", "answer": "a", "reference": ["law 1", "law 2"]})" "\n"), o);
  EXPECT_EQ(ds.records[0].messages,
            (ojson{msg("system", "S"), msg("user", "q\n参考法条：\nlaw 1\nlaw 2"), msg("assistant", "a")}));
  EXPECT_EQ(prompt_messages(ds.records[0]), (ojson{msg("system", "S"), msg("user", "q\n参考法条：\nlaw 1\nlaw 2")}));
  EXPECT_EQ(reference_answer(ds.records[0]), "a");
  // A record's own system message is replaced by the fixed one.
  const Dataset c = load_dataset(
      write_tmp("sys.jsonl", R"({"messages": [{"role": "system", "content": "old"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]})" "\n"), o);
  EXPECT_EQ(c.records[0].messages[0], msg("system", "S"));
}

TEST(TrainDataset, BadRecordsNameFileAndLine) {
  const fs::path p = write_tmp("bad.jsonl", "{\"input\": \"q\", \"output\": \"a\"}\n\n{oops\n{\"input\": \"q\"}\n"
                                            "{\"input\": \"q\", \"output\": \"\"}\n");
  const std::string e = error_of([&] { load_dataset(p, {}); });
  EXPECT_EQ(e.rfind(p.string() + ":3: record is not valid JSON", 0), 0u) << e;
  DatasetOptions skip;
  skip.skip_bad = true;
  const Dataset ds = load_dataset(p, skip);
  EXPECT_EQ(ds.records.size(), 1u);
  EXPECT_EQ(ds.skipped_bad, 3);
  EXPECT_EQ(ds.empty_outputs, 1);
  EXPECT_EQ(error_of([&] {
              DatasetOptions o;
              o.format = DatasetFormat::Pair;
              load_dataset(write_tmp("nf.jsonl", "{\"input\": \"q\"}\n"), o);
            }),
            (fs::temp_directory_path() / "lorafit_test_ds_nf.jsonl").string() +
                ":1: record has no \"output\" field; fix it or set on_bad_record: skip");
  EXPECT_EQ(error_of([&] { load_dataset(write_tmp("empty.jsonl", "\n \n"), {}); }),
            (fs::temp_directory_path() / "lorafit_test_ds_empty.jsonl").string() +
                ": no usable records; a dataset needs at least one");
  EXPECT_NE(error_of([&] { load_dataset(write_tmp("noform.jsonl", "{\"q\": 1}\n"), {}); }).find("matches no dataset form"),
            std::string::npos);
}

TEST(TrainDataset, Ranges) {
  auto r = parse_range("5:5000", 300, "train_range");
  EXPECT_EQ(r.begin, 5);
  EXPECT_EQ(r.end, 300);
  r = parse_range("0:5", 300, "eval_range");
  EXPECT_EQ(r.end, 5);
  r = parse_range("-10:", 300, "x");
  EXPECT_EQ(r.begin, 290);
  EXPECT_EQ(r.end, 300);
  EXPECT_EQ(error_of([] { parse_range("5", 10, "train_range"); }),
            "train_range: \"5\" is not a range a:b (e.g. 5:5000 = records 5..4999)");
}
