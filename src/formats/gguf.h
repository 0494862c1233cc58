// GGUF v3 container writer (llama.cpp's model file; spec: ggml docs/gguf.md, writer as in
// gguf-py's GGUFWriter):
//   "GGUF" u32 version=3, u64 n_tensors, u64 n_kv,
//   n_kv × (string key, u32 value type, value),
//   n_tensors × (string name, u32 n_dims, u64 dims[n_dims] (ggml order: dims[0] = row length),
//                u32 ggml type, u64 offset from the data start, a multiple of the alignment),
//   zero padding to the alignment (32), then each tensor's bytes, each padded to 32.
// Strings are u64 length + UTF-8 bytes; everything little-endian.
// The writer streams: the header and tensor table are written first, then each tensor's bytes
// come from a callback one tensor at a time, into an AtomicFile (temp name, fsync, rename).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/file.h"

namespace lorafit {

// ggml tensor types written by lorafit (numbers as in ggml.h).
enum class GgmlType : uint32_t { F32 = 0, F16 = 1, Q8_0 = 8, BF16 = 30 };
std::string_view ggml_type_name(GgmlType t);
// Bytes of `n` elements (n a multiple of the block size: 32 for Q8_0).
uint64_t ggml_nbytes(GgmlType t, int64_t n);
constexpr int64_t kQ8_0Block = 32;  // elements per Q8_0 block: f16 scale + 32 int8

// Encodes n fp32 values (n a multiple of 32 for Q8_0) as type t into out (ggml_nbytes(t, n)
// bytes). F16/BF16 round to nearest even (numpy's astype(float16), gguf-py's BF16 quantizer:
// NaN kept quiet); Q8_0 is ggml's quantize_row_q8_0_ref: per block of 32, d = max|x|/127,
// q = roundf(x/d) (half away from zero), d stored as f16.
void ggml_encode(GgmlType t, const float* x, int64_t n, uint8_t* out);

// GGUF metadata in insertion order; setting an existing key replaces its value in place
// (as GGUFWriter.add_key_value does).
class GgufMetadata {
 public:
  void set_string(const std::string& key, std::string_view v);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_strings(const std::string& key, std::span<const std::string> v);
  void set_i32s(const std::string& key, std::span<const int32_t> v);
  void set_u32s(const std::string& key, std::span<const uint32_t> v);
  void set_f32s(const std::string& key, std::span<const float> v);
  void remove(const std::string& key);
  bool has(const std::string& key) const { return index_.count(key) != 0; }
  size_t size() const { return entries_.size(); }
  std::string serialize() const;  // the n_kv entries as they appear in the file

 private:
  void set(const std::string& key, std::string value_bytes);  // u32 type + value
  std::vector<std::pair<std::string, std::string>> entries_;
  std::map<std::string, size_t> index_;
};

struct GgufTensor {
  std::string name;
  std::vector<int64_t> dims;  // ggml order: dims[0] is the row (innermost) length
  GgmlType type = GgmlType::F32;
  uint64_t nbytes() const;
};

// Writes one tensor's bytes (exactly t.nbytes() of them) through `out`.
using GgufSink = std::function<void(const void* data, size_t n)>;
using GgufTensorData = std::function<void(size_t index, const GgufSink& out)>;
// Called after every tensor with the bytes written so far and the total.
using GgufProgress = std::function<void(uint64_t done, uint64_t total)>;

// Writes path atomically: nothing at `path` unless everything was written and flushed (a
// full disk or a throwing callback leaves no file). Throws Error naming the file.
void gguf_write(const fs::path& path, const GgufMetadata& kv, const std::vector<GgufTensor>& tensors,
                const GgufTensorData& data, const GgufProgress& progress = {});

}  // namespace lorafit
