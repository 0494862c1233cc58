// DoRA's magnitude init from the base model, as PEFT's dora_init reads the base layer.
#pragma once
#include "lora/lora_params.h"
#include "model/model.h"

namespace lorafit {

// m = ‖W + s·B·A‖ per output row of every adapted projection (lora_init_dora_magnitude), from
// the model's weights: a 4-bit weight is dequantized first (PEFT's dequantize_module_weight)
// and its norm kept in fp32; a 16-bit base's norm is rounded to the weight dtype.
void init_dora_magnitude_from_base(LoraParams& p, const Model& model);

}  // namespace lorafit
