#include "tokenizer/bpe.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <algorithm>
#include <functional>

#include "formats/json_util.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace lorafit::tok {

using json = nlohmann::json;

void PairMap::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  keys_.assign(cap, ~uint64_t{0});
  values_.assign(cap, Value{0, 0});
  mask_ = cap - 1;
  size_ = 0;
}

bool PairMap::insert(int32_t a, int32_t b, Value v) {
  LF_CHECK(size_ * 2 < keys_.size(), "PairMap over capacity");
  const uint64_t k = key(a, b);
  for (size_t h = (k * 0x9E3779B97F4A7C15ull) >> 20 & mask_;; h = (h + 1) & mask_) {
    if (keys_[h] == k) return false;
    if (keys_[h] == ~uint64_t{0}) {
      keys_[h] = k;
      values_[h] = v;
      ++size_;
      return true;
    }
  }
}

const PairMap::Value* PairMap::find(int32_t a, int32_t b) const {
  if (keys_.empty()) return nullptr;
  const uint64_t k = key(a, b);
  for (size_t h = (k * 0x9E3779B97F4A7C15ull) >> 20 & mask_;; h = (h + 1) & mask_) {
    if (keys_[h] == k) return &values_[h];
    if (keys_[h] == ~uint64_t{0}) return nullptr;
  }
}

namespace {
std::atomic<uint64_t> g_next_uid{1};

std::string opt_string(const json& m, const char* key) {
  if (!m.contains(key) || m.at(key).is_null()) return {};
  if (!m.at(key).is_string()) throw Error("tokenizer.json: model.{} must be a string or null", key);
  return m.at(key).get<std::string>();
}
bool opt_bool(const json& m, const char* key) {
  if (!m.contains(key) || m.at(key).is_null()) return false;
  if (!m.at(key).is_boolean()) throw Error("tokenizer.json: model.{} must be true or false", key);
  return m.at(key).get<bool>();
}
}  // namespace

Bpe Bpe::from_json(const json& m, bool byte_level) {
  if (!m.is_object()) throw Error("tokenizer.json: model must be an object");
  if (!m.contains("type")) {
    // Old files omit the type; BPE is recognised by its merges.
    if (!m.contains("merges")) throw Error("tokenizer.json: model.type is missing; expected \"BPE\"");
  } else if (!m.at("type").is_string() || m.at("type").get<std::string>() != "BPE") {
    throw Error("tokenizer.json: model.type: unsupported model {} (only \"BPE\" is implemented; WordPiece, "
                "Unigram and WordLevel are not)", m.at("type").dump());
  }
  if (m.contains("dropout") && !m.at("dropout").is_null() && m.at("dropout").get<double>() != 0.0)
    throw Error("tokenizer.json: model.dropout is {}; BPE dropout is a training-time augmentation we do not "
                "implement: set it to null", m.at("dropout").dump());
  Bpe b;
  b.byte_level_ = byte_level;
  b.prefix_ = opt_string(m, "continuing_subword_prefix");
  b.suffix_ = opt_string(m, "end_of_word_suffix");
  if (byte_level && (!b.prefix_.empty() || !b.suffix_.empty()))
    throw Error("tokenizer.json: model.continuing_subword_prefix / end_of_word_suffix with a ByteLevel "
                "pre-tokenizer is not supported");
  b.byte_fallback_ = opt_bool(m, "byte_fallback");
  b.fuse_unk_ = opt_bool(m, "fuse_unk");
  b.ignore_merges_ = opt_bool(m, "ignore_merges");
  if (!m.contains("vocab") || !m.at("vocab").is_object())
    throw Error("tokenizer.json: model.vocab is missing or not an object of token -> id");
  const json& vocab = m.at("vocab");
  b.vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > INT32_MAX)
      throw Error("tokenizer.json: model.vocab[\"{}\"] must be a non-negative integer id, got {}", it.key(), it.value().dump());
    b.vocab_.emplace(it.key(), it.value().get<int32_t>());
  }
  if (!m.contains("merges") || !m.at("merges").is_array())
    throw Error("tokenizer.json: model.merges is missing or not an array");
  const json& mj = m.at("merges");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(mj.size());
  for (size_t k = 0; k < mj.size(); ++k) {
    const json& e = mj[k];
    if (e.is_string()) {  // "a b"
      const std::string s = e.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        throw Error("tokenizer.json: model.merges[{}] = \"{}\" must be two tokens separated by one space", k, s);
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {  // ["a", "b"]
      merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    } else {
      throw Error("tokenizer.json: model.merges[{}] must be \"a b\" or [\"a\", \"b\"], got {}", k, e.dump());
    }
  }
  const std::string unk = opt_string(m, "unk_token");
  if (!unk.empty()) {
    auto it = b.vocab_.find(unk);
    if (it == b.vocab_.end()) throw Error("tokenizer.json: model.unk_token \"{}\" is not in model.vocab", unk);
    b.unk_id_ = it->second;
  }
  b.build(merges, "tokenizer.json: model.merges");
  return b;
}

