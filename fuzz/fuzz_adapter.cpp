// libFuzzer target: a PEFT adapter folder's adapter_config.json (load_peft_adapter_config),
// the file `lorafit chat/generate/merge --adapter` and `train --adapter_name_or_path` read.
// (adapter_model.safetensors goes through the safetensors reader: fuzz_safetensors.)
#include <cstdint>

#include "fuzz_common.h"
#include "lora/lora_adapter.h"

using namespace lorafit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto dir = fuzz::folder_with("adapter_config.json", data, size);
  fuzz::refuse_or_accept(fuzz::as_text(data, size), [&] { (void)load_peft_adapter_config(dir); });
  return 0;
}
