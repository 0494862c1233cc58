// The KV-cache tolerance of test_model_kv.cpp (derived there), shared with the generator's
// chunked-prefill test: cached attention against the one-forward logits.
#pragma once
#include <cmath>
#include <span>

#include "backend_parity.h"
#include "formats/model_config.h"

namespace lorafit::testing {

inline double rel_l2(std::span<const float> a, std::span<const float> b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

// The bound derived at the top of test_model_kv.cpp, for sequences of length T.
inline double kv_bound(const ModelConfig& c, int64_t T) {
  const double e_layer = static_cast<double>(3 * c.hidden_size + c.head_dim + T + c.num_heads * c.head_dim +
                                             c.hidden_size + c.intermediate_size + 16) * testing::kEps32;
  return 2 * (c.num_layers * e_layer + 2 * (c.hidden_size + 2) * testing::kEps32);
}

}  // namespace lorafit::testing
