#include "train/dora_init.h"

#include <functional>
#include <memory>

#include "util/error.h"

namespace lorafit {

void init_dora_magnitude_from_base(LoraParams& p, const Model& model) {
  const ModelWeights& weights = model.weights();
  // One reused backend buffer for a dequantized weight: lora_init_dora_magnitude is done with
  // each weight before it asks for the next.
  Backend& be = p.backend();
  size_t have = 0;
  std::unique_ptr<void, std::function<void(void*)>> buf(nullptr, [&be](void* q) { be.free(q); });
  lora_init_dora_magnitude(
      p,
      [&](const LinearModule& m) {
        for (const ParamInfo& pi : weights.params()) {
          if (pi.name != m.name + ".weight") continue;
          if (!pi.quant) return pi.tensor;
          if (pi.tensor.nbytes() > have) {
            buf.reset(be.alloc(pi.tensor.nbytes()));
            have = pi.tensor.nbytes();
          }
          Tensor t = pi.tensor;
          t.data = buf.get();
          t.device = be.device();
          be.dequantize_4bit(t, *pi.quant);
          return t;
        }
        throw Error("DoRA init: the model has no weight {}.weight", m.name);
      },
      // PEFT: a 4-bit base's A, B stay fp32 and promote the dequantized weight; a 16-bit
      // base's A, B were moved to its dtype, so the norm is computed (and kept) in it.
      weights.quantized() ? DType::F32 : weights.dtype());
}

}  // namespace lorafit
