// dtype conversions against exhaustive/independent references.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "tensor/dtype.h"

using namespace lorafit;

// Every f16 bit pattern converts to the value its definition gives, and back exactly.
TEST(DType, F16RoundTripsEveryPattern) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = f16_to_f32(static_cast<uint16_t>(h));
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double want = e == 0 ? std::ldexp(double(m), -24) : std::ldexp(double(m | 0x400), int(e) - 25);
    if (h & 0x8000) want = -want;
    if (e == 0x1f) {
      if (m) {
        EXPECT_TRUE(std::isnan(f)) << h;
        continue;
      }
      EXPECT_TRUE(std::isinf(f)) << h;
    } else {
      EXPECT_EQ(double(f), want) << h;
    }
    EXPECT_EQ(f32_to_f16(f), h) << h;
  }
}

// fp32 -> f16 / bf16 round to nearest even: check halfway points between neighbours.
TEST(DType, RoundsToNearestEven) {
  for (uint32_t h = 1; h < 0x7bff; h += 37) {
    double lo = f16_to_f32(uint16_t(h)), hi = f16_to_f32(uint16_t(h + 1));
    float mid = float((lo + hi) / 2);  // exactly representable in fp32
    uint16_t want = (h & 1) ? uint16_t(h + 1) : uint16_t(h);
    EXPECT_EQ(f32_to_f16(mid), want) << h;
    EXPECT_EQ(f32_to_f16(std::nextafter(mid, 1e9f)), uint16_t(h + 1)) << h;
  }
  for (uint32_t b = 0x3f80; b < 0x4000; ++b) {
    double lo = bf16_to_f32(uint16_t(b)), hi = bf16_to_f32(uint16_t(b + 1));
    float mid = float((lo + hi) / 2);
    EXPECT_EQ(f32_to_bf16(mid), (b & 1) ? b + 1 : b) << b;
  }
  EXPECT_EQ(f32_to_f16(65520.f), 0x7c00);  // rounds up to inf
  EXPECT_EQ(f32_to_f16(65519.f), 0x7bff);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
}

TEST(DType, NamesAndSizes) {
  EXPECT_EQ(dtype_from_name("BF16"), DType::BF16);
  EXPECT_EQ(dtype_size(DType::F8_E4M3), 1u);
  EXPECT_EQ(dtype_size(DType::U64), 8u);
  EXPECT_FALSE(dtype_from_name("bf16").has_value());
}
