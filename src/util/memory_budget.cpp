// memory_budget(): what the memory pre-flight may plan with inside containers. A process in
// a 1 GiB cgroup on a 24 GiB host sees 20 GiB in MemAvailable and is OOM-killed at 1 GiB, so
// the cgroup limits (v1 and v2, the tightest up the hierarchy) and RLIMIT_AS count too.
#include <sys/resource.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "util/sysinfo.h"

namespace lorafit::sys {

namespace fs = std::filesystem;

namespace {

// The first whitespace-separated number of a file ("max" and absent files give -1).
int64_t read_number(const fs::path& p) {
  std::ifstream f(p);
  std::string tok;
  if (!(f >> tok) || tok == "max") return -1;
  try {
    return std::stoll(tok);
  } catch (const std::exception&) {
    return -1;
  }
}

// The value of `key` in a "key value" file (memory.stat, /proc/meminfo, status), or -1.
int64_t read_keyed(const fs::path& p, const std::string& key) {
  std::ifstream f(p);
  std::string line;
  while (std::getline(f, line)) {  // line by line: /proc/self/status has text values too ("Name: bash")
    std::istringstream in(line);
    std::string k;
    long long v = 0;
    if (in >> k && k == key && in >> v) return v;
  }
  return -1;
}

// `rel` and each of its ancestors below `mount`, deepest first, plus `mount` itself.
std::vector<fs::path> hierarchy(const fs::path& mount, const std::string& rel) {
  std::vector<fs::path> out;
  fs::path r = fs::path(rel).relative_path();
  while (!r.empty()) {
    out.push_back(mount / r);
    r = r.parent_path();
  }
  out.push_back(mount);
  return out;
}

std::string gib(int64_t b) { return fmt::format("{:.2f} GiB", static_cast<double>(b) / (1024.0 * 1024.0 * 1024.0)); }

}  // namespace

MemoryBudget memory_budget(const fs::path& proc, const fs::path& cgroup_root) {
  MemoryBudget b;
  auto consider = [&](int64_t avail, const std::string& source) {
    if (avail < 0) avail = 0;  // a group already over its limit has nothing left
    if (b.available_bytes < 0 || avail < b.available_bytes) b.available_bytes = avail, b.source = source;
  };
  if (int64_t kb = read_keyed(proc / "meminfo", "MemAvailable:"); kb >= 0)
    consider(kb * 1024, "MemAvailable in /proc/meminfo");

  std::ifstream cg(proc / "self" / "cgroup");
  std::string line;
  while (std::getline(cg, line)) {  // "id:controllers:path"
    const size_t c1 = line.find(':'), c2 = c1 == std::string::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string::npos) continue;
    const std::string controllers = line.substr(c1 + 1, c2 - c1 - 1), rel = line.substr(c2 + 1);
    if (line.compare(0, c1, "0") == 0 && controllers.empty()) {  // v2 (unified; "unified/" in hybrid mode)
      for (const fs::path& mount : {cgroup_root, cgroup_root / "unified"})
        for (const fs::path& d : hierarchy(mount, rel)) {
          const int64_t limit = read_number(d / "memory.max");
          if (limit < 0) continue;
          const int64_t usage = read_number(d / "memory.current");
          const int64_t cache = read_keyed(d / "memory.stat", "inactive_file");
          consider(limit - std::max<int64_t>(0, usage) + std::max<int64_t>(0, cache),
                   fmt::format("cgroup v2 memory.max of {} ({})", d.string(), gib(limit)));
        }
    } else if (("," + controllers + ",").find(",memory,") != std::string::npos) {  // v1
      for (const fs::path& d : hierarchy(cgroup_root / "memory", rel)) {
        const int64_t limit = read_number(d / "memory.limit_in_bytes");
        if (limit < 0 || limit >= (int64_t{1} << 62)) continue;  // 9223372036854771712: no limit
        const int64_t usage = read_number(d / "memory.usage_in_bytes");
        const int64_t cache = read_keyed(d / "memory.stat", "total_inactive_file");
        consider(limit - std::max<int64_t>(0, usage) + std::max<int64_t>(0, cache),
                 fmt::format("cgroup v1 memory.limit_in_bytes of {} ({})", d.string(), gib(limit)));
      }
    }
  }

  struct rlimit rl {};
  if (::getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    const int64_t vm_kb = read_keyed(proc / "self" / "status", "VmSize:");
    consider(static_cast<int64_t>(rl.rlim_cur) - std::max<int64_t>(0, vm_kb) * 1024,
             fmt::format("RLIMIT_AS (ulimit -v) of {}", gib(static_cast<int64_t>(rl.rlim_cur))));
  }
  return b;
}

}  // namespace lorafit::sys
