// The one splitmix64 of the project (Steele, Lea & Flood 2014), for every seeded stream:
// LoRA init, dropout masks (CPU and CUDA must agree bit for bit), shuffles, sampling seeds.
// Header-only and constexpr so the CUDA kernels use the same code as the CPU.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define LF_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define LF_HOST_DEVICE inline
#endif

namespace lorafit {

inline constexpr uint64_t kSplitmixGamma = 0x9e3779b97f4a7c15ull;  // 2^64 / golden ratio

// The stateless mix: splitmix64 of x (its output for state x). Counter streams call
// splitmix64(splitmix64(seed) + i) so that value i depends only on (seed, i).
LF_HOST_DEVICE constexpr uint64_t splitmix64(uint64_t x) {
  x += kSplitmixGamma;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The stateful generator: the next value of the sequence that starts at `state`.
LF_HOST_DEVICE constexpr uint64_t splitmix64_next(uint64_t& state) {
  const uint64_t r = splitmix64(state);
  state += kSplitmixGamma;
  return r;
}

// Uniform in [0, 1) with 53 random bits, from one 64-bit value.
LF_HOST_DEVICE constexpr double u64_to_unit_double(uint64_t u) { return static_cast<double>(u >> 11) * 0x1.0p-53; }

// Counter-based uniform in [0, 1) with 24 random bits (exact in float) for dropout masks: the
// mask of element i depends only on (seed, i), so the backward and every backend regenerate
// it. The seed is mixed first so streams of neighbouring seeds do not overlap.
LF_HOST_DEVICE constexpr float counter_uniform24(uint64_t seed, int64_t i) {
  const uint64_t h = splitmix64(splitmix64(seed) + static_cast<uint64_t>(i));
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
}

}  // namespace lorafit
