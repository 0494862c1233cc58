// The dashboard's view of evaluation results: eval_results.json and predictions.jsonl joined
// per question across models, "changed" where an adapter's extracted answer (MCQ) or text (QA)
// differs from the first model's, the eval/ subfolder found, a run without results, and bad
// lines counted instead of failing.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fmt/format.h>

#include <fstream>

#include "track/eval_reader.h"

namespace fs = std::filesystem;
using nlohmann::json;
using lorafit::track::read_eval;

namespace {

fs::path tmp_dir(const char* name) {
  fs::path d = fs::temp_directory_path() / fmt::format("lorafit-eval-reader-{}-{}", name, ::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }

}  // namespace

TEST(EvalReader, JoinsModelsPerQuestionAndMarksChanges) {
  const fs::path run = tmp_dir("mcq");
  fs::create_directories(run / "eval");
  write(run / "eval" / "eval_results.json",
        R"({"task": "mcq", "n": 3, "truncated": 1, "models": ["base", "ad"],
            "results": {"base": {"accuracy": 33.3}, "ad": {"accuracy": 66.7}}})");
  write(run / "eval" / "predictions.jsonl",
        "{\"model\":\"base\",\"id\":\"q1\",\"source\":\"s\",\"prediction\":\"A\",\"reference\":\"A\",\"answer\":\"A\",\"correct\":true}\n"
        "{\"model\":\"base\",\"id\":\"q2\",\"source\":\"s\",\"prediction\":\"答案B\",\"reference\":\"C\",\"answer\":\"B\",\"correct\":false}\n"
        "{\"model\":\"base\",\"id\":\"q3\",\"source\":\"s\",\"prediction\":\"D\",\"reference\":\"D\",\"answer\":\"D\",\"correct\":true}\n"
        "{\"model\":\"ad\",\"id\":\"q1\",\"source\":\"s\",\"prediction\":\"A。\",\"reference\":\"A\",\"answer\":\"A\",\"correct\":true}\n"
        "{\"model\":\"ad\",\"id\":\"q2\",\"source\":\"s\",\"prediction\":\"C\",\"reference\":\"C\",\"answer\":\"C\",\"correct\":true}\n"
        "not json\n");
  const json e = read_eval(run);
  ASSERT_TRUE(e["found"].get<bool>());
  EXPECT_EQ(e["task"], "mcq");
  EXPECT_EQ(e["truncated"], 1);
  ASSERT_EQ(e["rows"].size(), 3u);
  EXPECT_EQ(e["rows"][0]["id"], "q1");
  EXPECT_FALSE(e["rows"][0]["changed"].get<bool>());  // same letters, different text: not changed (MCQ)
  EXPECT_TRUE(e["rows"][1]["changed"].get<bool>());
  EXPECT_EQ(e["rows"][1]["answers"]["ad"]["answer"], "C");
  EXPECT_EQ(e["rows"][1]["answers"]["base"]["correct"], false);
  EXPECT_FALSE(e["rows"][2]["changed"].get<bool>());  // only the base answered
  ASSERT_EQ(e["warnings"].size(), 1u);
  fs::remove_all(run);
}

TEST(EvalReader, QaComparesTextAndMissingResults) {
  const fs::path run = tmp_dir("qa");
  EXPECT_FALSE(read_eval(run)["found"].get<bool>());
  write(run / "eval_results.json", R"({"task": "qa", "models": ["base", "ad"], "results": {}})");
  write(run / "predictions.jsonl",
        "{\"model\":\"base\",\"id\":\"1\",\"prediction\":\"x\",\"reference\":\"y\",\"rouge-l\":0}\n"
        "{\"model\":\"ad\",\"id\":\"1\",\"prediction\":\"y\",\"reference\":\"y\",\"rouge-l\":100}\n");
  const json e = read_eval(run);
  ASSERT_EQ(e["rows"].size(), 1u);
  EXPECT_TRUE(e["rows"][0]["changed"].get<bool>());
  EXPECT_EQ(e["rows"][0]["answers"]["ad"]["rouge-l"], 100);
  write(run / "eval_results.json", "{broken");
  EXPECT_EQ(read_eval(run)["warnings"].size(), 1u);
  fs::remove_all(run);
}

// A run folder is untrusted input to the dashboard: a results file or a predictions line nested
// a million levels deep (copying or dumping it would recurse that deep) is a warning or a bad
// line, as any other invalid file, through the depth-limited parser (formats/json_util.h).
TEST(EvalReader, DeeplyNestedFilesAreWarningsNotCrashes) {
  const fs::path run = tmp_dir("deep");
  constexpr int kDepth = 1000000;
  const std::string deep = std::string(kDepth, '[') + std::string(kDepth, ']');
  write(run / "eval_results.json", R"({"task": "qa", "models": ["base"], "results": {}})");
  write(run / "predictions.jsonl",
        "{\"model\":\"base\",\"id\":\"q1\",\"prediction\":\"a\",\"reference\":\"a\"}\n"
        "{\"model\":\"base\",\"id\":\"q2\",\"prediction\":" + deep + "}\n");
  json e = read_eval(run);
  ASSERT_EQ(e["rows"].size(), 1u);
  ASSERT_EQ(e["warnings"].size(), 1u);
  EXPECT_EQ(e["warnings"][0], "1 lines of predictions.jsonl could not be read");

  write(run / "eval_results.json", R"({"task": "qa", "models": ["base"], "results": )" + deep + "}");
  e = read_eval(run);
  ASSERT_TRUE(e["found"].get<bool>());
  ASSERT_EQ(e["warnings"].size(), 1u);
  EXPECT_EQ(e["warnings"][0], "eval_results.json is not valid JSON");
  EXPECT_FALSE(e.contains("results"));
  fs::remove_all(run);
}