Bpe Bpe::from_files(const std::string& vocab_json, const std::string& merges_txt, const std::string& vocab_name,
                    const std::string& merges_name) {
  const json vocab = parse_json(vocab_json, vocab_name);
  if (!vocab.is_object()) throw Error("{}: expected an object of token -> id", vocab_name);
  Bpe b;
  b.byte_level_ = true;
  b.vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > INT32_MAX)
      throw Error("{}: \"{}\" must map to a non-negative integer id", vocab_name, it.key());
    b.vocab_.emplace(it.key(), it.value().get<int32_t>());
  }
  std::vector<std::pair<std::string, std::string>> merges;
  size_t line_no = 0;
  for (size_t pos = 0; pos < merges_txt.size();) {
    size_t nl = merges_txt.find('\n', pos);
    if (nl == std::string::npos) nl = merges_txt.size();
    std::string line = merges_txt.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    const size_t sp = line.find(' ');
    if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
      throw Error("{}:{}: \"{}\" must be two tokens separated by one space", merges_name, line_no, line);
    merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
  }
  b.build(merges, merges_name);
  return b;
}

void Bpe::build(const std::vector<std::pair<std::string, std::string>>& merges, const std::string& merges_name) {
  uid_ = g_next_uid.fetch_add(1);
  int32_t max_id = -1;
  for (const auto& [tok, id] : vocab_) max_id = std::max(max_id, id);
  id_to_token_.assign(static_cast<size_t>(max_id + 1), {});
  has_id_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [tok, id] : vocab_) {
    id_to_token_[id] = tok;
    has_id_[id] = true;
  }
  if (byte_level_) {
    byte_ids_.assign(256, -1);
    std::string raw;
    for (const auto& [tok, id] : vocab_) {
      raw.clear();
      if (unmap_byte_level(tok, raw)) {  // tokens with characters outside the table never match a word
        raw_vocab_.emplace(raw, id);
        if (raw.size() == 1) byte_ids_[static_cast<uint8_t>(raw[0])] = id;
      }
    }
  }
  merges_.reserve(merges.size());
  auto lookup = [&](const std::string& t, size_t k) {
    auto it = vocab_.find(t);
    if (it == vocab_.end())
      throw Error("{}[{}]: token \"{}\" of merge \"{} {}\" is not in the vocab; the merges and the vocab do not "
                  "belong together", merges_name, k, t, merges[k].first, merges[k].second);
    return it->second;
  };
  for (size_t k = 0; k < merges.size(); ++k) {
    const auto& [a, bb] = merges[k];
    const int32_t ia = lookup(a, k), ib = lookup(bb, k);
    std::string merged = a;
    merged += (!prefix_.empty() && bb.rfind(prefix_, 0) == 0) ? bb.substr(prefix_.size()) : bb;
    const int32_t im = lookup(merged, k);
    merges_.insert(ia, ib, {static_cast<int32_t>(k), im});  // a repeated merge keeps its first rank
  }
}

std::optional<int32_t> Bpe::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* Bpe::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !has_id_[id]) return nullptr;
  return &id_to_token_[id];
}

namespace {
// Per-thread cache of word -> ids, so that encode needs no lock. Flat pool of ids.
struct WordCache {
  uint64_t owner = 0;
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, StringHash, std::equal_to<>> map;
  std::vector<int32_t> pool;
};
constexpr size_t kCacheMaxWordBytes = 256;
constexpr size_t kCacheMaxEntries = 1 << 17;
}  // namespace

void Bpe::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (word.size() > kCacheMaxWordBytes) return merge_word(word, out);
  thread_local WordCache cache;
  if (cache.owner != uid_ || cache.map.size() >= kCacheMaxEntries) {
    cache.map.clear();
    cache.pool.clear();
    cache.owner = uid_;
  }
  auto it = cache.map.find(word);
  if (it != cache.map.end()) {
    out.insert(out.end(), cache.pool.begin() + it->second.first,
               cache.pool.begin() + it->second.first + it->second.second);
    return;
  }
  const size_t before = out.size();
  merge_word(word, out);
  const auto off = static_cast<uint32_t>(cache.pool.size());
  cache.pool.insert(cache.pool.end(), out.begin() + static_cast<ptrdiff_t>(before), out.end());
  cache.map.emplace(std::string(word), std::make_pair(off, static_cast<uint32_t>(out.size() - before)));
}

