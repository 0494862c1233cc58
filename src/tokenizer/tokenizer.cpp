// Loading tokenizer.json and the encode/decode pipeline around the BPE model.
#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <thread>
#include <unordered_map>

#include "formats/json_util.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace lorafit {

using json = nlohmann::json;
using namespace tok;

namespace {

// Leftmost-longest matcher over the added tokens (what HF does with aho-corasick
// MatchKind::LeftmostLongest), as a byte trie; tokens are few and short.
class AddedMatcher {
 public:
  void add(std::string_view pattern, size_t token_index) {
    if (pattern.empty()) return;
    if (nodes_.empty()) nodes_.emplace_back();
    size_t n = 0;
    for (char c : pattern) {
      auto it = nodes_[n].kids.find(static_cast<uint8_t>(c));
      if (it == nodes_[n].kids.end()) {
        nodes_[n].kids.emplace(static_cast<uint8_t>(c), nodes_.size());
        n = nodes_.size();
        nodes_.emplace_back();
      } else {
        n = it->second;
      }
    }
    if (nodes_[n].token < 0) nodes_[n].token = static_cast<int64_t>(token_index);
    first_[static_cast<uint8_t>(pattern[0])] = true;
  }
  bool empty() const { return nodes_.empty(); }
  // Next match at or after `from`: (begin, end, token index); false when none.
  bool next(std::string_view s, size_t from, size_t& b, size_t& e, size_t& tok) const {
    for (size_t p = from; p < s.size(); ++p) {
      if (!first_[static_cast<uint8_t>(s[p])]) continue;
      size_t n = 0, best_end = 0;
      int64_t best = -1;
      for (size_t q = p; q < s.size(); ++q) {
        auto it = nodes_[n].kids.find(static_cast<uint8_t>(s[q]));
        if (it == nodes_[n].kids.end()) break;
        n = it->second;
        if (nodes_[n].token >= 0) best = nodes_[n].token, best_end = q + 1;
      }
      if (best >= 0) {
        b = p, e = best_end, tok = static_cast<size_t>(best);
        return true;
      }
    }
    return false;
  }

 private:
  struct Node {
    std::map<uint8_t, size_t> kids;
    int64_t token = -1;
  };
  std::vector<Node> nodes_;
  bool first_[256] = {};
};

bool is_word_char(char32_t c) { return c == '_' || is_alphanumeric(c); }

struct Piece {
  size_t b, e;
  int32_t id;  // -1: plain text
};

}  // namespace

struct Tokenizer::Impl {
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  Bpe model;
  Decoder decoder;
  bool has_decoder = false;
  std::vector<AddedToken> added;
  std::unordered_map<int32_t, size_t> added_by_id;  // id -> index in `added`
  TokenMap added_by_content;
  AddedMatcher raw_matcher, norm_matcher;  // normalized=false / normalized=true tokens
  std::vector<int32_t> template_prefix, template_suffix;
  size_t vocab_size = 0;

  // HF AddedVocabulary::find_matches over `s` with one matcher.
  void split_added(std::string_view s, const AddedMatcher& m, bool parse_special, std::vector<Piece>& out) const {
    size_t start_offset = 0, from = 0, b = 0, e = 0, ti = 0;
    while (!m.empty() && m.next(s, from, b, e, ti)) {
      from = e;
      const AddedToken& t = added[ti];
      if (!parse_special && t.special) continue;
      if (t.single_word) {
        bool start_space = true, stop_space = true;
        if (b > 0) {  // the character before must not be a word character
          size_t k = b - 1;
          while (k > 0 && (static_cast<uint8_t>(s[k]) & 0xC0) == 0x80) --k;
          size_t kk = k;
          start_space = !is_word_char(next_cp(s, kk));
        }
        if (e < s.size()) {
          size_t kk = e;
          stop_space = !is_word_char(next_cp(s, kk));
        }
        if (!start_space || !stop_space) continue;
      }
      if (t.lstrip) {  // swallow whitespace before the token
        size_t nb = b;
        while (nb > start_offset) {
          size_t k = nb - 1;
          while (k > 0 && (static_cast<uint8_t>(s[k]) & 0xC0) == 0x80) --k;
          size_t kk = k;
          if (!is_whitespace(next_cp(s, kk))) break;
          nb = k;
        }
        b = std::max(nb, start_offset);
      }
      if (t.rstrip) {  // and after it
        size_t ne = e;
        while (ne < s.size()) {
          size_t kk = ne;
          if (!is_whitespace(next_cp(s, kk))) break;
          ne = kk;
        }
        e = ne;
        from = e;
      }
      b = std::max(b, start_offset);
      if (start_offset < b) out.push_back({start_offset, b, -1});
      out.push_back({b, e, t.id});
      start_offset = e;
    }
    if (start_offset < s.size() || out.empty()) out.push_back({start_offset, s.size(), -1});
  }

