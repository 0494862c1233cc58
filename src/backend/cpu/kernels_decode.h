// KV-cache kernels of the CPU backend (generation): writing new keys/values into the cache
// and attention of new queries over it. Templated on the element type like kernels_forward.h.
//
// Letters: B batch, T new tokens, S cache capacity, H query heads, Hkv kv heads, D head dim,
// p0 the position of the first new token (the number of tokens already cached).
// Contract (backend.h): outputs first, overwritten.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace lorafit::cpu {

// cache (B,S,Hkv,D) rows [p0, p0+T) = x (B,T,Hkv,D).
template <class T>
void kv_cache_write(T* cache, const T* x, int64_t B, int64_t T_new, int64_t S, int64_t Hkv, int64_t D, int64_t p0) {
  const int64_t row = Hkv * D;  // elements of one position
  for (int64_t b = 0; b < B; ++b)
    std::memcpy(cache + (b * S + p0) * row, x + b * T_new * row, static_cast<size_t>(T_new * row) * sizeof(T));
}

// out (B,T,H,D): query (b,t,h) at position p0+t attends cached keys s ≤ p0+t of kv head
// h / (H/Hkv). q (B,T,H,D), k/v (B,S,Hkv,D). The per-query arithmetic is exactly
// cpu::attention_forward's (dot products, max and sums in double, in key order), so a query's
// output depends only on its q and the keys/values, not on how many queries come at once.
template <class T>
void attention_decode(T* out, const T* q, const T* k, const T* v, int64_t B, int64_t T_new, int64_t S, int64_t H,
                      int64_t Hkv, int64_t D, int64_t p0) {
  const int64_t group = H / Hkv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
#pragma omp parallel
  {
    std::vector<double> p(static_cast<size_t>(p0 + T_new));  // scores, then weights, of one query
    std::vector<double> acc(static_cast<size_t>(D));
#pragma omp for collapse(3)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t t = 0; t < T_new; ++t) {
          const int64_t hk = h / group, last = p0 + t;  // keys 0..last
          const T* qr = q + ((b * T_new + t) * H + h) * D;
          double mx = -std::numeric_limits<double>::infinity();
          for (int64_t s = 0; s <= last; ++s) {
            const T* kr = k + ((b * S + s) * Hkv + hk) * D;
            double dot = 0.0;
            for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(qr[d]) * static_cast<double>(kr[d]);
            p[static_cast<size_t>(s)] = dot * scale;
            if (p[static_cast<size_t>(s)] > mx) mx = p[static_cast<size_t>(s)];
          }
          double sum = 0.0;
          for (int64_t d = 0; d < D; ++d) acc[static_cast<size_t>(d)] = 0.0;
          for (int64_t s = 0; s <= last; ++s) {
            const double e = std::exp(p[static_cast<size_t>(s)] - mx);
            sum += e;
            const T* vr = v + ((b * S + s) * Hkv + hk) * D;
            for (int64_t d = 0; d < D; ++d) acc[static_cast<size_t>(d)] += e * static_cast<double>(vr[d]);
          }
          T* orow = out + ((b * T_new + t) * H + h) * D;
          for (int64_t d = 0; d < D; ++d) orow[d] = static_cast<T>(acc[static_cast<size_t>(d)] / sum);
        }
      }
    }
  }
}

}  // namespace lorafit::cpu
