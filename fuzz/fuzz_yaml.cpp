// libFuzzer target: `lorafit train --config FILE.yaml` (apply_yaml_file, then
// validate_settings): every setting's value parser sees the fuzzed text.
#include <cstdint>

#include "fuzz_common.h"
#include "train/train_config.h"

using namespace lorafit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::MemFile f(data, size);
  fuzz::refuse_or_accept(fuzz::as_text(data, size), [&] {
    TrainSettings s;
    apply_yaml_file(s, f.path());
    validate_settings(s);
    (void)settings_to_yaml(s);
  });
  return 0;
}
