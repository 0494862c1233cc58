#include "formats/quant4.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>

#include "util/error.h"

namespace lorafit {

namespace {

// bitsandbytes' get_4bit_type("nf4"): quantiles of N(0, 1), already normalised to [-1, 1].
constexpr float kNf4[16] = {-1.0f,
                            -0.6961928009986877f,
                            -0.5250730514526367f,
                            -0.39491748809814453f,
                            -0.28444138169288635f,
                            -0.18477343022823334f,
                            -0.09105003625154495f,
                            0.0f,
                            0.07958029955625534f,
                            0.16093020141124725f,
                            0.24611230194568634f,
                            0.33791524171829224f,
                            0.44070982933044434f,
                            0.5626170039176941f,
                            0.7229568362236023f,
                            1.0f};

// get_4bit_type("fp4"): sign, 2 exponent bits, 1 mantissa bit in bit-pattern order, divided
// (in fp32, as torch's div_) by the largest magnitude, 12. Entry 8 is +0: the Python list says
// `-0`, an int.
const std::array<float, 16>& fp4_code() {
  static const std::array<float, 16> c = [] {
    constexpr float raw[16] = {0.f,  0.0625f,  8.f,  12.f,  4.f,  6.f,  2.f,  3.f,
                               0.f,  -0.0625f, -8.f, -12.f, -4.f, -6.f, -2.f, -3.f};
    std::array<float, 16> r{};
    for (int i = 0; i < 16; ++i) r[static_cast<size_t>(i)] = raw[i] / 12.f;
    return r;
  }();
  return c;
}

// torch.argsort of the FP4 code as bitsandbytes' _get_4bit_quantize_bounds sees it: position in
// value order → code index (two zeros: values ≤ 0 near zero get index 0, small positives 8).
constexpr uint8_t kFp4Order[16] = {11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3};

// create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), as fp32 bit patterns
// (tools/golden/make_quant_fixtures.py prints them; the fixture test checks every value).
constexpr uint32_t kDynamic8Bits[256] = {
#include "formats/quant4_dynamic8.inc"
};

const std::array<float, 256>& dynamic8() {
  static const std::array<float, 256> c = [] {
    std::array<float, 256> r{};
    for (size_t i = 0; i < 256; ++i) r[i] = std::bit_cast<float>(kDynamic8Bits[i]);
    return r;
  }();
  return c;
}

// The 15 decision boundaries of a 4-bit code in value order: (c_i + c_{i+1}) / 2 in fp32.
std::array<float, 15> bounds_of(Quant4Type t) {
  std::array<float, 16> sorted{};
  const float* c = quant4_code(t);
  for (size_t i = 0; i < 16; ++i) sorted[i] = t == Quant4Type::NF4 ? c[i] : c[kFp4Order[i]];
  std::array<float, 15> b{};
  for (size_t i = 0; i < 15; ++i) b[i] = (sorted[i] + sorted[i + 1]) / 2.f;
  return b;
}

// torch.bucketize(x, bounds) (right=False): the number of bounds strictly below x, then the
// FP4 remap from value order to code index.
uint8_t code_of(float x, const std::array<float, 15>& bounds, Quant4Type t) {
  uint8_t k = 0;
  while (k < 15 && bounds[k] < x) ++k;
  return t == Quant4Type::NF4 ? k : kFp4Order[k];
}

// bitsandbytes' default quantize_4bit kernel: full blocks scale by the reciprocal of their
// absmax (clamped at 1e-38), a trailing partial block divides by its clamped absmax. src is
// read one block at a time (as fp32, like torch's A.float()), so no fp32 copy of it is made.
void quantize_codes(Quant4Host& q, const void* src, DType src_type, Quant4Type t) {
  const int64_t n = q.numel, nb = (n + kQuant4Block - 1) / kQuant4Block, full = n / kQuant4Block * kQuant4Block;
  const std::array<float, 15> bounds = bounds_of(t);
  const uint8_t zero = code_of(0.f, bounds, t);  // the padding code of an odd last element
  const size_t es = dtype_size(src_type);
  q.absmax.assign(static_cast<size_t>(nb), 0.f);
  q.packed.assign(static_cast<size_t>((n + 1) / 2), 0);
  std::array<float, kQuant4Block> x{};
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t i0 = b * kQuant4Block, len = std::min(n, i0 + kQuant4Block) - i0;
    convert_to_f32(x.data(), static_cast<const uint8_t*>(src) + static_cast<size_t>(i0) * es, src_type,
                   static_cast<size_t>(len));
    float m = 0.f;
    for (int64_t i = 0; i < len; ++i) m = std::max(m, std::fabs(x[static_cast<size_t>(i)]));
    const float clamped = std::max(m, 1e-38f);
    const bool partial = i0 >= full;
    const float inv = 1.0f / clamped;
    for (int64_t i = 0; i < kQuant4Block; i += 2) {  // element pairs: one byte (64 is even)
      uint8_t c[2] = {zero, zero};
      for (int64_t k = 0; k < 2 && i + k < len; ++k) {
        const float v = x[static_cast<size_t>(i + k)];
        c[k] = code_of(std::clamp(partial ? v / clamped : v * inv, -1.f, 1.f), bounds, t);
      }
      if (i < len) q.packed[static_cast<size_t>((i0 + i) / 2)] = static_cast<uint8_t>((c[0] << 4) | c[1]);
    }
    q.absmax[static_cast<size_t>(b)] = partial ? clamped : m;
  }
}

// One lane-wise accumulator of torch's Vectorized<float> (8 lanes: the AVX2 kernels torch's CPU
// sum runs on; see torch_sum_f32).
constexpr int kLanes = 8;
using Vec = std::array<float, kLanes>;
void vadd(Vec& a, const Vec& b) {
  for (int l = 0; l < kLanes; ++l) a[static_cast<size_t>(l)] += b[static_cast<size_t>(l)];
}

void add_to(float& a, float b) { a += b; }
void add_to(Vec& a, const Vec& b) { vadd(a, b); }

int64_t ceil_log2(int64_t x) {  // at::native::utils::CeilLog2
  if (x <= 2) return 1;
  return 64 - std::countl_zero(static_cast<uint64_t>(x - 1));
}

// at::native multi_row_sum with nrows = 4: item(i, k) is the k-th of 4 interleaved rows at
// step i; partial sums cascade through 4 levels so that only like magnitudes are added.
template <class T, class Load>
std::array<T, 4> multi_row_sum(int64_t size, const Load& item) {
  constexpr int64_t levels = 4;
  const int64_t power = std::max<int64_t>(4, ceil_log2(size) / levels);
  const int64_t step = int64_t{1} << power, mask = step - 1;
  std::array<std::array<T, 4>, levels> acc{};
  int64_t i = 0;
  for (; i + step <= size;) {
    for (int64_t j = 0; j < step; ++j, ++i)
      for (size_t k = 0; k < 4; ++k) add_to(acc[0][k], item(i, k));
    for (int64_t j = 1; j < levels; ++j) {
      for (size_t k = 0; k < 4; ++k) {
        add_to(acc[static_cast<size_t>(j)][k], acc[static_cast<size_t>(j - 1)][k]);
        acc[static_cast<size_t>(j - 1)][k] = T{};
      }
      if ((i & (mask << (j * power))) != 0) break;
    }
  }
  for (; i < size; ++i)
    for (size_t k = 0; k < 4; ++k) add_to(acc[0][k], item(i, k));
  for (size_t j = 1; j < levels; ++j)
    for (size_t k = 0; k < 4; ++k) add_to(acc[0][k], acc[j][k]);
  return acc[0];
}

}  // namespace

