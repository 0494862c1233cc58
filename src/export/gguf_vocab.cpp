#include "formats/json_util.h"
#include "export/gguf_vocab.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <utility>

#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/sha256.h"

namespace lorafit {

namespace {

#include "export/gguf_pre_table.inc"

using json = nlohmann::json;

// gguf.TokenType
enum TokenType : int32_t { NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6 };

json load_json(const fs::path& p) {
  return parse_json(read_file(p), p.string());  // depth-limited, lorafit's own messages
}

// A special-token entry of tokenizer_config.json: a string or an AddedToken object.
std::optional<std::string> token_text(const json& tc, const std::string& key) {
  const auto it = tc.find(key);
  if (it == tc.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  return std::nullopt;
}

// TextModel.does_token_look_special
bool looks_special(const std::string& t) {
  auto wraps = [&](std::string_view a, std::string_view b) {
    return t.size() >= a.size() + b.size() && t.compare(0, a.size(), a) == 0 &&
           t.compare(t.size() - b.size(), b.size(), b) == 0;
  };
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || wraps("<|", "|>") ||
         wraps("<\xef\xbd\x9c", "\xef\xbd\x9c>") || wraps("<unused", ">");
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
  return s;
}

// gguf-py SpecialVocab: special token ids, add_*_token flags, chat template, normalizer flags.
class SpecialVocab {
 public:
  SpecialVocab(const fs::path& dir, const fs::path& config_json, bool load_merges, std::optional<size_t> n_vocab)
      : n_vocab_(n_vocab), load_merges_(load_merges) {
    load_tokenizer_json(dir);
    load_config_json(config_json);
    if (load_merges_ && merges.empty()) load_merges_txt(dir);
  }

  void add_to(GgufMetadata& kv) const {
    if (!merges.empty()) kv.set_strings("tokenizer.ggml.merges", merges);
    static const std::map<std::string, std::string> id_key = {
        {"bos", "bos_token_id"}, {"eos", "eos_token_id"}, {"unk", "unknown_token_id"}, {"sep", "seperator_token_id"},
        {"pad", "padding_token_id"}, {"mask", "mask_token_id"}, {"eot", "eot_token_id"}, {"eom", "eom_token_id"}};
    for (const auto& [typ, id] : ids)
      if (auto it = id_key.find(typ); it != id_key.end())  // cls has no GGUF key (skipped, as gguf-py)
        kv.set_u32("tokenizer.ggml." + it->second, static_cast<uint32_t>(id));
    for (const auto& [typ, v] : add)
      if (typ == "bos" || typ == "eos" || typ == "sep") kv.set_bool("tokenizer.ggml.add_" + typ + "_token", v);
    if (!chat_template.empty()) kv.set_string("tokenizer.chat_template", chat_template);
    for (const auto& [name, t] : named_templates) kv.set_string("tokenizer.chat_template." + name, t);
    if (!named_templates.empty()) {
      std::vector<std::string> names;
      for (const auto& nt : named_templates) names.push_back(nt.first);
      kv.set_strings("tokenizer.chat_templates", names);
    }
    if (lowercase) kv.set_bool("tokenizer.ggml.normalizer.lowercase", *lowercase);
    if (strip_accents) kv.set_bool("tokenizer.ggml.normalizer.strip_accents", *strip_accents);
  }

  std::optional<int64_t> id(const std::string& typ) const {
    for (const auto& [t, v] : ids)
      if (t == typ) return v;
    return std::nullopt;
  }

  std::vector<std::string> merges;
  std::vector<std::pair<std::string, int64_t>> ids;  // in the order they were found
  std::vector<std::pair<std::string, bool>> add;
  std::string chat_template;
  std::vector<std::pair<std::string, std::string>> named_templates;
  std::optional<bool> lowercase, strip_accents;

 private:
  void set_special(const std::string& typ, const json& tid) {
    if (!tid.is_number_integer()) return;
    const int64_t v = tid.get<int64_t>();
    if (v < 0) throw Error("invalid value for special token type {}: {}", typ, v);
    if (n_vocab_ && static_cast<size_t>(v) >= *n_vocab_) return;  // out of range: skipped
    if (id(typ)) return;
    ids.emplace_back(typ, v);
  }
  bool has_add(const std::string& typ) const {
    return std::any_of(add.begin(), add.end(), [&](const auto& a) { return a.first == typ; });
  }
  void set_add(const std::string& typ, bool v, bool overwrite) {
    for (auto& a : add)
      if (a.first == typ) {
        if (overwrite) a.second = v;
        return;
      }
    add.emplace_back(typ, v);
  }

  void parse_normalizer(const json& n) {
    const std::string t = n.value("type", "");
    if (t == "Lowercase") lowercase = true;
    else if (t == "StripAccents") strip_accents = true;
    else if (t == "BertNormalizer") {
      if (n.contains("lowercase") && n["lowercase"].is_boolean()) lowercase = n["lowercase"].get<bool>();
      if (n.contains("strip_accents") && n["strip_accents"].is_boolean()) strip_accents = n["strip_accents"].get<bool>();
    } else if (t == "Sequence" && n.contains("normalizers")) {
      for (const json& m : n["normalizers"]) parse_normalizer(m);
    }
  }

  void read_merges(const json& m, const fs::path& file) {
    if (!m.is_array() || m.empty()) return;
    if (m[0].is_string()) {
      for (const json& s : m) merges.push_back(s.get<std::string>());
    } else if (m[0].is_array() && m[0].size() == 2 && m[0][0].is_string()) {
      // transformers ≥ 4.45 pairs; a space inside a part is stored as U+0120 ('Ġ').
      for (const json& pr : m)
        merges.push_back(replace_all(pr[0].get<std::string>(), " ", "\xc4\xa0") + " " +
                         replace_all(pr[1].get<std::string>(), " ", "\xc4\xa0"));
    } else {
      throw Error("{}: unknown tokenizer merges format", file.string());
    }
  }

  void template_processing(const json& proc, json& tc, bool have_tc, std::optional<std::string>& bos,
                           std::optional<std::string>& cls, std::optional<std::string>& eos,
                           std::optional<std::string>& sep) {
    const json single = proc.value("single", json::array());
    json pair = proc.value("pair", json::array());
    auto special_id = [](const json& e) -> std::optional<std::string> {
      if (e.is_object() && e.contains("SpecialToken") && e["SpecialToken"].contains("id") &&
          e["SpecialToken"]["id"].is_string() && !e["SpecialToken"]["id"].get<std::string>().empty())
        return e["SpecialToken"]["id"].get<std::string>();
      return std::nullopt;
    };
    std::optional<std::string> first, last;
    if (single.size() > 1) {
      if ((first = special_id(single.front()))) {
        if (!have_tc) bos = first;
        else if (first != bos && first != cls) {
          if (!bos) tc["bos_token"] = *(bos = first);
          if (!cls) tc["cls_token"] = *(cls = first);
        }
        set_add("bos", first == bos || first == cls, true);
      }
      if ((last = special_id(single.back()))) {
        if (!have_tc) eos = last;
        else if (last != eos) {
          if (std::find(types_.begin(), types_.end(), "eot") == types_.end()) {
            types_.push_back("eot");
            if (eos) tc["eot_token"] = *eos;
          } else if (std::find(types_.begin(), types_.end(), "eom") == types_.end()) {
            types_.push_back("eom");
            if (eos) tc["eom_token"] = *eos;
          }
          tc["eos_token"] = *(eos = last);
        }
        set_add("eos", last == eos, true);
      }
    }
    if (!pair.empty()) {
      const size_t start = first && special_id(pair.front()) == first ? 1 : 0;
      const bool stop = last && special_id(pair.back()) == last;
      json mid = json::array();
      for (size_t k = start; k + (stop ? 1 : 0) < pair.size(); ++k) mid.push_back(pair[k]);
      if (!mid.empty()) {
        auto seq_id = [](const json& e) -> std::string {
          return e.is_object() && e.contains("Sequence") ? e["Sequence"].value("id", "") : "";
        };
        if (seq_id(mid.front()) == "A" && seq_id(mid.back()) == "B" && mid.size() > 2) {
          bool add_sep = false;
          const json inner(mid.begin() + 1, mid.end() - 1);
          if (auto e = special_id(inner[0]); e && (e == sep || e == eos) && !last) add_sep = true;
          if (inner.size() == 2)
            if (auto e = special_id(inner[1]); e && (e == sep || e == eos)) add_sep = true;
          set_add("sep", add_sep, true);
          if (add_sep && !sep && have_tc && eos) tc["sep_token"] = *eos;
        }
      }
    }
  }

  void load_tokenizer_json(const fs::path& dir) {
    json tok, tc;
    const bool have_tok = fs::exists(dir / "tokenizer.json");
    const bool have_tc = fs::exists(dir / "tokenizer_config.json");
    json added = json::array();
    if (have_tok) {
      tok = load_json(dir / "tokenizer.json");
      if (load_merges_ && tok.contains("model") && tok["model"].contains("merges"))
        read_merges(tok["model"]["merges"], dir / "tokenizer.json");
      if (tok.contains("normalizer") && tok["normalizer"].is_object()) parse_normalizer(tok["normalizer"]);
      if (tok.contains("added_tokens") && tok["added_tokens"].is_array()) added = tok["added_tokens"];
    }
    if (have_tc) tc = load_json(dir / "tokenizer_config.json");
    if (have_tok) {
      std::optional<std::string> bos = token_text(tc, "bos_token"), cls = token_text(tc, "cls_token"),
                                 eos = token_text(tc, "eos_token"), sep = token_text(tc, "sep_token");
      if (!bos && cls && have_tc) tc["bos_token"] = *(bos = cls);
      if (!eos && sep && have_tc) tc["eos_token"] = *(eos = sep);
      if (tok.contains("post_processor") && tok["post_processor"].is_object()) {
        const json& pp = tok["post_processor"];
        const json procs = pp.contains("processors") ? pp["processors"] : json::array({pp});
        for (const json& proc : procs) {
          const std::string type = proc.value("type", "");
          if (type == "ByteLevel") {
            set_add("bos", false, false);
            set_add("eos", false, false);
          } else if (type == "RobertaProcessing") {
            set_add("bos", true, true);
            set_add("eos", true, true);
            set_add("sep", true, true);
          } else if (type == "TemplateProcessing") {
            template_processing(proc, tc, have_tc, bos, cls, eos, sep);
          }
        }
      }
    }
    if (!have_tc) return;
    std::string alt;
    bool have_alt = false;
    if (fs::exists(dir / "chat_template.jinja")) {
      alt = read_file(dir / "chat_template.jinja");
      have_alt = true;
    } else if (fs::exists(dir / "chat_template.json")) {
      const json ct = load_json(dir / "chat_template.json");
      if (ct.contains("chat_template") && ct["chat_template"].is_string()) {
        alt = ct["chat_template"].get<std::string>();
        have_alt = true;
      }
    }
    if (tc.contains("chat_template")) {
      const json& t = tc["chat_template"];
      if (t.is_string()) chat_template = t.get<std::string>();
      else if (t.is_array())
        for (const json& c : t) {
          std::string name = c.value("name", "");
          for (char& ch : name)
            if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
          if (name.empty() || !c.contains("template") || !c["template"].is_string()) continue;
          if (name == "default") chat_template = c["template"].get<std::string>();
          else named_templates.emplace_back(name, c["template"].get<std::string>());
        }
    } else if (have_alt) {
      chat_template = alt;
    }
    for (const std::string& typ : types_) {
      const auto a = tc.find("add_" + typ + "_token");
      if (a != tc.end() && a->is_boolean() && !has_add(typ)) set_add(typ, a->get<bool>(), false);
      const std::optional<std::string> content = token_text(tc, typ + "_token");
      if (!content) continue;
      for (const json& t : added)
        if (t.value("content", "") == *content) {
          set_special(typ, t.value("id", json()));
          break;
        }
    }
  }

  void load_config_json(const fs::path& config_json) {
    if (!fs::exists(config_json)) return;
    const json c = load_json(config_json);
    for (const std::string& typ : types_) {
      json v = c.value(typ + "_token_id", json());
      if (v.is_null() && c.contains("text_config")) v = c["text_config"].value(typ + "_token_id", json());
      set_special(typ, v);
    }
  }

  void load_merges_txt(const fs::path& dir) {
    const fs::path f = dir / "merges.txt";
    if (!fs::exists(f)) return;
    const std::string text = read_file(f);
    size_t pos = 0;
    bool first = true;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) nl = text.size();
      std::string line = text.substr(pos, nl - pos);
      pos = nl + 1;
      const auto b = line.find_first_not_of(" \t\r"), e = line.find_last_not_of(" \t\r");
      line = b == std::string::npos ? "" : line.substr(b, e - b + 1);
      if (first && line.rfind("#", 0) == 0) {
        first = false;
        continue;
      }
      first = false;
      if (line.empty()) continue;
      const auto sp = line.find_first_of(" \t");
      if (sp == std::string::npos) continue;
      const auto b2 = line.find_first_not_of(" \t", sp);
      if (line.find_first_of(" \t", b2) != std::string::npos) continue;  // malformed: ignored
      merges.push_back(line.substr(0, sp) + " " + line.substr(b2));
    }
  }

