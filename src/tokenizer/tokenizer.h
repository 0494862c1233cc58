// Tokenizer loaded from a Hugging Face tokenizer.json (byte-level BPE as in Qwen2/Llama 3,
// or SentencePiece-style BPE with byte fallback as in Llama 2/Mistral).
//
// Behaviour matches Hugging Face `tokenizers` (0.20): added tokens are matched in the raw
// text first (leftmost-longest, honouring special/lstrip/rstrip/single_word/normalized),
// then each remaining piece is normalized, pre-tokenized and run through BPE.
//
// Invalid UTF-8 input: HF's Rust core only ever sees valid strings (Python str cannot hold
// invalid bytes), so there is no reference behaviour. We replace every maximal invalid
// subpart with U+FFFD (as String::from_utf8_lossy / Python's decode(errors="replace") do)
// before encoding, so such input tokenizes as if the user had written U+FFFD there.
//
// Without tokenizer.json (vocab.json + merges.txt only) there are no added tokens and no
// pipeline information; we assume Qwen2's: normalizer NFC, pre-tokenizer Split on the
// Qwen2 regex (Isolated) + ByteLevel (no prefix space, no regex), decoder ByteLevel, no
// post-processor. For GPT-2 itself (no NFC, a different regex) use its tokenizer.json.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/file.h"

namespace lorafit {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

class Tokenizer {
 public:
  // A folder with tokenizer.json (or vocab.json + merges.txt), or the tokenizer.json itself.
  static Tokenizer load(const fs::path& dir_or_file);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // parse_special: match added tokens written in the text (as HF does by default). When
  // false, special added tokens are left as text (HF split_special_tokens=True); non-special
  // added tokens are still matched, as in HF. Never adds BOS/EOS: see post_process.
  std::vector<int32_t> encode(std::string_view text, bool parse_special = true) const;
  // Encodes many texts on `threads` threads (0: all cores). Same ids as encode().
  std::vector<std::vector<int32_t>> encode_batch(std::span<const std::string> texts, bool parse_special = true,
                                                 int threads = 0) const;
  // What HF's post-processor adds with add_special_tokens=True for one sequence (e.g.
  // Llama 2's "<s> $A"); Qwen's ByteLevel post-processor adds nothing.
  std::vector<int32_t> post_process(std::vector<int32_t> ids) const;

  // Invalid UTF-8 in the output becomes U+FFFD as HF does (ByteLevel: one per maximal invalid
  // subpart; ByteFallback: one per byte of an invalid run of <0x..> tokens). Unknown ids are
  // skipped, as in HF.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;
  // The decoder's raw bytes, no U+FFFD substitution (for the streaming decoder).
  std::string decode_bytes(std::span<const int32_t> ids, bool skip_special = false) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;  // "" for an id with no token
  size_t vocab_size() const;  // including added tokens (max id + 1, = len(tokenizer) in HF)
  const std::vector<AddedToken>& added_tokens() const;
  bool is_special(int32_t id) const;  // an added token with special=true

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Streaming detokenizer: feed ids as they are generated; push() returns only whole UTF-8
// characters (possibly ""), flush() returns what is held back at the end (an incomplete
// character becomes U+FFFD). The concatenated output equals tokenizer.decode(all ids) for
// valid output. For invalid byte-fallback runs it emits U+FFFD per maximal invalid subpart
// (it cannot wait for a run to end), which may differ in count from decode().
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false);
  std::string push(int32_t id);
  std::string flush();

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  std::vector<int32_t> window_;  // ids whose text is not all given out, plus one id of context
  size_t emitted_ = 0;           // bytes of decode_bytes(window_) already returned
};

}  // namespace lorafit
