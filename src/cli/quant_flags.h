// --quantization_bit / --quantization_type / --double_quantization (QLoRA's 4-bit base weights,
// LLaMA-Factory's names) for the commands that load a model for inference.
#pragma once
#include <string>

#include <CLI/CLI.hpp>

#include "generate/inference.h"

namespace lorafit::cli {

inline void add_quant_flags(CLI::App& sub, QuantFlags& q) {
  sub.add_option("--quantization_bit", q.bit, "4: quantize the base weights to 4 bits at load (QLoRA; 0: none)")
      ->capture_default_str();
  sub.add_option("--quantization_type", q.type, "nf4 or fp4: the 4-bit code (with --quantization_bit 4)")
      ->capture_default_str();
  sub.add_option("--double_quantization", q.double_quant, "true or false: quantize the absmax values too")
      ->capture_default_str();
}

}  // namespace lorafit::cli
