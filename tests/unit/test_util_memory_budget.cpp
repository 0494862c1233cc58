// The memory pre-flight plans with the tightest of MemAvailable, the cgroup limits (v1 and v2,
// up the hierarchy, usage minus reclaimable cache) and RLIMIT_AS, and names the one it used.
// Fake /proc and /sys/fs/cgroup trees stand in for a container.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "util/sysinfo.h"

namespace fs = std::filesystem;
using lorafit::sys::memory_budget;

namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

struct FakeRoot {
  fs::path dir = fs::temp_directory_path() / ("lorafit-membudget-" + std::to_string(::getpid()) + "-" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
  FakeRoot() { fs::create_directories(dir); }
  ~FakeRoot() { fs::remove_all(dir); }
  void write(const std::string& rel, const std::string& text) const {
    fs::create_directories((dir / rel).parent_path());
    std::ofstream(dir / rel) << text;
  }
  fs::path proc() const { return dir / "proc"; }
  fs::path cg() const { return dir / "cgroup"; }
};

}  // namespace

TEST(MemoryBudget, HostOnly) {
  FakeRoot r;
  r.write("proc/meminfo", "MemTotal: 25165824 kB\nMemAvailable: 20971520 kB\n");
  r.write("proc/self/cgroup", "0::/\n");
  const auto b = memory_budget(r.proc(), r.cg());
  EXPECT_EQ(b.available_bytes, 20 * kGiB);
  EXPECT_EQ(b.source, "MemAvailable in /proc/meminfo");
}

TEST(MemoryBudget, CgroupV2LimitBelowTheHost) {
  // The case of issue 19: 20 GiB "available" inside a 1 GiB container.
  FakeRoot r;
  r.write("proc/meminfo", "MemAvailable: 20971520 kB\n");
  r.write("proc/self/cgroup", "0::/job/step\n");
  r.write("cgroup/job/step/memory.max", "max\n");                    // no limit here...
  r.write("cgroup/job/memory.max", std::to_string(kGiB) + "\n");     // ...but the parent has one
  r.write("cgroup/job/memory.current", std::to_string(300 << 20) + "\n");
  r.write("cgroup/job/memory.stat", "anon 100\ninactive_file " + std::to_string(100 << 20) + "\n");
  const auto b = memory_budget(r.proc(), r.cg());
  EXPECT_EQ(b.available_bytes, kGiB - (300 << 20) + (100 << 20));  // limit − (usage − reclaimable cache)
  EXPECT_EQ(b.source, "cgroup v2 memory.max of " + (r.cg() / "job").string() + " (1.00 GiB)");
}

TEST(MemoryBudget, CgroupV1Limit) {
  FakeRoot r;
  r.write("proc/meminfo", "MemAvailable: 20971520 kB\n");
  r.write("proc/self/cgroup", "5:cpu,cpuacct:/x\n4:memory:/docker/abc\n0::/\n");
  r.write("cgroup/memory/docker/abc/memory.limit_in_bytes", std::to_string(2 * kGiB) + "\n");
  r.write("cgroup/memory/docker/abc/memory.usage_in_bytes", std::to_string(kGiB) + "\n");
  r.write("cgroup/memory/docker/abc/memory.stat", "cache 5\ntotal_inactive_file 0\n");
  r.write("cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");  // the root: unlimited
  const auto b = memory_budget(r.proc(), r.cg());
  EXPECT_EQ(b.available_bytes, kGiB);
  EXPECT_EQ(b.source, "cgroup v1 memory.limit_in_bytes of " + (r.cg() / "memory/docker/abc").string() + " (2.00 GiB)");
}

TEST(MemoryBudget, GroupOverItsLimitHasNothingLeft) {
  FakeRoot r;
  r.write("proc/meminfo", "MemAvailable: 20971520 kB\n");
  r.write("proc/self/cgroup", "0::/\n");
  r.write("cgroup/memory.max", std::to_string(kGiB) + "\n");
  r.write("cgroup/memory.current", std::to_string(2 * kGiB) + "\n");
  EXPECT_EQ(memory_budget(r.proc(), r.cg()).available_bytes, 0);
}

TEST(MemoryBudget, AddressSpaceLimitInAChild) {
  // RLIMIT_AS is per process: set it in a child and report back through the exit code.
  FakeRoot r;
  r.write("proc/meminfo", "MemAvailable: 20971520 kB\n");
  r.write("proc/self/cgroup", "0::/\n");
  r.write("proc/self/status", "Name: x\nVmSize:   524288 kB\n");  // 0.5 GiB in use
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    rlimit rl{static_cast<rlim_t>(2 * kGiB), static_cast<rlim_t>(2 * kGiB)};
    ::setrlimit(RLIMIT_AS, &rl);
    const auto b = memory_budget(r.proc(), r.cg());
    const bool ok = b.available_bytes == 2 * kGiB - kGiB / 2 && b.source == "RLIMIT_AS (ulimit -v) of 2.00 GiB";
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
