// Shared helpers for the backend parity tests (forward rows: test_backend_ops_forward.cpp;
// backward rows reuse them): random host data, device buffers with guard bytes around them,
// and the rounding-error bounds the tolerances are derived from.
#pragma once
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/kernels_forward.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace lorafit::testing {

// ---- tolerances --------------------------------------------------------------------------
// eps32 = 2^-23, twice the unit roundoff u = 2^-24 of fp32. A sum of K products computed in
// fp32 in any order (recursive, blocked, FMA) has |error| ≤ γ_K·Σ|terms|, γ_K = K·u/(1−K·u)
// (Higham, Accuracy and Stability, §3.1); adding the rounding of the final scaling and
// store gives γ_{K+2}. We use (K + 2)·eps32·Σ|terms| = 2·(K+2)·u·Σ|terms| ≥ γ_{K+2}·Σ|terms|
// for K·u < 1/2, i.e. the worst-case bound with a factor ~2 of headroom, never tuned.
constexpr double kEps32 = FLT_EPSILON;  // 2^-23

inline double sum_bound(int64_t K, double abs_terms) { return static_cast<double>(K + 2) * kEps32 * abs_terms; }
// c roundings of a value of magnitude |ref| (elementwise ops): c·u·|ref| ≤ c·eps32/2·|ref|.
inline double elementwise_bound(int c, double abs_ref) { return c * kEps32 * 0.5 * abs_ref; }

// ---- random data ----------------------------------------------------------------------------
inline std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
inline std::vector<int32_t> random_ints(size_t n, uint64_t seed, int32_t lo, int32_t hi_exclusive) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> d(lo, hi_exclusive - 1);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
inline std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// 16-bit weights for the kernels (Bf16/F16) and the backend (raw bytes), and the fp32 values
// they hold exactly (so a reference can be computed from the rounded weights).
inline std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = f32_to_bf16(v[i]);
  return r;
}
inline std::vector<uint16_t> to_f16(const std::vector<float>& v) {
  std::vector<uint16_t> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = f32_to_f16(v[i]);
  return r;
}
inline std::vector<double> widen(const std::vector<uint16_t>& h, DType t) {
  std::vector<double> r(h.size());
  for (size_t i = 0; i < h.size(); ++i) r[i] = t == DType::BF16 ? bf16_to_f32(h[i]) : f16_to_f32(h[i]);
  return r;
}

// ---- device buffers with guard bytes -----------------------------------------------------
// `bytes` of payload with kGuardBytes of a fixed pattern on each side, all on the backend.
// After an op, guards_intact() downloads the whole allocation and checks both guards, so an
// op that writes past either end of its output is caught.
class GuardedBuffer {
 public:
  static constexpr size_t kGuardBytes = 256;
  static constexpr unsigned char kPattern = 0xA5;

  GuardedBuffer(Backend& be, size_t bytes) : be_(&be), bytes_(bytes) {
    base_ = static_cast<char*>(be.alloc(bytes + 2 * kGuardBytes));
    std::vector<unsigned char> host(bytes + 2 * kGuardBytes, kPattern);
    be.upload(base_, host.data(), host.size());
  }
  ~GuardedBuffer() {
    if (base_) be_->free(base_);
  }
  GuardedBuffer(GuardedBuffer&& o) noexcept : be_(o.be_), base_(o.base_), bytes_(o.bytes_) { o.base_ = nullptr; }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;

  void* data() const { return base_ + kGuardBytes; }
  Tensor tensor(DType t, std::initializer_list<int64_t> shape) const {
    Tensor x(data(), t, shape, be_->device());
    LF_CHECK(x.nbytes() == bytes_, "tensor {} of {} bytes on a buffer of {}", x.shape_str(), x.nbytes(), bytes_);
    return x;
  }
  void upload(const void* host) { be_->upload(data(), host, bytes_); }
  template <class E>
  std::vector<E> download() const {
    std::vector<E> r(bytes_ / sizeof(E));
    be_->sync();
    be_->download(r.data(), data(), bytes_);
    return r;
  }
  bool guards_intact() const {
    std::vector<unsigned char> all(bytes_ + 2 * kGuardBytes);
    be_->sync();
    be_->download(all.data(), base_, all.size());
    for (size_t i = 0; i < kGuardBytes; ++i)
      if (all[i] != kPattern || all[kGuardBytes + bytes_ + i] != kPattern) return false;
    return true;
  }

 private:
  Backend* be_;
  char* base_ = nullptr;
  size_t bytes_;
};

// A guarded buffer filled from host data.
template <class E>
GuardedBuffer upload_guarded(Backend& be, const std::vector<E>& host) {
  GuardedBuffer b(be, host.size() * sizeof(E));
  b.upload(host.data());
  return b;
}

// The backend named `name`, or nullptr with `reason` set when it is not built / no device.
inline std::unique_ptr<Backend> try_backend(const std::string& name, std::string* reason) {
  try {
    return make_backend(name);
  } catch (const Error& e) {
    *reason = e.what();
    return nullptr;
  }
}

// Checks |got − ref| ≤ bound elementwise; reports the first few failures with their index.
inline void expect_close(const std::vector<float>& got, const std::vector<double>& ref,
                         const std::vector<double>& bound, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  ASSERT_EQ(bound.size(), ref.size()) << what;
  int failures = 0;
  double worst = 0;  // largest err/bound, reported on success too via SCOPED_TRACE-less output
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
    if (bound[i] > 0) worst = std::max(worst, err / bound[i]);
    if (!(err <= bound[i]) && ++failures <= 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << " ref " << ref[i] << " err " << err
                    << " > bound " << bound[i];
  }
  EXPECT_EQ(failures, 0) << what << ": " << failures << " of " << got.size() << " elements out of bounds";
  ::testing::Test::RecordProperty(what + "_worst_err_over_bound", std::to_string(worst));
}

}  // namespace lorafit::testing