std::string_view quant4_type_name(Quant4Type t) { return t == Quant4Type::NF4 ? "nf4" : "fp4"; }

std::optional<Quant4Type> quant4_type_from_name(std::string_view s) {
  if (s == "nf4") return Quant4Type::NF4;
  if (s == "fp4") return Quant4Type::FP4;
  return std::nullopt;
}

QuantConfig parse_quant_config(int64_t bit, std::string_view type, bool double_quant, std::string_view prefix) {
  QuantConfig c;
  if (bit == 0) return c;
  if (bit != 4)
    throw Error("{}quantization_bit {}: only 4-bit quantization (bitsandbytes NF4/FP4, QLoRA) is implemented; use "
                "{}quantization_bit 4, or leave it unset for {}-bit weights as stored",
                prefix, bit, prefix, "16");
  const auto t = quant4_type_from_name(type);
  if (!t)
    throw Error("{}quantization_type \"{}\": not a 4-bit type; use nf4 (QLoRA's NormalFloat) or fp4", prefix, type);
  c.enabled = true;
  c.type = *t;
  c.double_quant = double_quant;
  return c;
}

const float* quant4_code(Quant4Type t) { return t == Quant4Type::NF4 ? kNf4 : fp4_code().data(); }
const float* dynamic8_code() { return dynamic8().data(); }

