// 64-bit FNV-1a, for cache keys, the base-model fingerprint and template fingerprints.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lorafit {

inline uint64_t fnv1a64(const void* data, size_t n, uint64_t h = 1469598103934665603ull) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

}  // namespace lorafit
