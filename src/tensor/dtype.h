// Element types of the safetensors format and the conversions the model needs.
// BF16 is the high half of an fp32 (fp32 -> bf16 rounds to nearest even, NaN stays NaN);
// F16 is IEEE binary16.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace lorafit {

enum class DType : uint8_t { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);                     // "BF16", as safetensors writes it
std::optional<DType> dtype_from_name(std::string_view s);  // nullopt for unknown names
bool dtype_is_float(DType t);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<uint16_t>(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even, overflow to inf

// Converts n elements of a float dtype (F32, F16, BF16, F64) to fp32.
void convert_to_f32(float* dst, const void* src, DType src_type, size_t n);

}  // namespace lorafit
