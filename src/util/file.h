// Files: read-only memory maps, whole-file reads, and atomic writes (temp name, flush,
// fsync, rename) so that no reader ever sees half an output. POSIX lives in file.cpp only.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace lorafit {

namespace fs = std::filesystem;

// A read-only mapping of a whole file. Move-only; unmaps on destruction.
class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const fs::path& path);  // throws Error naming the path
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const fs::path& path() const { return path_; }
  // True once a read of this mapping faulted (the file shrank under it; the page read as zeros).
  bool faulted() const;

 private:
  fs::path path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  int slot_ = -1;  // in the SIGBUS guard's table (file.cpp)
};

// Throws Error naming the first live mapping whose file was truncated (a read faulted with
// SIGBUS, caught by the guard every MappedFile installs) or changed in place (size or mtime
// differ; a file replaced by rename is fine: the mapping keeps the old one). Long loops call
// it once per step, commands once at the end, so a changed model never ends a run silently.
void check_mapped_files();

std::string read_file(const fs::path& path);  // throws Error naming the path

// Writes `bytes` to `path` atomically: `path.tmp.<pid>`, fsync, rename.
void write_file_atomic(const fs::path& path, std::string_view bytes);

// Streaming version of the same for large outputs: write(), then commit(); destroying an
// uncommitted AtomicFile removes the temporary file.
class AtomicFile {
 public:
  explicit AtomicFile(const fs::path& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  void commit();  // flush, fsync, rename; throws Error (e.g. disk full) leaving `path` untouched

 private:
  fs::path path_, tmp_;
  int fd_ = -1;
};

}  // namespace lorafit