  std::optional<size_t> n_vocab_;
  bool load_merges_;
  std::vector<std::string> types_ = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
};

// convert_hf_to_gguf's get_vocab_base_pre: sha256 of str(tokenizer.encode(chktxt)).
std::string pre_tokenizer_name(const fs::path& dir) {
  const Tokenizer tok = Tokenizer::load(dir);
  const std::vector<int32_t> ids = tok.post_process(tok.encode(kPreTokenizerCheckText));
  std::string s = "[";
  for (size_t k = 0; k < ids.size(); ++k) s += (k ? ", " : "") + std::to_string(ids[k]);
  s += "]";
  const std::string h = sha256_hex(s);
  for (const auto& [hash, name] : kPreTokenizerHashes)
    if (hash == h) return std::string(name);
  throw Error("{}: its BPE pre-tokenizer is not one llama.cpp knows (check hash {}); llama.cpp's convert_hf_to_gguf.py "
              "refuses it too (\"BPE pre-tokenizer was not recognized\")",
              (dir / "tokenizer.json").string(), h);
}

// HF's tokenizer.get_vocab(): model vocab plus added tokens.
std::map<int64_t, std::string> full_vocab(const json& tok, size_t* base_size) {
  std::map<int64_t, std::string> by_id;
  const json& v = tok["model"]["vocab"];
  if (!v.is_object()) throw Error("tokenizer.json: model.vocab is not an object");
  for (auto it = v.begin(); it != v.end(); ++it) by_id[it.value().get<int64_t>()] = it.key();
  *base_size = v.size();
  if (tok.contains("added_tokens"))
    for (const json& t : tok["added_tokens"]) by_id[t["id"].get<int64_t>()] = t["content"].get<std::string>();
  return by_id;
}

std::map<int64_t, json> added_by_id(const json& tok) {
  std::map<int64_t, json> m;
  if (tok.contains("added_tokens"))
    for (const json& t : tok["added_tokens"]) m[t["id"].get<int64_t>()] = t;
  return m;
}

// _set_vocab_gpt2 → get_vocab_base
void gpt2_tokens(GgufMetadata& kv, const json& tok, const json& config, const std::string& pre, const fs::path& file) {
  size_t base = 0;
  const auto vocab = full_vocab(tok, &base);
  const auto added = added_by_id(tok);
  const int64_t max_id = vocab.empty() ? -1 : vocab.rbegin()->first;
  const int64_t n = config.contains("vocab_size") ? config["vocab_size"].get<int64_t>() : static_cast<int64_t>(vocab.size());
  if (max_id >= n)
    throw Error("{}: token id {} is not below config.json's vocab_size {}", file.string(), max_id, n);
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  tokens.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    auto it = vocab.find(i);
    if (it == vocab.end()) {
      tokens.push_back("[PAD" + std::to_string(i) + "]");
      types.push_back(UNUSED);
      continue;
    }
    std::string t = it->second;
    if (auto a = added.find(i); a != added.end()) {
      if (a->second.value("special", false) || looks_special(t)) types.push_back(CONTROL);
      else {
        t = replace_all(t, "\xe2\x96\x81", " ");  // pre-normalized user-defined spaces
        types.push_back(USER_DEFINED);
      }
    } else {
      types.push_back(NORMAL);
    }
    tokens.push_back(std::move(t));
  }
  kv.set_string("tokenizer.ggml.model", "gpt2");
  kv.set_string("tokenizer.ggml.pre", pre);
  kv.set_strings("tokenizer.ggml.tokens", tokens);
  kv.set_i32s("tokenizer.ggml.token_type", types);
}

