// util/rng.h: the one splitmix64 against the published reference sequence (Vigna's
// splitmix64.c seeded 1234567 prints 6457827717110365317, 3203168211198807973, ...).
#include <gtest/gtest.h>

#include "util/rng.h"

using namespace lorafit;

TEST(UtilRng, Splitmix64MatchesReferenceSequence) {
  EXPECT_EQ(splitmix64(0), 0xe220a8397b1dcdafull);
  uint64_t s = 1234567;
  EXPECT_EQ(splitmix64_next(s), 6457827717110365317ull);
  EXPECT_EQ(splitmix64_next(s), 3203168211198807973ull);
  EXPECT_EQ(splitmix64_next(s), 9817491932198370423ull);
  EXPECT_EQ(s, 1234567 + 3 * kSplitmixGamma);
}

TEST(UtilRng, CounterUniformDependsOnSeedAndIndexOnly) {
  // h = splitmix64(splitmix64(42) + 7) >> 40 = 16658192 (computed in Python from the same
  // definition); the float is exact: 24 bits over 2^24.
  EXPECT_EQ(counter_uniform24(42, 7), 16658192.0f / 16777216.0f);
  EXPECT_NE(counter_uniform24(42, 8), counter_uniform24(43, 7));
  for (int64_t i = 0; i < 1000; ++i) {
    const float u = counter_uniform24(1, i);
    EXPECT_GE(u, 0.0f);
    EXPECT_LT(u, 1.0f);
  }
  EXPECT_EQ(u64_to_unit_double(~0ull), 1.0 - 0x1.0p-53);
}
