#include "tensor/dtype.h"

#include <array>
#include <cstdint>
#include <cstring>

#include "util/error.h"

namespace lorafit {

namespace {
struct Info {
  DType type;
  std::string_view name;
  size_t size;
};
constexpr std::array<Info, 15> kInfo{{{DType::BOOL, "BOOL", 1},
                                      {DType::U8, "U8", 1},
                                      {DType::I8, "I8", 1},
                                      {DType::F8_E5M2, "F8_E5M2", 1},
                                      {DType::F8_E4M3, "F8_E4M3", 1},
                                      {DType::I16, "I16", 2},
                                      {DType::U16, "U16", 2},
                                      {DType::F16, "F16", 2},
                                      {DType::BF16, "BF16", 2},
                                      {DType::I32, "I32", 4},
                                      {DType::U32, "U32", 4},
                                      {DType::F32, "F32", 4},
                                      {DType::F64, "F64", 8},
                                      {DType::I64, "I64", 8},
                                      {DType::U64, "U64", 8}}};
}  // namespace

size_t dtype_size(DType t) { return kInfo[static_cast<size_t>(t)].size; }
std::string_view dtype_name(DType t) { return kInfo[static_cast<size_t>(t)].name; }

std::optional<DType> dtype_from_name(std::string_view s) {
  for (const auto& i : kInfo)
    if (i.name == s) return i.type;
  return std::nullopt;
}

bool dtype_is_float(DType t) {
  return t == DType::F16 || t == DType::BF16 || t == DType::F32 || t == DType::F64 ||
         t == DType::F8_E4M3 || t == DType::F8_E5M2;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      u = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t absu = u & 0x7fffffffu;
  if (absu > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (absu >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (absu < 0x38800000u) {  // subnormal or zero in f16
    if (absu < 0x33000000u) return static_cast<uint16_t>(sign);  // below half the smallest subnormal
    uint32_t exp = absu >> 23;
    uint32_t mant = (absu & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - exp;  // 14 - (exp - 127) + 13 - 1 ... aligns to 2^-24 units
    uint32_t r = mant >> (shift - 0);
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    // mant * 2^(exp-150) / 2^-24 = mant >> (126 - exp)
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = absu + 0xc8000fffu + ((absu >> 13) & 1u);  // rebias 127->15 and round to even
  return static_cast<uint16_t>(sign | (r >> 13));
}

void convert_to_f32(float* dst, const void* src, DType t, size_t n) {
  // `src` may point into a memory-mapped file at any byte offset: elements are read with
  // memcpy (one load each after optimisation), never through a misaligned typed pointer.
  auto s = static_cast<const uint8_t*>(src);
  auto load16 = [s](size_t i) {
    uint16_t v;
    std::memcpy(&v, s + 2 * i, 2);
    return v;
  };
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, n * 4);
      return;
    case DType::BF16: {
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load16(i));
      return;
    }
    case DType::F16: {
      for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load16(i));
      return;
    }
    case DType::F64: {
      for (size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, s + 8 * i, 8);
        dst[i] = static_cast<float>(d);
      }
      return;
    }
    default:
      throw Error("cannot convert {} to F32", dtype_name(t));
  }
}

}  // namespace lorafit
