// RunStore: the run folder files, line-at-a-time flushing, status transitions; Progress
// line formats.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "track/progress.h"
#include "track/run_store.h"
#include "util/error.h"
#include "util/file.h"

using namespace lorafit::track;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lorafit_track_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

std::vector<json> read_jsonl(const fs::path& p) {
  std::vector<json> rows;
  std::ifstream f(p);
  std::string line;
  while (std::getline(f, line)) rows.push_back(json::parse(line));
  return rows;
}

RunStoreOptions no_monitor() {
  RunStoreOptions o;
  o.system_period_s = 0;
  return o;
}

}  // namespace

TEST(TrackRunStore, WritesRunFolder) {
  auto dir = fresh_dir("folder");
  auto store = RunStore::create(dir, "learning_rate: 1e-4\n", json{{"learning_rate", 1e-4}},
                                collect_environment("0.1.0"), no_monitor());
  EXPECT_EQ(lorafit::read_file(dir / "config.yaml"), "learning_rate: 1e-4\n");
  EXPECT_EQ(json::parse(lorafit::read_file(dir / "config.json"))["learning_rate"], 1e-4);
  auto env = json::parse(lorafit::read_file(dir / "env.json"));
  EXPECT_EQ(env["lorafit_version"], "0.1.0");
  EXPECT_FALSE(env["command_line"].empty());  // this test binary's argv
  EXPECT_TRUE(env["gpus"].is_array());
  EXPECT_GT(env["cpu"]["cores"].get<int>(), 0);
  EXPECT_EQ(json::parse(lorafit::read_file(dir / "status.json"))["status"], "running");

  // Every call is visible in the file at once (flushed), before the store is closed.
  store->log_metrics(10, {{"loss", 1.5}, {"learning_rate", 9e-5}});
  auto rows = read_jsonl(dir / "metrics.jsonl");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["step"], 10);
  EXPECT_EQ(rows[0]["loss"], 1.5);
  EXPECT_EQ(rows[0]["learning_rate"], 9e-5);
  EXPECT_TRUE(rows[0]["time"].is_number());

  store->log_eval(10, {{"loss", 1.7}});
  store->log_eval(20, {{"eval_loss", 1.6}});
  rows = read_jsonl(dir / "metrics.jsonl");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1]["eval_loss"], 1.7);  // prefixed
  EXPECT_FALSE(rows[1].contains("loss"));
  EXPECT_EQ(rows[2]["eval_loss"], 1.6);  // not double-prefixed

  store->log_sample(0, 0.0, "before", 2, "问题 <b>?</b>", "answer\n", "truth");
  store->log_sample(30, 1.0, "epoch 1", 2, "问题 <b>?</b>", std::string("bad utf8 \xff end"), "truth");
  auto samples = read_jsonl(dir / "samples.jsonl");
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0]["tag"], "before");
  EXPECT_EQ(samples[0]["index"], 2);
  EXPECT_EQ(samples[0]["prompt"], "问题 <b>?</b>");
  EXPECT_EQ(samples[0]["answer"], "answer\n");
  EXPECT_EQ(samples[0]["ground_truth"], "truth");
  EXPECT_EQ(samples[1]["epoch"], 1.0);
  // Invalid UTF-8 from a model is replaced (U+FFFD), not an exception that ends the run.
  EXPECT_EQ(samples[1]["answer"], "bad utf8 \xEF\xBF\xBD end");

  store->update_status_fields({{"total_steps", 312}, {"status", "ignored"}});
  auto st = json::parse(lorafit::read_file(dir / "status.json"));
  EXPECT_EQ(st["total_steps"], 312);
  EXPECT_EQ(st["status"], "running");
  store->set_status(RunStatus::failed, "loss became NaN");
  st = json::parse(lorafit::read_file(dir / "status.json"));
  EXPECT_EQ(st["status"], "failed");
  EXPECT_EQ(st["error"], "loss became NaN");
  EXPECT_TRUE(st["end_time"].is_number());
  store.reset();
  fs::remove_all(dir);
}

