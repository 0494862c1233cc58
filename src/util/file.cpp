#include "util/file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

#include "util/error.h"

namespace lorafit {

// Guard over every live mapping: a file truncated while mapped makes the next read of a page
// past its new end raise SIGBUS, which would kill the process with no message and leave a run
// "running". The handler maps a zero page over the faulting page (so the read completes),
// marks the mapping, and check_mapped_files() turns that into an Error at the next step.
namespace {

constexpr int kMaxMaps = 4096;  // live mappings (shards, adapters, checkpoints) at once

struct MapSlot {
  std::atomic<uintptr_t> begin{0};  // 0: free
  std::atomic<size_t> size{0};
  std::atomic<bool> faulted{false};
  // Only touched under g_maps_mu, never by the handler:
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t file_size = 0;
  struct timespec mtime {};
};

MapSlot g_maps[kMaxMaps];
std::mutex g_maps_mu;
std::atomic<bool> g_handler_installed{false};
struct sigaction g_prev_sigbus {};
uintptr_t g_page_size = 4096;

void on_sigbus(int sig, siginfo_t* info, void* ctx) {
  const auto a = reinterpret_cast<uintptr_t>(info->si_addr);
  for (MapSlot& m : g_maps) {
    const uintptr_t b = m.begin.load(std::memory_order_acquire);
    if (b == 0 || a < b || a >= b + m.size.load(std::memory_order_relaxed)) continue;
    void* page = reinterpret_cast<void*>(a & ~(g_page_size - 1));
    if (::mmap(page, g_page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
      m.faulted.store(true, std::memory_order_relaxed);
      return;  // the faulting read is retried and sees zeros
    }
    break;
  }
  // Not one of our mappings (or no page could be mapped): what would have happened anyway.
  if (g_prev_sigbus.sa_flags & SA_SIGINFO) {
    if (g_prev_sigbus.sa_sigaction) return g_prev_sigbus.sa_sigaction(sig, info, ctx);
  } else if (g_prev_sigbus.sa_handler != SIG_DFL && g_prev_sigbus.sa_handler != SIG_IGN) {
    return g_prev_sigbus.sa_handler(sig);
  }
  ::signal(SIGBUS, SIG_DFL);  // returning re-runs the read, which now ends the process
}

void install_sigbus_handler() {
  if (g_handler_installed.exchange(true)) return;
  g_page_size = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  struct sigaction sa {};
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGBUS, &sa, &g_prev_sigbus);
}

int register_map(const uint8_t* data, size_t size, const fs::path& path, const struct stat& st) {
  install_sigbus_handler();
  std::lock_guard<std::mutex> lock(g_maps_mu);
  for (int i = 0; i < kMaxMaps; ++i) {
    MapSlot& m = g_maps[i];
    if (m.begin.load(std::memory_order_relaxed) != 0) continue;
    m.path = path.string();
    m.dev = st.st_dev;
    m.ino = st.st_ino;
    m.file_size = st.st_size;
    m.mtime = st.st_mtim;
    m.faulted.store(false, std::memory_order_relaxed);
    m.size.store(size, std::memory_order_relaxed);
    m.begin.store(reinterpret_cast<uintptr_t>(data), std::memory_order_release);
    return i;
  }
  return -1;  // more mappings than slots: this one is unguarded (SIGBUS ends the process)
}

void unregister_map(int slot) {
  if (slot < 0) return;
  std::lock_guard<std::mutex> lock(g_maps_mu);
  g_maps[slot].begin.store(0, std::memory_order_release);
}

[[noreturn]] void throw_changed(const MapSlot& m, const char* how) {
  throw Error("{}: the file was {} while lorafit was reading it; stop whatever writes it, restore the file "
              "and start again (a training run resumes with --resume_from_checkpoint latest)",
              m.path, how);
}

}  // namespace

void check_mapped_files() {
  std::lock_guard<std::mutex> lock(g_maps_mu);
  for (const MapSlot& m : g_maps) {
    if (m.begin.load(std::memory_order_acquire) == 0) continue;
    if (m.faulted.load(std::memory_order_relaxed)) throw_changed(m, "truncated (reading it past its new end faulted)");
    struct stat st {};
    // A file replaced by rename (a new inode) leaves our mapping of the old one intact.
    if (::stat(m.path.c_str(), &st) != 0 || st.st_dev != m.dev || st.st_ino != m.ino) continue;
    if (st.st_size != m.file_size) throw_changed(m, fmt::format("truncated or extended ({} bytes, now {})", m.file_size, st.st_size).c_str());
    if (st.st_mtim.tv_sec != m.mtime.tv_sec || st.st_mtim.tv_nsec != m.mtime.tv_nsec)
      throw_changed(m, "modified in place");
  }
}

bool MappedFile::faulted() const {
  return slot_ >= 0 && g_maps[slot_].faulted.load(std::memory_order_relaxed);
}

MappedFile::MappedFile(const fs::path& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("{}: cannot open: {}", path.string(), std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw Error("{}: cannot stat: {}", path.string(), std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw Error("{}: is a directory, expected a file", path.string());
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error("{}: cannot map: {}", path.string(), std::strerror(e));
    }
    data_ = static_cast<const uint8_t*>(p);
    slot_ = register_map(data_, size_, path, st);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  unregister_map(slot_);
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : path_(std::move(o.path_)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)),
      slot_(std::exchange(o.slot_, -1)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    unregister_map(slot_);
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    path_ = std::move(o.path_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    slot_ = std::exchange(o.slot_, -1);
  }
  return *this;
}

std::string read_file(const fs::path& path) {
  MappedFile m(path);
  std::string out(reinterpret_cast<const char*>(m.data()), m.size());
  if (m.faulted()) throw Error("{}: the file was truncated while lorafit was reading it; restore it and try again", path.string());
  return out;
}

AtomicFile::AtomicFile(const fs::path& path) : path_(path) {
  tmp_ = path;
  tmp_ += ".tmp." + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("{}: cannot create: {}", tmp_.string(), std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t n) {
  LF_CHECK(fd_ >= 0, "write after commit");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw Error("{}: write failed: {}", path_.string(), std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void AtomicFile::commit() {
  LF_CHECK(fd_ >= 0, "commit twice");
  if (::fsync(fd_) != 0) throw Error("{}: fsync failed: {}", path_.string(), std::strerror(errno));
  int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) {
    ::unlink(tmp_.c_str());
    throw Error("{}: close failed: {}", path_.string(), std::strerror(errno));
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp_.c_str());
    throw Error("{}: rename failed: {}", path_.string(), std::strerror(e));
  }
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}

}  // namespace lorafit
