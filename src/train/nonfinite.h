// Where the first NaN/Inf of a failed training step came from. A non-finite loss or
// gradient has two very different causes: a damaged input (a base weight, the adapter or the
// optimizer state loaded from a checkpoint already holds NaN/Inf — lowering learning_rate
// cannot help) or training itself (activations or updates outgrowing the dtype). This scans
// the inputs first, then re-runs the failing micro-batch's forward and checks every saved
// activation (each op's output) in the order the forward computed them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lora/lora_params.h"
#include "model/model.h"
#include "model/model_backward.h"

namespace lorafit {

struct MicroBatch;

// The first non-finite element of `t` (any float dtype, any device): its index, or -1.
int64_t first_non_finite(Backend& be, Tensor t);

// One sentence for the error message: what holds the first NaN/Inf (tensor name, layer) and
// whether it is an input or the training diverging, with what to do. `updates_done`: optimizer
// steps this process applied (0: the LoRA values and Adam state are still as loaded).
// Re-runs the forward of `mb` with `seed` through `passes` (its saved state is replaced).
std::string diagnose_non_finite(const Model& m, const LoraParams& lora, ModelBackward& passes, const MicroBatch& mb,
                                const std::vector<int32_t>& targets, uint64_t seed, int64_t updates_done);

}  // namespace lorafit