TEST(TrackRunStore, FreshRunTruncatesResumeAppends) {
  auto dir = fresh_dir("resume");
  {
    auto s = RunStore::create(dir, "", json::object(), json::object(), no_monitor());
    s->log_metrics(1, {{"loss", 2.0}});
    s->log_metrics(2, {{"loss", 1.9}});
  }
  double start = json::parse(lorafit::read_file(dir / "status.json"))["start_time"];
  {
    auto o = no_monitor();
    o.resume = true;
    auto s = RunStore::create(dir, "", json::object(), json::object(), o);
    s->log_metrics(3, {{"loss", 1.8}});
  }
  EXPECT_EQ(read_jsonl(dir / "metrics.jsonl").size(), 3u);
  EXPECT_EQ(json::parse(lorafit::read_file(dir / "status.json"))["start_time"].get<double>(), start);
  { auto s = RunStore::create(dir, "", json::object(), json::object(), no_monitor()); }
  EXPECT_EQ(read_jsonl(dir / "metrics.jsonl").size(), 0u);
  fs::remove_all(dir);
}

// A resume from checkpoint-2 drops the rows a run logged after step 2 (they are logged again)
// and a last line cut by a kill; before, steps 3..4 appeared twice and charts went backwards.
TEST(TrackRunStore, ResumeDropsRowsPastTheCheckpoint) {
  auto dir = fresh_dir("resume_step");
  {
    auto s = RunStore::create(dir, "", json::object(), json::object(), no_monitor());
    for (int k = 1; k <= 4; ++k) s->log_metrics(k, {{"loss", 2.0 - 0.1 * k}});
    s->log_eval(4, {{"eval_loss", 1.5}});
    s->log_sample(2, 0.5, "step 2", 0, "q", "a2", "t");
    s->log_sample(4, 1.0, "epoch 1", 0, "q", "a4", "t");
  }
  { std::ofstream(dir / "metrics.jsonl", std::ios::app) << R"({"step": 5, "loss")"; }  // killed mid-write
  {
    auto o = no_monitor();
    o.resume = true;
    o.resume_step = 2;
    auto s = RunStore::create(dir, "", json::object(), json::object(), o);
    s->log_metrics(3, {{"loss", 1.7}});
  }
  std::vector<int> steps;
  for (const json& r : read_jsonl(dir / "metrics.jsonl")) steps.push_back(r["step"].get<int>());
  EXPECT_EQ(steps, (std::vector<int>{1, 2, 3}));
  const auto samples = read_jsonl(dir / "samples.jsonl");
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0]["answer"], "a2");
  fs::remove_all(dir);
}

TEST(TrackRunStore, InterruptedStatus) {
  auto dir = fresh_dir("interrupted");
  auto s = RunStore::create(dir, "", json::object(), json::object(), no_monitor());
  s->set_status(RunStatus::interrupted, "interrupted by SIGINT after step 3/8");
  const json st = json::parse(lorafit::read_file(dir / "status.json"));
  EXPECT_EQ(st["status"], "interrupted");
  EXPECT_EQ(st["error"], "interrupted by SIGINT after step 3/8");
  EXPECT_TRUE(st["end_time"].is_number());
  s.reset();
  fs::remove_all(dir);
}

