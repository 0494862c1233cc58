#include "train/dora_init.h"

#include <cstdint>
#include <vector>

#include "util/error.h"

namespace lorafit {

void init_dora_magnitude_from_base(LoraParams& p, const Model& model) {
  const ModelWeights& weights = model.weights();
  // One reused buffer for a dequantized weight: lora_init_dora_magnitude is done with each
  // weight before it asks for the next.
  std::vector<uint8_t> dequantized;
  lora_init_dora_magnitude(
      p,
      [&](const LinearModule& m) {
        for (const ParamInfo& pi : weights.params()) {
          if (pi.name != m.name + ".weight") continue;
          if (!pi.quant) return pi.tensor;
          dequantized.resize(pi.tensor.nbytes());
          Tensor t = pi.tensor;
          t.data = dequantized.data();
          t.device = Device::CPU;
          p.backend().dequantize_4bit(t, *pi.quant);
          return t;
        }
        throw Error("DoRA init: the model has no weight {}.weight", m.name);
      },
      // PEFT: a 4-bit base's A, B stay fp32 and promote the dequantized weight; a 16-bit
      // base's A, B were moved to its dtype, so the norm is computed (and kept) in it.
      weights.quantized() ? DType::F32 : weights.dtype());
}

}  // namespace lorafit