size_t quant4_nbytes(int64_t numel, bool nested) {
  const int64_t nb = (numel + kQuant4Block - 1) / kQuant4Block;
  const int64_t nn = (nb + kNestedBlock - 1) / kNestedBlock;
  return static_cast<size_t>((numel + 1) / 2 + (nested ? nb + 4 * nn : 4 * nb));
}

float torch_sum_f32(const float* x, int64_t n) {
  if (n < kLanes) {  // scalar_inner_sum: row_sum over 4 interleaved scalars
    const int64_t rows = n / 4;
    auto s = multi_row_sum<float>(rows, [&](int64_t i, size_t k) { return x[i * 4 + static_cast<int64_t>(k)]; });
    for (int64_t i = rows * 4; i < n; ++i) s[0] += x[i];
    for (size_t k = 1; k < 4; ++k) s[0] += s[k];
    return s[0];
  }
  // vectorized_inner_sum: row_sum over vectors of 8 (4 interleaved), the scalar tail, then the lanes.
  const int64_t vecs = n / kLanes, rows = vecs / 4;
  auto load = [&](int64_t v) {
    Vec r{};
    for (int l = 0; l < kLanes; ++l) r[static_cast<size_t>(l)] = x[v * kLanes + l];
    return r;
  };
  auto s = multi_row_sum<Vec>(rows, [&](int64_t i, size_t k) { return load(i * 4 + static_cast<int64_t>(k)); });
  for (int64_t v = rows * 4; v < vecs; ++v) vadd(s[0], load(v));
  for (size_t k = 1; k < 4; ++k) vadd(s[0], s[k]);
  float total = 0.f;
  for (int64_t i = vecs * kLanes; i < n; ++i) total += x[i];
  for (float lane : s[0]) total += lane;
  return total;
}

void quantize_blockwise8(uint8_t* q, float* absmax, const float* x, int64_t n, int64_t block, const float* code) {
  // build_quantize_lut: 65536 bins over [-1, 1], each the index of the nearest code value.
  constexpr int kLut = 65536;
  std::vector<uint8_t> lut(kLut);
  std::array<float, 255> mid{};
  for (size_t i = 0; i < 255; ++i) mid[i] = 0.5f * (code[i] + code[i + 1]);
  size_t c = 0;
  for (int i = 0; i < kLut; ++i) {
    const float v = -1.0f + (2.0f * static_cast<float>(i)) / static_cast<float>(kLut - 1);
    while (c < 255 && mid[c] < v) ++c;
    lut[static_cast<size_t>(i)] = static_cast<uint8_t>(c);
  }
  for (int64_t b = 0; b * block < n; ++b) {
    const int64_t i0 = b * block, i1 = std::min(n, i0 + block);
    float m = 0.f;
    for (int64_t i = i0; i < i1; ++i) m = std::max(m, std::fabs(x[i]));
    absmax[b] = m;
    const float inv = m == 0.f ? 0.f : 1.0f / m;
    for (int64_t i = i0; i < i1; ++i) {
      if (m == 0.f) {
        q[i] = 0;
        continue;
      }
      const float v = std::clamp(x[i] * inv, -1.0f, 1.0f);  // norm_to_lut_index
      q[i] = lut[static_cast<uint16_t>((v + 1.0f) * 0.5f * static_cast<float>(kLut - 1) + 0.5f)];
    }
  }
}

