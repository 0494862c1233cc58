// libFuzzer target: config.json and generation_config.json (parse_model_config,
// parse_generation_config) and the generic untrusted-JSON readers they and the tokenizer,
// dataset and adapter readers share (parse_json / parse_json_ordered / parse_json_strict).
#include <cstdint>
#include <string>

#include "formats/generation_config.h"
#include "formats/json_util.h"
#include "formats/model_config.h"
#include "fuzz_common.h"

using namespace lorafit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::refuse_or_accept(fuzz::as_text(data, size), [&] { (void)parse_model_config(text, "config.json"); });
  fuzz::refuse_or_accept(fuzz::as_text(data, size), [&] { (void)parse_generation_config(text, "generation_config.json"); });
  fuzz::refuse_or_accept(fuzz::as_text(data, size), [&] { (void)parse_json(text, "x.json").dump(); });  // dump: recursion stays bounded
  fuzz::refuse_or_accept(fuzz::as_text(data, size), [&] { (void)parse_json_ordered(text, "x.json").dump(); });
  return 0;
}
