// DoRA's elementwise steps (backend.h "DoRA"): plain loops, each fp32 op rounded as torch
// rounds it (this file is compiled without FMA contraction), sums over rows in double.
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "util/error.h"

namespace lorafit {

namespace {

float round_bf16(float v) { return bf16_to_f32(f32_to_bf16(v)); }

// c (O) = m / n, as PEFT's mag_norm_scale.
std::vector<float> dora_scale(Tensor m, Tensor n) {
  LF_CHECK(m.dtype == DType::F32 && n.dtype == DType::F32 && m.numel() == n.numel(), "DoRA m {} n {}", m.shape_str(),
           n.shape_str());
  const float* pm = m.as<float>();
  const float* pn = n.as<float>();
  std::vector<float> c(static_cast<size_t>(m.numel()));
  for (size_t o = 0; o < c.size(); ++o) c[o] = pm[o] / pn[o];
  return c;
}

void check_rows(Tensor t, int64_t N, int64_t O, DType dt, const char* what) {
  LF_CHECK(t.dtype == dt && t.numel() == N * O, "DoRA {}: {} {} for ({}, {}) {}", what, dtype_name(t.dtype),
           t.shape_str(), N, O, dtype_name(dt));
}

}  // namespace

void CpuBackend::dora_norm(Tensor n, Tensor W, Tensor ba, float s, bool bf16_lora) {
  const int64_t R = W.dim(0), I = W.dim(1);
  check_rows(ba, R, I, DType::F32, "norm ba");
  check_rows(n, R, 1, DType::F32, "norm n");
  std::vector<float> w(static_cast<size_t>(I));  // (I) one row of W in fp32
  const float* pba = ba.as<float>();
  float* pn = n.as<float>();
  const size_t esz = dtype_size(W.dtype);
  for (int64_t r = 0; r < R; ++r) {
    convert_to_f32(w.data(), static_cast<const uint8_t*>(W.data) + static_cast<size_t>(r * I) * esz, W.dtype, w.size());
    double ss = 0;
    for (int64_t k = 0; k < I; ++k) {
      const float lw = pba[r * I + k];
      const float v = bf16_lora ? w[static_cast<size_t>(k)] + round_bf16(s * round_bf16(lw))
                                : w[static_cast<size_t>(k)] + s * lw;  // weight + scaling·lora_weight
      ss += static_cast<double>(v) * v;
    }
    pn[r] = static_cast<float>(std::sqrt(ss));
  }
}

void CpuBackend::dora_combine(Tensor y, Tensor t1, Tensor t2, Tensor m, Tensor n, float s) {
  const int64_t N = y.dim(0), O = y.dim(1);
  check_rows(t1, N, O, y.dtype, "combine t1");
  check_rows(t2, N, O, y.dtype, "combine t2");
  const std::vector<float> c = dora_scale(m, n);
  LF_CHECK(static_cast<int64_t>(c.size()) == O, "DoRA combine: m {} for O = {}", m.shape_str(), O);
  if (y.dtype == DType::F32) {
    float* py = y.as<float>();
    const float* p1 = t1.as<float>();
    const float* p2 = t2.as<float>();
    for (int64_t i = 0; i < N; ++i)
      for (int64_t o = 0; o < O; ++o) {
        const int64_t k = i * O + o;
        const float co = c[static_cast<size_t>(o)];
        py[k] += (co - 1.f) * p1[k];
        py[k] += co * p2[k] * s;
      }
    return;
  }
  LF_CHECK(y.dtype == DType::BF16, "DoRA combine: y {}", dtype_name(y.dtype));
  uint16_t* py = y.as<uint16_t>();
  const uint16_t* p1 = t1.as<uint16_t>();
  const uint16_t* p2 = t2.as<uint16_t>();
  for (int64_t i = 0; i < N; ++i)
    for (int64_t o = 0; o < O; ++o) {
      const int64_t k = i * O + o;
      const float co = c[static_cast<size_t>(o)];
      const float a = (co - 1.f) * bf16_to_f32(p1[k]);
      const float b = (co * bf16_to_f32(p2[k])) * s;
      py[k] = f32_to_bf16(bf16_to_f32(py[k]) + (a + b));
    }
}

void CpuBackend::dora_backward_scale(Tensor dm, Tensor a, Tensor b, Tensor dy, Tensor m, Tensor n, float s) {
  const int64_t N = dy.dim(0), O = dy.dim(1);
  check_rows(a, N, O, dy.dtype, "backward a");
  check_rows(b, N, O, dy.dtype, "backward b");
  check_rows(dm, O, 1, DType::F32, "backward dm");
  const std::vector<float> c = dora_scale(m, n);
  LF_CHECK(static_cast<int64_t>(c.size()) == O, "DoRA backward: m {} for O = {}", m.shape_str(), O);
  const float* pn = n.as<float>();
  float* pdm = dm.as<float>();
  std::vector<double> d1(static_cast<size_t>(O), 0.0), d2(static_cast<size_t>(O), 0.0);
  if (dy.dtype == DType::F32) {
    const float* pdy = dy.as<float>();
    float* pa = a.as<float>();
    float* pb = b.as<float>();
    for (int64_t i = 0; i < N; ++i)
      for (int64_t o = 0; o < O; ++o) {
        const int64_t k = i * O + o;
        const float co = c[static_cast<size_t>(o)];
        d1[static_cast<size_t>(o)] += static_cast<double>(pdy[k]) * pa[k];  // what c multiplies; ∂c/∂m = 1/n
        pa[k] = co * pdy[k];
        pb[k] = (co - 1.f) * pdy[k];
      }
    for (int64_t o = 0; o < O; ++o) pdm[o] += static_cast<float>(d1[static_cast<size_t>(o)] / pn[o]);
    return;
  }
  LF_CHECK(dy.dtype == DType::BF16, "DoRA backward: dy {}", dtype_name(dy.dtype));
  const uint16_t* pdy = dy.as<uint16_t>();
  uint16_t* pa = a.as<uint16_t>();
  uint16_t* pb = b.as<uint16_t>();
  for (int64_t i = 0; i < N; ++i)
    for (int64_t o = 0; o < O; ++o) {
      const int64_t k = i * O + o;
      const float co = c[static_cast<size_t>(o)], g = bf16_to_f32(pdy[k]), gs = g * s;
      d1[static_cast<size_t>(o)] += static_cast<double>(g) * bf16_to_f32(pa[k]);
      d2[static_cast<size_t>(o)] += static_cast<double>(gs) * bf16_to_f32(pb[k]);
      pa[k] = f32_to_bf16(g * (co - 1.f));  // dt1
      pb[k] = f32_to_bf16(gs * co);         // dt2
    }
  for (int64_t o = 0; o < O; ++o) {
    const float dc = static_cast<float>(d1[static_cast<size_t>(o)]) + static_cast<float>(d2[static_cast<size_t>(o)]);
    pdm[o] += dc / pn[o];
  }
}

}  // namespace lorafit