Quant4Host quantize_4bit(const void* src, DType src_type, int64_t n, Quant4Type type, bool double_quant) {
  LF_CHECK(n > 0, "quantize_4bit of {} elements", n);
  Quant4Host q;
  q.type = type;
  q.numel = n;
  quantize_codes(q, src, src_type, type);
  if (!double_quant) return q;
  // bitsandbytes: offset = absmax.mean(); quantize_blockwise(absmax − offset, blocksize=256).
  const int64_t nb = static_cast<int64_t>(q.absmax.size());
  q.nested = true;
  q.offset = torch_sum_f32(q.absmax.data(), nb) / static_cast<float>(nb);
  std::vector<float> centred(q.absmax.size());
  for (size_t i = 0; i < centred.size(); ++i) centred[i] = q.absmax[i] - q.offset;
  q.qabsmax.resize(centred.size());
  q.nested_absmax.resize(static_cast<size_t>((nb + kNestedBlock - 1) / kNestedBlock));
  quantize_blockwise8(q.qabsmax.data(), q.nested_absmax.data(), centred.data(), nb, kNestedBlock, dynamic8_code());
  q.absmax.clear();
  return q;
}

Quant4View cpu_view(const Quant4Host& q, int64_t rows, int64_t cols) {
  LF_CHECK(rows * cols == q.numel, "view of {} quantized elements as {}x{}", q.numel, rows, cols);
  auto t = [](const void* p, DType d, size_t n) {
    return Tensor(const_cast<void*>(p), d, {static_cast<int64_t>(n)});
  };
  Quant4View w;
  w.type = q.type;
  w.rows = rows;
  w.cols = cols;
  w.packed = t(q.packed.data(), DType::U8, q.packed.size());
  w.code4 = t(quant4_code(q.type), DType::F32, 16);
  if (q.nested) {
    w.absmax = t(q.qabsmax.data(), DType::U8, q.qabsmax.size());
    w.nested_absmax = t(q.nested_absmax.data(), DType::F32, q.nested_absmax.size());
    w.code8 = t(dynamic8_code(), DType::F32, 256);
    w.offset = q.offset;
  } else {
    w.absmax = t(q.absmax.data(), DType::F32, q.absmax.size());
  }
  return w;
}

float quant4_block_absmax(const Quant4View& w, int64_t b) {
  if (!w.nested()) return w.absmax.as<const float>()[b];
  const float v = w.code8.as<const float>()[w.absmax.as<const uint8_t>()[b]] * w.nested_absmax.as<const float>()[b / kNestedBlock];
  return v + w.offset;
}

void dequantize_4bit_ref(Tensor out, const Quant4View& w) {
  LF_CHECK(out.numel() == w.numel() && (out.dtype == DType::F32 || out.dtype == DType::BF16),
           "dequantize_4bit: {} {} for a {}x{} weight", dtype_name(out.dtype), out.shape_str(), w.rows, w.cols);
  dequantize_4bit_blocks(out, w, 0, (w.numel() + kQuant4Block - 1) / kQuant4Block);
}

void dequantize_4bit_blocks(Tensor out, const Quant4View& w, int64_t b0, int64_t b1) {
  const uint8_t* p = w.packed.as<const uint8_t>();
  const float* code = w.code4.as<const float>();
  const int64_t n = w.numel();
  for (int64_t b = b0; b < b1; ++b) {
    const float scale = quant4_block_absmax(w, b);
    for (int64_t i = b * kQuant4Block; i < std::min(n, (b + 1) * kQuant4Block); ++i) {
      const uint8_t byte = p[i / 2];
      const float v = code[(i & 1) ? (byte & 0x0f) : (byte >> 4)] * scale;
      if (out.dtype == DType::F32) out.as<float>()[i] = v;
      else out.as<uint16_t>()[i] = f32_to_bf16(v);
    }
  }
}

}  // namespace lorafit