// The special ids transformers' all_special_ids gives: bos/eos/unk/sep/pad/cls/mask and
// additional_special_tokens of tokenizer_config.json, resolved through the vocab.
std::vector<int64_t> all_special_ids(const json& tc, const std::map<std::string, int64_t>& ids) {
  std::vector<int64_t> out;
  auto add = [&](const std::optional<std::string>& t) {
    if (!t) return;
    if (auto it = ids.find(*t); it != ids.end()) out.push_back(it->second);
  };
  for (const char* k : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"})
    add(token_text(tc, k));
  if (tc.contains("additional_special_tokens") && tc["additional_special_tokens"].is_array())
    for (const json& t : tc["additional_special_tokens"])
      add(t.is_string() ? std::optional<std::string>(t.get<std::string>())
                        : (t.is_object() ? std::optional<std::string>(t.value("content", "")) : std::nullopt));
  return out;
}

// _set_vocab_llama_hf → gguf-py LlamaHfVocab; returns the number of tokens.
size_t llama_hf_tokens(GgufMetadata& kv, const json& tok, const json& tc) {
  size_t base = 0;
  const auto vocab = full_vocab(tok, &base);
  std::map<std::string, int64_t> ids;
  for (const auto& [id, t] : vocab) ids[t] = id;
  const std::vector<int64_t> special = all_special_ids(tc, ids);
  auto is_special = [&](int64_t id) { return std::find(special.begin(), special.end(), id) != special.end(); };
  static const std::regex byte_token("<0x[0-9A-Fa-f]{2}>");
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (int64_t i = 0; i < static_cast<int64_t>(base); ++i) {
    auto it = vocab.find(i);
    if (it == vocab.end()) throw Error("tokenizer.json: no token with id {} (ids must be contiguous)", i);
    tokens.push_back(it->second);
    scores.push_back(-1000.f);
    types.push_back(std::regex_match(it->second, byte_token) ? BYTE : (is_special(i) ? CONTROL : NORMAL));
  }
  for (auto it = vocab.lower_bound(static_cast<int64_t>(base)); it != vocab.end(); ++it) {  // added, by id
    tokens.push_back(it->second);
    scores.push_back(-1000.f);
    types.push_back(is_special(it->first) ? CONTROL : USER_DEFINED);
  }
  kv.set_string("tokenizer.ggml.model", "llama");
  kv.set_string("tokenizer.ggml.pre", "default");
  kv.set_strings("tokenizer.ggml.tokens", tokens);
  kv.set_f32s("tokenizer.ggml.scores", scores);
  kv.set_i32s("tokenizer.ggml.token_type", types);
  return tokens.size();
}

// LlamaHfVocab's own test: BPE with byte fallback and a Sequence decoder, and not Llama 3.
bool is_llama_hf(const json& tok) {
  const json& m = tok["model"];
  const bool llama3 = m.value("type", "") == "BPE" && m.value("ignore_merges", false) && !m.value("byte_fallback", true);
  if (llama3) return false;
  return m.value("type", "") == "BPE" && m.value("byte_fallback", false) && tok.contains("decoder") &&
         tok["decoder"].is_object() && tok["decoder"].value("type", "") == "Sequence";
}

}  // namespace

