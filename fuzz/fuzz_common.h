// Shared by the libFuzzer targets. Every target feeds one input to one parser the way the
// command line does; lorafit::Error (a one-line refusal) is the expected outcome for bad
// input. Anything else — a sanitizer report, a signal, an uncaught exception of another type
// (a raw nlohmann/yaml-cpp/std exception would reach the user as library text) — is a bug.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "util/error.h"

namespace lorafit::fuzz {

// The input as a file without touching the disk: a memfd, opened through /proc/self/fd.
class MemFile {
 public:
  MemFile(const uint8_t* data, size_t size) {
    fd_ = ::memfd_create("lorafit-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) std::abort();
    for (size_t off = 0; off < size;) {
      const ssize_t n = ::write(fd_, data + off, size - off);
      if (n <= 0) std::abort();
      off += static_cast<size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// A folder (under TMPDIR, one per process) holding `name` with the input, for parsers that
// take a folder (adapter_config.json).
inline std::filesystem::path folder_with(const std::string& name, const uint8_t* data, size_t size) {
  static const std::filesystem::path dir = [] {
    std::filesystem::path d = std::filesystem::temp_directory_path() / ("lorafit-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  FILE* f = std::fopen((dir / name).c_str(), "wb");
  if (!f || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) std::abort();
  return dir;
}

// Runs `f` on `input`; a lorafit::Error is a refusal, not a bug. Its message must be one line
// (no raw multi-line library text) and must not carry nlohmann's or yaml-cpp's own tags, unless
// the input itself holds that text (messages quote what they could not read). A bad refusal
// is printed before the trap, so a crash report says which message it was.
template <class F>
void refuse_or_accept(std::string_view input, F&& f) {
  try {
    f();
  } catch (const Error& e) {
    const std::string m = e.what();
    const auto library_text = [&](std::string_view tag) {
      return m.find(tag) != std::string::npos && input.find(tag) == std::string_view::npos;
    };
    if (m.find('\n') != std::string::npos || library_text("[json.exception") || library_text("yaml-cpp:")) {
      std::fprintf(stderr, "fuzz: bad refusal (not one line of lorafit's own words): %s\n", m.c_str());
      __builtin_trap();
    }
  }
}

// The input bytes as text.
inline std::string_view as_text(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

}  // namespace lorafit::fuzz
