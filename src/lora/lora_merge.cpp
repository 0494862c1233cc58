#include "lora/lora_merge.h"

#include <cmath>
#include <cstring>

#include "util/error.h"

namespace lorafit {

std::vector<uint8_t> merged_weight(Backend& cpu, const TensorInfo& W, const LoraParams& p,
                                   const std::vector<float>& host, int module) {
  LF_CHECK(cpu.device() == Device::CPU, "merge on {}", cpu.name());
  const LinearModule& m = p.modules()[static_cast<size_t>(module)];
  LF_CHECK(W.shape == std::vector<int64_t>({m.out, m.in}), "{} shape for merge", W.name);
  const int64_t O = m.out, I = m.in, r = p.config().r;
  std::vector<float> w(static_cast<size_t>(O * I));  // (O, I) fp32
  convert_to_f32(w.data(), W.data, W.dtype, w.size());
  // A (r, I), B (O, r) from the host copy of the params section.
  float *A = nullptr, *B = nullptr, *mag = nullptr;
  for (const LoraTensor& t : p.tensors())
    if (t.module == module) (t.is_m ? mag : t.is_B ? B : A) = const_cast<float*>(host.data()) + t.offset;  // read only
  LF_CHECK(A && B && (mag != nullptr) == p.config().use_dora, "module {} has no A/B (or DoRA m)", m.name);
  // w (O, I) = s · B (O, r) · A (r, I) + w: one fp32 GEMM with beta = 1.
  cpu.matmul(Tensor(w.data(), DType::F32, {O, I}), Tensor(B, DType::F32, {O, r}), false,
             Tensor(A, DType::F32, {r, I}), false, static_cast<float>(p.config().scale()), 1.f);
  if (mag) {  // DoRA: w = (m / ‖w‖_row)·w, the norm (fp32, summed in double) of the merged row, as PEFT's merge
    for (int64_t o = 0; o < O; ++o) {
      float* row = w.data() + o * I;
      double ss = 0;
      for (int64_t i = 0; i < I; ++i) ss += static_cast<double>(row[i]) * row[i];
      const float f = mag[o] / static_cast<float>(std::sqrt(ss));  // dora_factor
      for (int64_t i = 0; i < I; ++i) row[i] *= f;
    }
  }
  std::vector<uint8_t> out(static_cast<size_t>(O * I) * dtype_size(W.dtype));
  switch (W.dtype) {
    case DType::F32: std::memcpy(out.data(), w.data(), out.size()); break;
    case DType::BF16:
      for (size_t k = 0; k < w.size(); ++k) {
        const uint16_t h = f32_to_bf16(w[k]);
        std::memcpy(out.data() + 2 * k, &h, 2);
      }
      break;
    case DType::F16:
      for (size_t k = 0; k < w.size(); ++k) {
        const uint16_t h = f32_to_f16(w[k]);
        std::memcpy(out.data() + 2 * k, &h, 2);
      }
      break;
    default: throw Error("{}: tensor {} has dtype {}; merging needs F32, BF16 or F16", W.file, W.name, dtype_name(W.dtype));
  }
  return out;
}

}  // namespace lorafit