GgufVocabInfo add_gguf_vocab(GgufMetadata& kv, const fs::path& dir, const fs::path& config_json, bool llama_family) {
  if (fs::exists(dir / "tokenizer.model"))
    throw Error("{}: a SentencePiece tokenizer.model; llama.cpp's converter reads it with the sentencepiece library, "
                "which lorafit export does not implement (the tokenizer.json-only path is supported: move "
                "tokenizer.model out of the folder to export from tokenizer.json as llama.cpp then would)",
                (dir / "tokenizer.model").string());
  const fs::path tok_file = dir / "tokenizer.json";
  if (!fs::exists(tok_file))
    throw Error("{}: no tokenizer.json; GGUF export needs the Hugging Face tokenizer.json", dir.string());
  const json tok = load_json(tok_file);
  if (!tok.contains("model") || !tok["model"].is_object() || !tok["model"].contains("vocab"))
    throw Error("{}: no model.vocab", tok_file.string());
  const json tc = fs::exists(dir / "tokenizer_config.json") ? load_json(dir / "tokenizer_config.json") : json::object();
  const json config = load_json(config_json);

  GgufVocabInfo info;
  std::optional<size_t> n_vocab;
  if (llama_family) {
    if (tc.contains("add_prefix_space") && tc["add_prefix_space"].is_boolean())
      kv.set_bool("tokenizer.ggml.add_space_prefix", tc["add_prefix_space"].get<bool>());
  }
  if (llama_family && is_llama_hf(tok)) {
    info.kind = VocabKind::LlamaHf;
    info.pre = "default";
    n_vocab = llama_hf_tokens(kv, tok, tc);
  } else {
    info.kind = VocabKind::Gpt2;
    info.pre = pre_tokenizer_name(dir);
    gpt2_tokens(kv, tok, config, info.pre, tok_file);
  }
  const SpecialVocab sv(dir, config_json, info.kind == VocabKind::Gpt2, n_vocab);
  sv.add_to(kv);
  if (llama_family && config.value("vocab_size", 0) == 49152) kv.set_bool("tokenizer.ggml.add_bos_token", false);

  size_t base = 0;
  const auto vocab = full_vocab(tok, &base);
  for (const char* typ : {"eos", "eot", "eom"})
    if (auto id = sv.id(typ)) {
      if (std::find(info.stop_ids.begin(), info.stop_ids.end(), *id) != info.stop_ids.end()) continue;
      info.stop_ids.push_back(static_cast<int32_t>(*id));
      auto it = vocab.find(*id);
      info.stop_tokens.push_back(it == vocab.end() ? "" : it->second);
    }
  info.chat_template = sv.chat_template;
  return info;
}

}  // namespace lorafit
