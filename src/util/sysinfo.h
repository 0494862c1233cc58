// Platform queries behind small functions (docs/DESIGN.md §4): process and host resources,
// terminal detection, the command line, run-time loading of shared libraries. Linux
// implementations live in sysinfo.cpp; a Windows port replaces that one file.
// Every query that can fail returns -1 / empty / nullopt rather than throwing: monitoring
// must never stop a training run.
#pragma once
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace lorafit::sys {

double unix_time();  // seconds since the epoch, sub-second precision

// Host CPU counters (all cores), in clock ticks: busy = total - idle - iowait.
struct CpuTimes {
  unsigned long long busy = 0, total = 0;
};
std::optional<CpuTimes> host_cpu_times();
double process_cpu_seconds();  // user + system time of this process
int64_t process_rss_bytes();   // resident set size, -1 if unknown

struct HostMemory {
  int64_t total_bytes = -1, available_bytes = -1;
};
HostMemory host_memory();

// Memory this process may still take: the smallest of MemAvailable (/proc/meminfo), each
// cgroup memory limit above it (v2 memory.max or v1 memory.limit_in_bytes, minus the group's
// usage less its reclaimable page cache, up the hierarchy) and RLIMIT_AS minus the address
// space in use. `source` names the one that bounded it ("cgroup v2 memory.max of
// /sys/fs/cgroup/x (1.00 GiB)"). The roots are parameters so tests can give fake trees.
struct MemoryBudget {
  int64_t available_bytes = -1;  // -1: nothing known
  std::string source;
};
MemoryBudget memory_budget(const std::filesystem::path& proc = "/proc",
                           const std::filesystem::path& cgroup_root = "/sys/fs/cgroup");

struct DiskUsage {
  int64_t total_bytes = -1, free_bytes = -1;  // free = available to unprivileged users
};
DiskUsage disk_usage(const std::filesystem::path& path);

std::string cpu_model();  // "AMD EPYC 7763 64-Core Processor", or "" if unknown
int cpu_count();          // logical CPUs online
// The CPU's bf16 instruction sets from /proc/cpuinfo ("avx512_bf16 amx_bf16"), "" if none.
std::string cpu_bf16_flags();
std::string hostname();
std::string os_description();                // "Linux 6.1.0-18-amd64 x86_64"
std::vector<std::string> process_command_line();  // argv of this process
std::filesystem::path executable_path();          // this program's file ("" if unknown)
int process_id();

bool is_terminal(std::FILE* f);
int terminal_columns(std::FILE* f);  // 80 if unknown

// A shared library loaded at run time (dlopen). Move-only; closes on destruction.
class DynamicLibrary {
 public:
  DynamicLibrary() = default;
  explicit DynamicLibrary(const char* name);  // empty (loaded() false) if it cannot be loaded
  ~DynamicLibrary();
  DynamicLibrary(DynamicLibrary&& o) noexcept : handle_(o.handle_) { o.handle_ = nullptr; }
  DynamicLibrary& operator=(DynamicLibrary&& o) noexcept;
  DynamicLibrary(const DynamicLibrary&) = delete;
  DynamicLibrary& operator=(const DynamicLibrary&) = delete;
  bool loaded() const { return handle_ != nullptr; }
  void* symbol(const char* name) const;  // nullptr if absent

 private:
  void* handle_ = nullptr;
};

}  // namespace lorafit::sys
