// Tensor: a non-owning view {data, dtype, shape, device}. Row-major and contiguous; the
// memory belongs to whoever made it (a mapped file, a backend buffer, a std::vector).
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "tensor/dtype.h"
#include "util/error.h"

namespace lorafit {

enum class Device : uint8_t { CPU, CUDA };

struct Tensor {
  static constexpr int kMaxDims = 4;

  void* data = nullptr;
  DType dtype = DType::F32;
  int ndim = 0;
  std::array<int64_t, kMaxDims> shape{};
  Device device = Device::CPU;

  Tensor() = default;
  Tensor(void* d, DType t, std::initializer_list<int64_t> dims, Device dev = Device::CPU)
      : data(d), dtype(t), device(dev) {
    LF_CHECK(dims.size() <= kMaxDims);
    for (int64_t s : dims) shape[ndim++] = s;
  }

  bool empty() const { return data == nullptr; }
  int64_t dim(int i) const { return shape[i < 0 ? ndim + i : i]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }

  template <class T>
  T* as() const {
    return static_cast<T*>(data);
  }
  // The same memory seen with another shape of equal element count.
  Tensor view(std::initializer_list<int64_t> dims) const {
    Tensor t(data, dtype, dims, device);
    LF_CHECK(t.numel() == numel(), "view of {} elements as {}", numel(), t.numel());
    return t;
  }
  // Rows [r0, r1) of the first dimension.
  Tensor rows(int64_t r0, int64_t r1) const {
    LF_CHECK(ndim >= 1 && 0 <= r0 && r0 <= r1 && r1 <= shape[0]);
    Tensor t = *this;
    t.shape[0] = r1 - r0;
    t.data = static_cast<char*>(data) + static_cast<size_t>(r0) * (nbytes() / (shape[0] ? shape[0] : 1));
    return t;
  }
  std::string shape_str() const;  // "[896, 4864]"
};

}  // namespace lorafit
