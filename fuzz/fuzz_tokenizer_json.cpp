// libFuzzer target: tokenizer.json (Tokenizer::load) — normalizers, pre-tokenizers with
// their regexes, the BPE model, added tokens, post-processor, decoder — then one encode and
// decode through whatever pipeline the input describes.
#include <cstdint>
#include <string>

#include "fuzz_common.h"
#include "tokenizer/tokenizer.h"

using namespace lorafit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::MemFile f(data, size);
  fuzz::refuse_or_accept(fuzz::as_text(data, size), [&] {
    Tokenizer tok = Tokenizer::load(f.path());
    const std::vector<int32_t> ids = tok.encode("Hello wörld 123 <|im_start|>user\n法律 \xf0\x9f\x98\x80  end", true);
    (void)tok.decode(ids);
  });
  return 0;
}
