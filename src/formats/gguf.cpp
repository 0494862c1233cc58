#include "formats/gguf.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tensor/dtype.h"
#include "util/error.h"

namespace lorafit {

namespace {

constexpr uint32_t kVersion = 3;
constexpr uint64_t kAlign = 32;  // GGUF_DEFAULT_ALIGNMENT
enum ValueType : uint32_t { U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9 };

template <class T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian hosts only (x86-64, arm64)
  out.append(b, sizeof(T));
}
void put_string(std::string& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  out.append(s);
}
uint64_t pad(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

template <class T>
std::string array_bytes(uint32_t elem_type, std::span<const T> v) {
  std::string b;
  put<uint32_t>(b, ARRAY);
  put<uint32_t>(b, elem_type);
  put<uint64_t>(b, v.size());
  for (const T& x : v) {
    if constexpr (std::is_same_v<T, std::string>) put_string(b, x);
    else put<T>(b, x);
  }
  return b;
}

}  // namespace

std::string_view ggml_type_name(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return "F32";
    case GgmlType::F16: return "F16";
    case GgmlType::Q8_0: return "Q8_0";
    case GgmlType::BF16: return "BF16";
  }
  return "?";
}

uint64_t ggml_nbytes(GgmlType t, int64_t n) {
  switch (t) {
    case GgmlType::F32: return static_cast<uint64_t>(n) * 4;
    case GgmlType::F16:
    case GgmlType::BF16: return static_cast<uint64_t>(n) * 2;
    case GgmlType::Q8_0:
      LF_CHECK(n % kQ8_0Block == 0, "Q8_0 tensor of {} elements", n);
      return static_cast<uint64_t>(n / kQ8_0Block) * (2 + kQ8_0Block);
  }
  return 0;
}

void ggml_encode(GgmlType t, const float* x, int64_t n, uint8_t* out) {
  switch (t) {
    case GgmlType::F32: std::memcpy(out, x, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_f16(x[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_bf16(x[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    case GgmlType::Q8_0:
      LF_CHECK(n % kQ8_0Block == 0, "Q8_0 row of {} elements", n);
      for (int64_t b = 0; b < n / kQ8_0Block; ++b) {
        const float* xb = x + b * kQ8_0Block;
        uint8_t* ob = out + b * (2 + kQ8_0Block);  // block: f16 d, then 32 int8
        float amax = 0.f;
        for (int64_t j = 0; j < kQ8_0Block; ++j) amax = std::max(amax, std::fabs(xb[j]));
        const float d = amax / 127.f;
        const float id = d != 0.f ? 1.f / d : 0.f;
        const uint16_t dh = f32_to_f16(d);
        std::memcpy(ob, &dh, 2);
        for (int64_t j = 0; j < kQ8_0Block; ++j) {
          const float v = xb[j] * id;
          ob[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::roundf(v)));
        }
      }
      return;
  }
}

uint64_t GgufTensor::nbytes() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return ggml_nbytes(type, n);
}

void GgufMetadata::set(const std::string& key, std::string value_bytes) {
  if (auto it = index_.find(key); it != index_.end()) {
    entries_[it->second].second = std::move(value_bytes);
    return;
  }
  index_[key] = entries_.size();
  entries_.emplace_back(key, std::move(value_bytes));
}

void GgufMetadata::set_string(const std::string& key, std::string_view v) {
  std::string b;
  put<uint32_t>(b, STRING);
  put_string(b, v);
  set(key, std::move(b));
}
void GgufMetadata::set_u32(const std::string& key, uint32_t v) {
  std::string b;
  put<uint32_t>(b, U32);
  put<uint32_t>(b, v);
  set(key, std::move(b));
}
void GgufMetadata::set_i32(const std::string& key, int32_t v) {
  std::string b;
  put<uint32_t>(b, I32);
  put<int32_t>(b, v);
  set(key, std::move(b));
}
void GgufMetadata::set_f32(const std::string& key, float v) {
  std::string b;
  put<uint32_t>(b, F32);
  put<float>(b, v);
  set(key, std::move(b));
}
void GgufMetadata::set_bool(const std::string& key, bool v) {
  std::string b;
  put<uint32_t>(b, BOOL);
  put<uint8_t>(b, v ? 1 : 0);
  set(key, std::move(b));
}
void GgufMetadata::set_strings(const std::string& key, std::span<const std::string> v) {
  set(key, array_bytes<std::string>(STRING, v));
}
void GgufMetadata::set_i32s(const std::string& key, std::span<const int32_t> v) { set(key, array_bytes(I32, v)); }
void GgufMetadata::set_u32s(const std::string& key, std::span<const uint32_t> v) { set(key, array_bytes(U32, v)); }
void GgufMetadata::set_f32s(const std::string& key, std::span<const float> v) { set(key, array_bytes(F32, v)); }

void GgufMetadata::remove(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return;
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(it->second));
  index_.clear();
  for (size_t k = 0; k < entries_.size(); ++k) index_[entries_[k].first] = k;
}

std::string GgufMetadata::serialize() const {
  std::string out;
  for (const auto& [key, value] : entries_) {
    put_string(out, key);
    out += value;
  }
  return out;
}

void gguf_write(const fs::path& path, const GgufMetadata& kv, const std::vector<GgufTensor>& tensors,
                const GgufTensorData& data, const GgufProgress& progress) {
  std::string head;
  head.append("GGUF", 4);
  put<uint32_t>(head, kVersion);
  put<uint64_t>(head, tensors.size());
  put<uint64_t>(head, kv.size());
  head += kv.serialize();
  uint64_t offset = 0;  // of each tensor from the data start
  for (const GgufTensor& t : tensors) {
    put_string(head, t.name);
    put<uint32_t>(head, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) put<uint64_t>(head, static_cast<uint64_t>(d));
    put<uint32_t>(head, static_cast<uint32_t>(t.type));
    put<uint64_t>(head, offset);
    offset += pad(t.nbytes());
  }
  const uint64_t total = offset;
  head.resize(pad(head.size()), '\0');

  AtomicFile file(path);
  file.write(head);
  static const char zeros[kAlign] = {};
  uint64_t done = 0;
  for (size_t k = 0; k < tensors.size(); ++k) {
    const uint64_t want = tensors[k].nbytes();
    uint64_t got = 0;
    data(k, [&](const void* p, size_t n) {
      file.write(p, n);
      got += n;
    });
    LF_CHECK(got == want, "tensor {}: {} bytes written, {} expected", tensors[k].name, got, want);
    file.write(zeros, pad(want) - want);
    done += pad(want);
    if (progress) progress(done, total);
  }
  file.commit();
}

}  // namespace lorafit