// The merge loop of HF tokenizers' Word::merge_all, reproduced exactly (including how a
// stale queue entry is recognised: only by its merged id). Symbols form a linked list over
// an array; a min-heap holds candidate pairs ordered by (rank, position). Each merge removes
// one symbol and pushes at most two pairs, so a word of n symbols costs O(n log n) whatever
// its content: a 1 MB run of one character with no split point stays fast.
void Bpe::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    auto it = byte_level_ ? raw_vocab_.find(word) : vocab_.find(word);
    if (it != (byte_level_ ? raw_vocab_.end() : vocab_.end())) {
      out.push_back(it->second);
      return;
    }
  }
  struct Sym {
    int32_t id, prev, next;
    bool alive;
  };
  thread_local std::vector<Sym> syms;  // (n_symbols,)
  syms.clear();
  auto push = [&](int32_t id) {
    const auto n = static_cast<int32_t>(syms.size());
    syms.push_back({id, n - 1, n + 1, true});
  };
  // 1. Initial symbols.
  if (byte_level_) {
    for (char c : word) {
      const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
      if (id >= 0) push(id);
      else if (unk_id_) {
        if (!(fuse_unk_ && !syms.empty() && syms.back().id == *unk_id_)) push(*unk_id_);
      } else {
        throw Error("tokenizer: byte 0x{:02X} has no token and the model has no unk_token", static_cast<uint8_t>(c));
      }
    }
  } else {
    std::string s;
    bool pending_unk = false;  // HF fuses consecutive unknown characters into one unk when fuse_unk
    for (size_t i = 0; i < word.size();) {
      const size_t b = i;
      next_cp(word, i);
      s.assign(b > 0 ? prefix_ : std::string());
      s.append(word.substr(b, i - b));
      if (i == word.size()) s += suffix_;
      auto it = vocab_.find(s);
      if (it != vocab_.end()) {
        if (pending_unk) push(*unk_id_), pending_unk = false;
        push(it->second);
        continue;
      }
      if (byte_fallback_) {
        int32_t ids[8];
        size_t n = 0;
        bool all = s.size() <= 8;
        for (size_t q = 0; all && q < s.size(); ++q) {
          const auto bt = fmt::format("<0x{:02X}>", static_cast<uint8_t>(s[q]));
          auto bi = vocab_.find(bt);
          if (bi == vocab_.end()) all = false;
          else ids[n++] = bi->second;
        }
        if (all) {  // as HF: a pending unk is not flushed before byte-fallback tokens
          for (size_t q = 0; q < n; ++q) push(ids[q]);
          continue;
        }
      }
      if (!unk_id_)
        throw Error("tokenizer: \"{}\" has no token, no byte fallback and the model has no unk_token",
                    std::string(word.substr(b, i - b)));
      if (pending_unk && !fuse_unk_) push(*unk_id_);
      pending_unk = true;
    }
    if (pending_unk) push(*unk_id_);
  }
  const auto n = static_cast<int32_t>(syms.size());
  if (n == 0) return;
  syms.back().next = -1;
  // 2. Merge.
  struct Cand {
    int32_t rank, pos, new_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  thread_local std::vector<Cand> heap;  // min-heap on (rank, pos)
  heap.clear();
  auto heap_push = [&](Cand c) {
    heap.push_back(c);
    std::push_heap(heap.begin(), heap.end(), std::greater<Cand>{});
  };
  for (int32_t i = 0; i + 1 < n; ++i)
    if (const auto* m = merges_.find(syms[i].id, syms[i + 1].id)) heap.push_back({m->rank, i, m->id});
  std::make_heap(heap.begin(), heap.end(), std::greater<Cand>{});
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<Cand>{});
    const Cand top = heap.back();
    heap.pop_back();
    Sym& cur = syms[top.pos];
    if (!cur.alive || cur.next < 0) continue;
    const Sym& right = syms[cur.next];
    const auto* m = merges_.find(cur.id, right.id);
    if (!m || m->id != top.new_id) continue;  // stale entry
    const int32_t right_pos = cur.next;
    cur.id = top.new_id;
    cur.next = right.next;
    syms[right_pos].alive = false;
    if (cur.next >= 0) syms[cur.next].prev = top.pos;
    if (cur.prev >= 0)
      if (const auto* pm = merges_.find(syms[cur.prev].id, cur.id)) heap_push({pm->rank, cur.prev, pm->id});
    if (cur.next >= 0)
      if (const auto* nm = merges_.find(cur.id, syms[cur.next].id)) heap_push({nm->rank, top.pos, nm->id});
  }
  for (int32_t i = 0; i >= 0; i = syms[i].next) out.push_back(syms[i].id);
}

}  // namespace lorafit::tok
