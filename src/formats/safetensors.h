// safetensors: memory-mapped zero-copy reader with full validation, a writer byte-identical
// to the reference (Python `safetensors`), and sharded checkpoints through
// model.safetensors.index.json. Format: docs/SPEC.md "safetensors".
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tensor/tensor.h"
#include "util/file.h"

namespace lorafit {

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const uint8_t* data;  // into the mapping
  size_t nbytes;
  std::string file;     // the file it lives in (for messages)
  Tensor view() const;  // CPU view; requires shape rank ≤ 4
};

// One .safetensors file. Validates everything on open; throws Error naming the file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const fs::path& path);
  // Parses `bytes` (not owned, must outlive this) named `label` in messages; for tests/fuzzing.
  static SafetensorsFile from_bytes(std::span<const uint8_t> bytes, std::string label);

  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in header order
  const TensorInfo* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const fs::path& path() const { return path_; }

 private:
  SafetensorsFile() = default;
  void parse(std::span<const uint8_t> bytes, const std::string& label);
  fs::path path_;
  std::shared_ptr<MappedFile> map_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

// Every tensor of a model folder: model.safetensors, or the shards named by
// model.safetensors.index.json (each shard checked against the index).
class SafetensorsSet {
 public:
  explicit SafetensorsSet(const fs::path& dir_or_file);
  const TensorInfo* find(const std::string& name) const;
  std::vector<const TensorInfo*> all() const;  // sorted by name

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> by_name_;
};

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::span<const uint8_t> bytes;
};

// Serialises exactly as Python safetensors does: tensors sorted by alignment (descending)
// then name, compact JSON header padded with spaces to a multiple of 8. Byte-identical to
// Python for at most one metadata key: Python writes __metadata__ in Rust HashMap order,
// which changes from run to run; we write it sorted. Empty `metadata` writes no
// __metadata__ (Python's metadata=None).
std::string safetensors_serialize(const std::vector<TensorToWrite>& tensors,
                                  const std::map<std::string, std::string>& metadata);
// serialize + atomic write
void safetensors_save(const fs::path& path, const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata);

}  // namespace lorafit