  void encode_text(std::string_view seg, bool at_start, std::vector<int32_t>& ids) const {
    pre_tokenizer.for_each_word(seg, at_start, [&](std::string_view w) { model.encode_word(w, ids); });
  }

  void encode(std::string_view text, bool parse_special, std::vector<int32_t>& ids) const {
    std::string cleaned;
    if (!is_valid_utf8(text)) {
      cleaned = utf8_lossy(text);
      text = cleaned;
    }
    std::vector<Piece> pieces, sub;
    split_added(text, raw_matcher, parse_special, pieces);
    for (const Piece& p : pieces) {
      if (p.id >= 0) {
        ids.push_back(p.id);
        continue;
      }
      if (p.e == p.b) continue;
      const std::string norm = normalizer.apply(std::string(text.substr(p.b, p.e - p.b)));
      if (norm_matcher.empty()) {
        encode_text(norm, p.b == 0, ids);
        continue;
      }
      sub.clear();
      split_added(norm, norm_matcher, parse_special, sub);
      for (const Piece& q : sub) {
        if (q.id >= 0) ids.push_back(q.id);
        else if (q.e > q.b) encode_text(std::string_view(norm).substr(q.b, q.e - q.b), p.b == 0 && q.b == 0, ids);
      }
    }
  }

  const std::string* token_of(int32_t id) const {
    auto it = added_by_id.find(id);
    if (it != added_by_id.end()) return &added[it->second].content;
    return model.id_to_token(id);
  }

