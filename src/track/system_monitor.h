// SystemMonitor: a background thread appending one JSON row to system.jsonl every
// `period_s` seconds (and once at start), each flushed:
//   {"time": unix s, "cpu_percent": host CPU busy % since the last row (absent when no
//    /proc/stat tick, 10 ms, has passed since it),
//    "process_cpu_percent": this process (100 = one core), "rss_bytes", "host_mem_used_bytes",
//    "host_mem_total_bytes", "disk_free_bytes", "disk_total_bytes" (of the run folder's disk),
//    "gpus": [{"index","util_percent","mem_used_bytes","mem_total_bytes","power_w","temp_c"}]}
// GPU fields come from NVML loaded at run time (nvml.h); without a GPU "gpus" is [].
#pragma once
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

namespace lorafit::track {

namespace fs = std::filesystem;

class SystemMonitor {
 public:
  // Opens `jsonl_path` for appending; throws lorafit::Error naming it if it cannot.
  SystemMonitor(const fs::path& jsonl_path, double period_s);
  ~SystemMonitor();  // stop()
  SystemMonitor(const SystemMonitor&) = delete;
  SystemMonitor& operator=(const SystemMonitor&) = delete;

  void stop();  // writes a last row, joins the thread; idempotent

  // One row now (what the thread writes). Safe to call from any thread.
  nlohmann::json sample();

 private:
  void loop();
  fs::path disk_path_;
  std::FILE* out_ = nullptr;
  double period_s_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  std::mutex sample_mu_;  // guards the previous counters below
  // previous CPU counters for the percentages
  unsigned long long prev_busy_ = 0, prev_total_ = 0;
  double prev_proc_cpu_s_ = 0, prev_wall_s_ = 0;
};

}  // namespace lorafit::track
