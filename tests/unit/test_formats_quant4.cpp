// 4-bit quantization against bitsandbytes 0.50.2 (tests/fixtures/quant/quant4.*,
// tools/golden/make_quant_fixtures.py): packed bytes, absmax, the double-quantization codes,
// nested absmax and offset equal bit for bit; dequantized bf16 and fp32 values equal exactly
// (one fp32 product, one rounding: nothing is left to a tolerance).
#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "formats/quant4.h"
#include "formats/safetensors.h"

namespace lorafit {
namespace {

const fs::path kDir = fs::path(LORAFIT_FIXTURES) / "quant";

nlohmann::json fixture_json() {
  std::ifstream f(kDir / "quant4.json");
  EXPECT_TRUE(f);
  return nlohmann::json::parse(f);
}

template <class T>
std::vector<T> values(const SafetensorsFile& f, const std::string& name) {
  const TensorInfo* t = f.find(name);
  EXPECT_NE(t, nullptr) << name;
  if (!t) return {};
  EXPECT_EQ(t->nbytes % sizeof(T), 0u);
  std::vector<T> v(t->nbytes / sizeof(T));
  std::memcpy(v.data(), t->data, t->nbytes);
  return v;
}

// Bitwise equality of float arrays (so -0 ≠ +0 and NaN patterns count).
template <class T>
void expect_bits_eq(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(T)) != 0 && bad++ == 0) first = i;
  EXPECT_EQ(bad, 0u) << what << ": first difference at " << first;
}

TEST(Quant4, CodeBooksEqualBitsandbytes) {
  const SafetensorsFile f(kDir / "quant4.safetensors");
  const std::vector<float> nf4 = values<float>(f, "randn_nf4.code"), fp4 = values<float>(f, "randn_fp4.code");
  expect_bits_eq(std::vector<float>(quant4_code(Quant4Type::NF4), quant4_code(Quant4Type::NF4) + 16), nf4, "nf4");
  expect_bits_eq(std::vector<float>(quant4_code(Quant4Type::FP4), quant4_code(Quant4Type::FP4) + 16), fp4, "fp4");
  expect_bits_eq(std::vector<float>(dynamic8_code(), dynamic8_code() + 256), values<float>(f, "randn_nf4_dq.nested_code"),
                 "dynamic map");
}

TEST(Quant4, QuantizeAndDequantizeEqualBitsandbytes) {
  const auto info = fixture_json();
  const SafetensorsFile f(kDir / "quant4.safetensors");
  int nested = 0, partial = 0, odd = 0, disagreeing_cpu_kernel = 0;
  for (const auto& c : info["cases"]) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    const TensorInfo* in = f.find(name + ".input");
    ASSERT_NE(in, nullptr);
    const int64_t rows = c["shape"][0], cols = c["shape"][1], n = rows * cols;
    const Quant4Type type = *quant4_type_from_name(c["quant_type"].get<std::string>());
    const bool dq = c["double_quant"];
    const Quant4Host q = quantize_4bit(in->data, in->dtype, n, type, dq);
    expect_bits_eq(q.packed, values<uint8_t>(f, name + ".packed"), "packed");
    if (dq) {
      expect_bits_eq(q.qabsmax, values<uint8_t>(f, name + ".qabsmax"), "qabsmax");
      expect_bits_eq(q.nested_absmax, values<float>(f, name + ".nested_absmax"), "nested_absmax");
      expect_bits_eq(std::vector<float>{q.offset}, values<float>(f, name + ".offset"), "offset");
    } else {
      expect_bits_eq(q.absmax, values<float>(f, name + ".absmax"), "absmax");
    }
    EXPECT_EQ(q.nbytes(), quant4_nbytes(n, dq));
    const Quant4View w = cpu_view(q, rows, cols);
    for (DType dt : {DType::BF16, DType::F32}) {
      const std::string key = name + (dt == DType::BF16 ? ".dequant_bf16" : ".dequant_f32");
      if (!f.find(key)) continue;  // large cases keep the bf16 values only
      std::vector<uint8_t> out(static_cast<size_t>(n) * dtype_size(dt));
      dequantize_4bit_ref(Tensor(out.data(), dt, {rows, cols}), w);
      expect_bits_eq(out, values<uint8_t>(f, key), key);
    }
    nested += dq;
    partial += n % kQuant4Block != 0;
    odd += n % 2;
    disagreeing_cpu_kernel += !c["cpu_kernel_agrees"].get<bool>();
  }
  // The cases cover what they are meant to: nested stats, a partial last block, odd numel, and a
  // row length where bitsandbytes' AVX-512 CPU dequantizer indexes absmax per row.
  EXPECT_GE(nested, 5);
  EXPECT_GE(partial, 3);
  EXPECT_GE(odd, 2);
  EXPECT_GE(disagreeing_cpu_kernel, 1);
}

// x_i = ((i · 2654435761) mod 2^24) / 2^24 − 0.25, as the fixture script makes it.
std::vector<float> lcg(int64_t n) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    x[static_cast<size_t>(i)] = static_cast<float>(static_cast<double>((static_cast<uint64_t>(i) * 2654435761u) % (1u << 24)) /
                                                       (1 << 24) - 0.25);
  return x;
}

TEST(Quant4, SumEqualsTorch) {
  for (const auto& s : fixture_json()["sums"]) {
    const int64_t n = s["n"];
    const std::vector<float> x = lcg(n);
    const float sum = torch_sum_f32(x.data(), n);
    EXPECT_EQ(std::bit_cast<uint32_t>(sum), s["sum_bits"].get<uint32_t>()) << "n=" << n;
    EXPECT_EQ(std::bit_cast<uint32_t>(sum / static_cast<float>(n)), s["mean_bits"].get<uint32_t>()) << "n=" << n;
  }
}

TEST(Quant4, TypeNames) {
  EXPECT_EQ(quant4_type_from_name("nf4"), Quant4Type::NF4);
  EXPECT_EQ(quant4_type_from_name("fp4"), Quant4Type::FP4);
  EXPECT_EQ(quant4_type_from_name("NF4"), std::nullopt);
  EXPECT_EQ(quant4_type_name(Quant4Type::FP4), "fp4");
  EXPECT_EQ(quant4_nbytes(4096 * 64, false), 4096u * 32 + 4096 * 4);
  EXPECT_EQ(quant4_nbytes(4096 * 64, true), 4096u * 32 + 4096 + 16 * 4);
}

}  // namespace
}  // namespace lorafit