  std::string decode(std::span<const int32_t> ids, bool skip_special, bool exact) const {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
      auto it = added_by_id.find(id);
      if (it != added_by_id.end()) {
        if (!(skip_special && added[it->second].special)) tokens.push_back(added[it->second].content);
        continue;
      }
      if (const std::string* t = model.id_to_token(id)) tokens.push_back(*t);
    }
    if (!has_decoder) {  // HF joins the tokens with spaces when there is no decoder
      std::string out;
      for (size_t k = 0; k < tokens.size(); ++k) out += (k ? " " : "") + tokens[k];
      return out;
    }
    return decoder.decode(std::move(tokens), exact);
  }

  void parse_added(const json& list) {
    if (list.is_null()) return;
    if (!list.is_array()) throw Error("tokenizer.json: added_tokens must be an array");
    for (size_t k = 0; k < list.size(); ++k) {
      const json& a = list[k];
      const std::string path = fmt::format("added_tokens[{}]", k);
      if (!a.is_object() || !a.contains("id") || !a.at("id").is_number_integer())
        throw Error("tokenizer.json: {}.id is missing or not an integer", path);
      if (!a.contains("content") || !a.at("content").is_string())
        throw Error("tokenizer.json: {}.content is missing or not a string", path);
      if (a.at("id").get<int64_t>() < 0 || a.at("id").get<int64_t>() > INT32_MAX)
        throw Error("tokenizer.json: {}.id = {} is not a token id (0 to 2147483647)", path, a.at("id").dump());
      AddedToken t;
      t.id = a.at("id").get<int32_t>();
      t.content = a.at("content").get<std::string>();
      auto flag = [&](const char* key, bool dflt) {
        return a.contains(key) && a.at(key).is_boolean() ? a.at(key).get<bool>() : dflt;
      };
      t.special = flag("special", false);
      t.lstrip = flag("lstrip", false);
      t.rstrip = flag("rstrip", false);
      t.single_word = flag("single_word", false);
      t.normalized = flag("normalized", !t.special);
      // HF ignores the id written in the file: a token whose content is in the model vocab
      // takes that id, any other the next id after the model vocab and the added tokens
      // (AddedVocabulary::add_tokens). For well-formed files the two agree.
      if (added_by_content.count(t.content)) continue;
      if (auto mid = model.token_to_id(t.content)) {
        t.id = *mid;
      } else {
        const auto vs = static_cast<int32_t>(model.size());
        int32_t max_added = -1;
        for (const auto& a2 : added) max_added = std::max(max_added, a2.id);
        t.id = max_added < 0 ? vs : (max_added >= vs ? max_added + 1 : vs);
      }
      added_by_id[t.id] = added.size();
      added_by_content[t.content] = t.id;
      added.push_back(std::move(t));
    }
  }

  void build_matchers() {
    for (size_t k = 0; k < added.size(); ++k) {
      if (added[k].normalized) norm_matcher.add(normalizer.apply(added[k].content), k);
      else raw_matcher.add(added[k].content, k);
    }
    int64_t max_id = static_cast<int64_t>(model.size()) - 1;
    for (const auto& t : added) max_id = std::max<int64_t>(max_id, t.id);
    vocab_size = static_cast<size_t>(max_id + 1);
  }

  void parse_post_processor(const json& j, const std::string& path) {
    if (j.is_null()) return;
    const std::string type = j.is_object() && j.contains("type") && j.at("type").is_string() ? j.at("type").get<std::string>() : "";
    if (type == "ByteLevel") return;  // only trims offsets; ids unchanged
    if (type == "Sequence") {
      const json& list = j.contains("processors") ? j.at("processors") : json();
      if (!list.is_array()) throw Error("tokenizer.json: {}.processors must be an array", path);
      for (size_t k = 0; k < list.size(); ++k) parse_post_processor(list[k], fmt::format("{}.processors[{}]", path, k));
      return;
    }
    if (type == "TemplateProcessing") {
      if (!j.contains("single") || !j.at("single").is_array())
        throw Error("tokenizer.json: {}.single is missing", path);
      const json& specials = j.contains("special_tokens") ? j.at("special_tokens") : json::object();
      bool seen_a = false;
      for (const json& item : j.at("single")) {
        if (item.contains("Sequence")) {
          seen_a = true;
        } else if (item.contains("SpecialToken")) {
          const std::string name = item.at("SpecialToken").value("id", "");
          if (!specials.contains(name) || !specials.at(name).contains("ids"))
            throw Error("tokenizer.json: {}.special_tokens has no entry \"{}\"", path, name);
          for (const json& id : specials.at(name).at("ids")) {
            if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
              throw Error("tokenizer.json: {}.special_tokens[\"{}\"].ids holds {}, not a token id", path, name, id.dump());
            (seen_a ? template_suffix : template_prefix).push_back(id.get<int32_t>());
          }
        }
      }
      return;
    }
    throw Error("tokenizer.json: {}.type: unsupported post-processor \"{}\" (supported: TemplateProcessing, "
                "ByteLevel, Sequence)", path, type);
  }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::load(const fs::path& dir_or_file) {
  fs::path file = dir_or_file;
  if (fs::is_directory(dir_or_file)) {
    file = dir_or_file / "tokenizer.json";
    if (!fs::exists(file)) {
      const fs::path vocab = dir_or_file / "vocab.json", merges = dir_or_file / "merges.txt";
      if (!fs::exists(vocab) || !fs::exists(merges))
        throw Error("{}: no tokenizer.json and no vocab.json + merges.txt; this is not a Hugging Face model "
                    "folder with its tokenizer files (copy them from the model's repository)", dir_or_file.string());
      auto impl = std::make_unique<Impl>();
      impl->model = Bpe::from_files(read_file(vocab), read_file(merges), vocab.string(), merges.string());
      impl->normalizer = Normalizer::nfc();
      impl->pre_tokenizer = PreTokenizer::qwen2();
      impl->decoder = Decoder::byte_level();
      impl->has_decoder = true;
      impl->build_matchers();
      return Tokenizer(std::move(impl));
    }
  }
  const std::string text = read_file(file);
  const json j = parse_json(text, file.string());
  try {
    if (!j.is_object()) throw Error("tokenizer.json: the top level must be an object");
    if (!j.contains("model") || j.at("model").is_null())
      throw Error("tokenizer.json: model is missing; expected {{\"type\": \"BPE\", \"vocab\": ..., \"merges\": ...}}");
    auto impl = std::make_unique<Impl>();
    auto get = [&](const char* key) { return j.contains(key) ? j.at(key) : json(); };
    impl->normalizer = Normalizer::parse(get("normalizer"), "normalizer");
    impl->pre_tokenizer = PreTokenizer::parse(get("pre_tokenizer"), "pre_tokenizer");
    impl->model = Bpe::from_json(j.at("model"), impl->pre_tokenizer.byte_level());
    impl->has_decoder = !get("decoder").is_null();
    impl->decoder = Decoder::parse(get("decoder"), "decoder");
    impl->parse_post_processor(get("post_processor"), "post_processor");
    impl->parse_added(get("added_tokens"));
    impl->build_matchers();
    return Tokenizer(std::move(impl));
  } catch (const Error& e) {
    throw Error("{} (in {})", e.what(), file.string());
  } catch (const json::exception& e) {
    throw Error("{}: unexpected JSON structure: {}", file.string(), json_error_text(e));
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> ids;
  impl_->encode(text, parse_special, ids);
  return ids;
}

std::vector<std::vector<int32_t>> Tokenizer::encode_batch(std::span<const std::string> texts, bool parse_special,
                                                          int threads) const {
  std::vector<std::vector<int32_t>> out(texts.size());
  size_t n = threads > 0 ? static_cast<size_t>(threads) : std::max(1u, std::thread::hardware_concurrency());
  n = std::min(n, std::max<size_t>(1, texts.size()));
  auto work = [&](size_t t) {
    for (size_t i = t; i < texts.size(); i += n) impl_->encode(texts[i], parse_special, out[i]);
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < n; ++t) pool.emplace_back(work, t);
  std::exception_ptr err;
  try {
    work(0);
  } catch (...) {
    err = std::current_exception();
  }
  for (auto& th : pool) th.join();
  if (err) std::rethrow_exception(err);
  return out;
}

std::vector<int32_t> Tokenizer::post_process(std::vector<int32_t> ids) const {
  ids.insert(ids.begin(), impl_->template_prefix.begin(), impl_->template_prefix.end());
  ids.insert(ids.end(), impl_->template_suffix.begin(), impl_->template_suffix.end());
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  return impl_->decode(ids, skip_special, true);
}
std::string Tokenizer::decode_bytes(std::span<const int32_t> ids, bool skip_special) const {
  return impl_->decode(ids, skip_special, false);
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  auto it = impl_->added_by_content.find(token);
  if (it != impl_->added_by_content.end()) return it->second;
  return impl_->model.token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  const std::string* t = impl_->token_of(id);
  return t ? *t : std::string();
}

size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }
const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl_->added; }
bool Tokenizer::is_special(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

// ---------------------------------------------------------------- streaming

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tok_(&tokenizer), skip_special_(skip_special) {}

std::string StreamDecoder::push(int32_t id) {
  window_.push_back(id);
  const std::string raw = tok_->decode_bytes(window_, skip_special_);
  const size_t cut = raw.size() - incomplete_tail(raw);
  std::string out;
  if (cut > emitted_) {
    out = utf8_lossy(std::string_view(raw).substr(emitted_, cut - emitted_));
    emitted_ = cut;
  }
  if (cut == raw.size() && window_.size() > 1) {
    // Everything is out: keep only the last id, as context for the decoders that treat the
    // first token differently (Strip, Metaspace), so each push costs O(1).
    window_.erase(window_.begin(), window_.end() - 1);
    emitted_ = tok_->decode_bytes(window_, skip_special_).size();
  }
  return out;
}

std::string StreamDecoder::flush() {
  const std::string raw = tok_->decode_bytes(window_, skip_special_);
  std::string out = raw.size() > emitted_ ? utf8_lossy(std::string_view(raw).substr(emitted_)) : std::string();
  window_.clear();
  emitted_ = 0;
  return out;
}

}  // namespace lorafit