TEST(TrackRunStore, SystemMonitorRows) {
  auto dir = fresh_dir("system");
  RunStoreOptions o;
  o.system_period_s = 0.05;
  auto s = RunStore::create(dir, "", json::object(), json::object(), o);
  // Wait for two periodic rows (a condition, not a fixed sleep: on a loaded machine the
  // monitor's thread may run late); a minute is far beyond any scheduling delay.
  const auto complete_rows = [&] {
    std::ifstream f(dir / "system.jsonl");
    return std::count(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>(), '\n');
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (complete_rows() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_GE(complete_rows(), 2) << "the monitor wrote no rows in 60 s";
  s.reset();  // stops the monitor, which writes a last row
  auto rows = read_jsonl(dir / "system.jsonl");
  ASSERT_GE(rows.size(), 3u);
  for (const auto& r : rows) {
    EXPECT_GT(r["rss_bytes"].get<long long>(), 1 << 20);  // a process with a loaded gtest is > 1 MiB
    EXPECT_GT(r["host_mem_total_bytes"].get<long long>(), r["host_mem_used_bytes"].get<long long>());
    EXPECT_GT(r["disk_total_bytes"].get<long long>(), 0);
    EXPECT_TRUE(r["gpus"].is_array());
  }
  // cpu_percent needs a /proc/stat tick (10 ms) between two rows: the periodic rows (50 ms
  // apart) have it; the last row, written at stop right after one, may not.
  int with_cpu = 0;
  for (const auto& r : rows) {
    if (!r.contains("cpu_percent")) continue;
    ++with_cpu;
    EXPECT_GE(r["cpu_percent"].get<double>(), 0.0);
    EXPECT_LE(r["cpu_percent"].get<double>(), 100.0);
  }
  EXPECT_GE(with_cpu, 2);  // the first row (since boot) and a periodic one
  fs::remove_all(dir);
}

TEST(TrackRunStore, CreateFailsWithPath) {
  try {
    RunStore::create("/proc/lorafit-cannot-create/run", "", json::object(), json::object(), no_monitor());
    FAIL() << "expected an error";
  } catch (const lorafit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/lorafit-cannot-create/run"), std::string::npos) << e.what();
  }
}

TEST(TrackProgress, PlainLine) {
  Progress p("train", 312, stderr, Progress::Mode::quiet);
  p.update(78, {1.23456, 9.1e-5, 812.4});
  std::string line = p.render_line(false);
  // elapsed and ETA depend on the clock; everything else is exact.
  std::regex re(R"(train step 78/312 \(25%\)  loss 1\.2346  lr 9\.10e-05  812 tok/s  elapsed \d\d:\d\d  ETA \d\d:\d\d)");
  EXPECT_TRUE(std::regex_match(line, re)) << line;
}

TEST(TrackProgress, TtyBar) {
  Progress p("train", 8, stderr, Progress::Mode::quiet);
  p.update(4, {});
  std::string line = p.render_line(true);
  // Half of the bar is full: the bar width is between 10 and 40 cells, half of it "█".
  auto bar_start = line.find('|'), bar_end = line.rfind('|');
  ASSERT_NE(bar_start, bar_end);
  std::string bar = line.substr(bar_start + 1, bar_end - bar_start - 1);
  size_t full = 0;
  for (size_t i = 0; (i = bar.find("█", i)) != std::string::npos; i += 3) ++full;
  size_t spaces = static_cast<size_t>(std::count(bar.begin(), bar.end(), ' '));
  EXPECT_EQ(full, spaces) << line;
  EXPECT_NE(line.find(" 4/8"), std::string::npos) << line;
  EXPECT_NE(line.find("50%"), std::string::npos) << line;
}

// Plain mode (not a terminal): the first and last steps print, a message line stands for the
// step it was printed at, and no carriage return or escape code is written.
TEST(TrackProgress, PlainModeLines) {
  const fs::path p = fresh_dir("progress_plain");
  std::FILE* f = std::fopen(p.c_str(), "w+");
  ASSERT_NE(f, nullptr);
  {
    Progress bar("train", 4, f, Progress::Mode::plain, 3600.0);
    bar.set_resumed_from(1);  // a resumed run: steps 2..4 this session
    bar.update(2, {1.5, 1e-4, 100});  // first step of the session: printed
    bar.update(3, {1.4, 1e-4, 100});  // within plain_every_s: not printed
    bar.message("step 4/4 | loss 1.3");
    bar.update(4, {1.3, 1e-4, 100});  // the message line already showed step 4
    bar.finish();                     // nothing new to show
  }
  std::fflush(f);
  std::fclose(f);
  const std::string text = lorafit::read_file(p);
  fs::remove(p);
  EXPECT_EQ(text.find('\r'), std::string::npos) << text;
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  std::regex re(R"(train step 2/4 \(50%\)  loss 1\.5000  lr 1\.00e-04  100 tok/s  elapsed \d\d:\d\d  ETA \d\d:\d\d\nstep 4/4 \| loss 1\.3\n)");
  EXPECT_TRUE(std::regex_match(text, re)) << text;
}

TEST(TrackProgress, Durations) {
  EXPECT_EQ(format_duration(0), "00:00");
  EXPECT_EQ(format_duration(252), "04:12");
  EXPECT_EQ(format_duration(3723), "1:02:03");
  EXPECT_EQ(format_duration(-1), "--:--");
}
