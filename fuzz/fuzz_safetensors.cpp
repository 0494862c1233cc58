// libFuzzer target for the safetensors reader. Any input must either parse or throw
// lorafit::Error; a parsed file must have every tensor inside the input, and writing it
// back and reading that again must give the same tensors (the writer/reader agree).
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "formats/safetensors.h"
#include "util/error.h"

using namespace lorafit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  try {
    SafetensorsFile f = SafetensorsFile::from_bytes(in, "fuzz");
    std::vector<TensorToWrite> back;
    for (const TensorInfo& t : f.tensors()) {
      if (t.data < data || t.nbytes > size || t.data + t.nbytes > data + size) __builtin_trap();
      try {
        (void)t.view();
      } catch (const Error&) {  // rank > 4 or unaligned: a refusal, not a bug
      }
      back.push_back({t.name, t.dtype, t.shape, std::span(t.data, t.nbytes)});
    }
    std::string bytes = safetensors_serialize(back, f.metadata());
    SafetensorsFile g =
        SafetensorsFile::from_bytes(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), "again");
    if (g.tensors().size() != f.tensors().size() || g.metadata() != f.metadata()) __builtin_trap();
    for (const TensorInfo& t : f.tensors()) {
      const TensorInfo* u = g.find(t.name);
      if (!u || u->dtype != t.dtype || u->shape != t.shape || u->nbytes != t.nbytes ||
          (t.nbytes && std::memcmp(u->data, t.data, t.nbytes) != 0))
        __builtin_trap();
    }
  } catch (const Error&) {  // refused with a message: the expected outcome for bad input
  }
  return 0;
}
