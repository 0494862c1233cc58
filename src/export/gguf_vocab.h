// The tokenizer part of a GGUF model file, as llama.cpp's convert_hf_to_gguf.py writes it
// (TextModel._set_vocab_gpt2 / _set_vocab_llama_hf and gguf-py's SpecialVocab):
//   byte-level BPE (Qwen2, Qwen3, Llama 3): tokenizer.ggml.model "gpt2", tokenizer.ggml.pre
//     found as llama.cpp finds it (sha256 of the ids of its check text, gguf_pre_table.inc),
//     tokens (vocab_size of config.json, holes "[PADi]" UNUSED), token types, merges;
//   SentencePiece-style BPE in tokenizer.json (byte fallback; Llama 2, Mistral): model
//     "llama", pre "default", tokens, scores (-1000, as the converter), types (CONTROL for
//     special ids, BYTE for <0xXX>);
//   then bos/eos/unk/sep/pad(/eot/eom) ids, add_bos/add_eos/add_sep, the chat template and
//     normalizer flags as SpecialVocab derives them from tokenizer.json, tokenizer_config.json
//     and config.json.
// A SentencePiece tokenizer.model (read by the converter with the sentencepiece library) and
// pre-tokenizers llama.cpp does not know are refused with an Error naming the file.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "util/file.h"

namespace lorafit {

enum class VocabKind { Gpt2, LlamaHf };

struct GgufVocabInfo {
  VocabKind kind = VocabKind::Gpt2;
  std::string pre;                       // tokenizer.ggml.pre
  std::vector<int32_t> stop_ids;         // eos (and eot/eom) ids written, for the Modelfile
  std::vector<std::string> stop_tokens;  // their texts
  std::string chat_template;             // "" when none
};

// Writes the tokenizer keys into kv (in the converter's order). tokenizer_dir holds
// tokenizer.json and tokenizer_config.json (the adapter folder's when it has them: the files
// the run trained with); config_json is the base model's config.json. llama_family: the
// LlamaModel converter class (llama, mistral), which tries the SentencePiece-style path
// before byte-level BPE and writes add_space_prefix.
GgufVocabInfo add_gguf_vocab(GgufMetadata& kv, const fs::path& tokenizer_dir, const fs::path& config_json,
                             bool llama_family);

}  // namespace lorafit
