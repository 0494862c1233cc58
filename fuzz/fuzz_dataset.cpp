// libFuzzer target: dataset files (load_dataset): JSON Lines or one JSON array, every record
// form (pair, alpaca, messages, ShareGPT, text), column mapping, system prompt, references;
// the first input byte picks the options so both "stop at the first bad record" and
// on_bad_record: skip are fuzzed. Every loaded record is turned into prompt messages.
#include <cstdint>

#include "fuzz_common.h"
#include "train/dataset.h"

using namespace lorafit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t knob = data[0];
  fuzz::MemFile f(data + 1, size - 1);
  DatasetOptions o;
  o.skip_bad = knob & 1;
  o.include_reference = knob & 2;
  if (knob & 4) o.system = "sys";
  if (knob & 8) o.columns = "input=question,output=answer";
  const DatasetFormat forms[] = {DatasetFormat::Auto, DatasetFormat::Pair, DatasetFormat::Alpaca, DatasetFormat::Chat,
                                 DatasetFormat::ShareGpt, DatasetFormat::Text};
  o.format = forms[(knob >> 4) % 6];
  fuzz::refuse_or_accept(fuzz::as_text(data, size), [&] {
    const Dataset ds = load_dataset(f.path(), o);
    for (const Record& r : ds.records)
      if (!r.messages.empty()) {
        (void)prompt_messages(r);
        (void)reference_answer(r);
      }
  });
  return 0;
}
