// What `lorafit train` and `lorafit demo` share: greedy generation for the before/after
// samples (the generate layer, which the train layer does not link), and the key table as
// help text.
#pragma once
#include <string>

#include "train/trainer.h"

namespace lorafit::cli {

// Greedy decoding with a KV cache, stopping at an eos id (not returned) or max_new_tokens.
GenerateFn greedy_generate_fn();

// "  --key  help" lines for every setting, for `lorafit train --help`.
std::string settings_help();

}  // namespace lorafit::cli
