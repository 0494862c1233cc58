#include "track/system_monitor.h"

#include "track/nvml.h"
#include "util/error.h"
#include "util/sysinfo.h"

namespace lorafit::track {

SystemMonitor::SystemMonitor(const fs::path& jsonl_path, double period_s)
    : disk_path_(jsonl_path.parent_path().empty() ? fs::path(".") : jsonl_path.parent_path()),
      period_s_(period_s) {
  out_ = std::fopen(jsonl_path.c_str(), "ab");
  if (!out_) throw Error("cannot open {} for appending: check the run folder is writable", jsonl_path.string());
  if (auto t = sys::host_cpu_times()) prev_busy_ = t->busy, prev_total_ = t->total;
  prev_proc_cpu_s_ = sys::process_cpu_seconds();
  prev_wall_s_ = sys::unix_time();
  thread_ = std::thread([this] { loop(); });
}

SystemMonitor::~SystemMonitor() { stop(); }

void SystemMonitor::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (out_) std::fclose(out_), out_ = nullptr;
}

nlohmann::json SystemMonitor::sample() {
  std::lock_guard sample_lock(sample_mu_);
  nlohmann::json row;
  double now = sys::unix_time();
  row["time"] = now;
  if (auto t = sys::host_cpu_times()) {
    unsigned long long dt = t->total - prev_total_, db = t->busy - prev_busy_;
    if (dt > 0) row["cpu_percent"] = 100.0 * static_cast<double>(db) / static_cast<double>(dt);
    prev_busy_ = t->busy, prev_total_ = t->total;
  }
  double cpu_s = sys::process_cpu_seconds();
  if (now > prev_wall_s_) row["process_cpu_percent"] = 100.0 * (cpu_s - prev_proc_cpu_s_) / (now - prev_wall_s_);
  prev_proc_cpu_s_ = cpu_s, prev_wall_s_ = now;
  row["rss_bytes"] = sys::process_rss_bytes();
  auto mem = sys::host_memory();
  if (mem.total_bytes > 0) {
    row["host_mem_total_bytes"] = mem.total_bytes;
    row["host_mem_used_bytes"] = mem.total_bytes - mem.available_bytes;
  }
  auto disk = sys::disk_usage(disk_path_);
  if (disk.total_bytes > 0) {
    row["disk_total_bytes"] = disk.total_bytes;
    row["disk_free_bytes"] = disk.free_bytes;
  }
  auto gpus = nlohmann::json::array();
  for (const auto& g : Nvml::instance().read()) {
    gpus.push_back({{"index", g.index}, {"util_percent", g.util_percent}, {"mem_used_bytes", g.mem_used_bytes},
                    {"mem_total_bytes", g.mem_total_bytes}, {"power_w", g.power_w}, {"temp_c", g.temp_c}});
  }
  row["gpus"] = std::move(gpus);
  return row;
}

void SystemMonitor::loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    lock.unlock();
    std::string line = sample().dump() + "\n";
    std::fwrite(line.data(), 1, line.size(), out_);
    std::fflush(out_);
    lock.lock();
    if (stopping_) return;
    cv_.wait_for(lock, std::chrono::duration<double>(period_s_), [this] { return stopping_; });
    if (stopping_) {
      // A last row so the chart ends where the run ended.
      lock.unlock();
      std::string last = sample().dump() + "\n";
      std::fwrite(last.data(), 1, last.size(), out_);
      std::fflush(out_);
      return;
    }
  }
}

}  // namespace lorafit::track
