// 4-bit block quantization of weights as bitsandbytes does it (QLoRA, docs/quantization.md):
// NF4 or FP4 code books, blocks of 64 consecutive elements of the row-major (flattened) tensor,
// one fp32 absmax per block, two codes per byte (the even element in the high nibble). With
// double quantization the absmax values minus their mean (fp32 `offset`) are quantized again
// to 8-bit codes of bitsandbytes' dynamic map in blocks of 256, with one fp32 absmax per block.
//
// quantize_4bit follows bitsandbytes 0.50's CPU path exactly (its torch default kernel for
// 4-bit, its C++ `quantize_cpu` for the 8-bit absmax codes, torch's fp32 mean), so packed bytes
// and absmax equal bitsandbytes' bit for bit; dequantize_4bit_ref is the reference every
// backend's dequantize op matches: value = code[q] · absmax in fp32, rounded once to the output.
//
// Letters: n elements, nb = ceil(n/64) blocks, nn = ceil(nb/256) nested blocks.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "tensor/tensor.h"

namespace lorafit {

enum class Quant4Type : uint8_t { NF4, FP4 };

constexpr int64_t kQuant4Block = 64;   // elements per absmax (bitsandbytes' default blocksize)
constexpr int64_t kNestedBlock = 256;  // absmax values per nested absmax (double quantization)

std::string_view quant4_type_name(Quant4Type t);                    // "nf4" / "fp4"
std::optional<Quant4Type> quant4_type_from_name(std::string_view s);  // nullopt for other names
const float* quant4_code(Quant4Type t);  // 16 values: bitsandbytes' get_4bit_type(t)
const float* dynamic8_code();            // 256 values: bitsandbytes' create_dynamic_map()

// Quantization of the base weights at load (LLaMA-Factory's quantization_bit /
// quantization_type / double_quantization; bitsandbytes' BitsAndBytesConfig(load_in_4bit,
// bnb_4bit_quant_type, bnb_4bit_use_double_quant)). Off by default.
struct QuantConfig {
  bool enabled = false;  // quantization_bit 4
  Quant4Type type = Quant4Type::NF4;
  bool double_quant = true;
};
// Checks the user's settings: bit 0 (off) or 4, type nf4/fp4. Throws Error naming the setting
// (`prefix` + name: "--" for flags) and what is implemented.
QuantConfig parse_quant_config(int64_t bit, std::string_view type, bool double_quant, std::string_view prefix);

// One quantized tensor in host memory (what quantize_4bit writes and a checkpoint holds).
struct Quant4Host {
  Quant4Type type = Quant4Type::NF4;
  int64_t numel = 0;
  bool nested = false;                // double quantization
  std::vector<uint8_t> packed;        // (ceil(n/2)) two codes per byte, element 2i in the high nibble
  std::vector<float> absmax;          // (nb) F32; empty when nested
  std::vector<uint8_t> qabsmax;       // (nb) 8-bit codes of absmax − offset; nested only
  std::vector<float> nested_absmax;   // (nn) F32; nested only
  float offset = 0.f;                 // mean of the absmax values; nested only
  size_t nbytes() const {             // what the quantized weight occupies
    return packed.size() + absmax.size() * 4 + qabsmax.size() + nested_absmax.size() * 4;
  }
};

// A quantized weight on some backend's device: views of a Quant4Host's arrays (uploaded), and
// of the code books, so a kernel needs nothing else. The weight is (rows, cols) = (O, I).
struct Quant4View {
  Quant4Type type = Quant4Type::NF4;
  int64_t rows = 0, cols = 0;
  Tensor packed;         // (ceil(O·I/2)) U8
  Tensor absmax;         // (nb) F32, or (nb) U8 codes when nested
  Tensor nested_absmax;  // (nn) F32; empty unless nested
  Tensor code4;          // (16) F32 quant4_code(type)
  Tensor code8;          // (256) F32 dynamic8_code(); empty unless nested
  float offset = 0.f;
  bool nested() const { return !nested_absmax.empty(); }
  int64_t numel() const { return rows * cols; }
};

// Bytes of a quantized (rows·cols)-element weight: packed codes plus (nested) absmax.
size_t quant4_nbytes(int64_t numel, bool nested);

// Quantizes n elements of src (F32, BF16 or F16; read as fp32 like torch's A.float()).
Quant4Host quantize_4bit(const void* src, DType src_type, int64_t n, Quant4Type type, bool double_quant);

// bitsandbytes' 8-bit blockwise quantization on the CPU (cquantize_blockwise_cpu_fp32):
// absmax (ceil(n/block)) per block, q (n) the code index of x/absmax through its 65536-bin
// nearest-code table of `code` (256 sorted values).
void quantize_blockwise8(uint8_t* q, float* absmax, const float* x, int64_t n, int64_t block, const float* code);

// torch's single-threaded fp32 CPU sum (at::native cascade_sum over 8-lane vectors), so that
// mean = sum / n is the offset bitsandbytes computes with torch.mean.
float torch_sum_f32(const float* x, int64_t n);

// CPU views of q's arrays as a (rows, cols) weight (rows·cols == q.numel); q must outlive them.
Quant4View cpu_view(const Quant4Host& q, int64_t rows, int64_t cols);

// The fp32 absmax of block b of a CPU view: absmax[b], or with double quantization
// code8[q[b]]·nested[b/256] + offset (bitsandbytes' dequantize_blockwise, then += offset).
float quant4_block_absmax(const Quant4View& w, int64_t b);

// out (rows, cols) F32 or BF16 = code4[q_i] · absmax(i / 64) in fp32, one rounding to out's
// dtype: the CPU reference of Backend::dequantize_4bit (CPU views only).
void dequantize_4bit_ref(Tensor out, const Quant4View& w);
// The same for blocks [b0, b1) only (elements [64·b0, min(n, 64·b1))), for parallel loops.
void dequantize_4bit_blocks(Tensor out, const Quant4View& w, int64_t b0, int64_t b1);

}  // namespace lorafit
