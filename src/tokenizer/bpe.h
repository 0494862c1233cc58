// The BPE model of tokenizer.json ("model": {"type": "BPE", ...}), as Hugging Face
// tokenizers runs it: a word starts as one symbol per character (per byte for byte-level
// tokenizers), unknown characters fall back to <0xNN> byte tokens or to unk, then the
// adjacent pair with the lowest merge rank is merged, leftmost first, until none is left.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lorafit::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// (left id, right id) -> (rank, merged id) in an open-addressing table: the merge loop's
// hot lookup.
class PairMap {
 public:
  struct Value {
    int32_t rank, id;
  };
  void reserve(size_t n);
  bool insert(int32_t a, int32_t b, Value v);  // false if the pair is already there
  const Value* find(int32_t a, int32_t b) const;

 private:
  static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  std::vector<uint64_t> keys_;
  std::vector<Value> values_;
  size_t mask_ = 0, size_ = 0;
};

class Bpe {
 public:
  // `model` is tokenizer.json's "model"; `byte_level`: the pre-tokenizer ends in ByteLevel,
  // so words arrive as raw bytes and each byte is one initial symbol.
  static Bpe from_json(const nlohmann::json& model, bool byte_level);
  // vocab.json + merges.txt (byte-level; merges.txt may start with a "#version" line).
  static Bpe from_files(const std::string& vocab_json, const std::string& merges_txt,
                        const std::string& vocab_name, const std::string& merges_name);

  // Appends the ids of one pre-tokenized word. Thread-safe (per-thread word cache).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;  // nullptr when not a model id
  size_t size() const { return id_to_token_.size(); }

 private:
  void build(const std::vector<std::pair<std::string, std::string>>& merges, const std::string& merges_name);
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  TokenMap vocab_;                       // token string (as in the file) -> id
  std::vector<std::string> id_to_token_;  // id -> token string ("" for holes)
  std::vector<bool> has_id_;
  TokenMap raw_vocab_;                   // byte-level: raw bytes -> id
  std::vector<int32_t> byte_ids_;        // byte-level: byte -> id of its one-character token, -1 if none
  PairMap merges_;
  std::optional<int32_t> unk_id_;
  std::string prefix_, suffix_;          // continuing_subword_prefix, end_of_word_suffix
  bool byte_level_ = false, byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  uint64_t uid_ = 0;                     // tells the per-thread caches apart
};

}  // namespace lorafit::tok
