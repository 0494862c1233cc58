#include "tokenizer/pipeline.h"

#include "tokenizer/pipeline_util.h"

#include <nlohmann/json.hpp>

#include <array>
#include <optional>

#include "util/error.h"

namespace lorafit::tok {

using json = nlohmann::json;

namespace {

// HF SplitDelimiterBehavior applied to matches -> the pieces to keep, as spans.
void apply_behavior(std::string_view text, const std::vector<Span>& matches, SplitBehavior how, bool invert,
                    std::vector<Span>& pieces) {
  // All of the text as (span, is_match), as HF's Pattern::find_matches gives it.
  std::vector<std::pair<Span, bool>> parts;
  size_t prev = 0;
  for (auto m : matches) {
    if (m.first > prev) parts.push_back({{prev, m.first}, invert});
    parts.push_back({m, !invert});
    prev = m.second;
  }
  if (prev < text.size() || parts.empty()) parts.push_back({{prev, text.size()}, invert});
  std::vector<std::pair<Span, bool>> out;
  bool previous_match = false;
  switch (how) {
    case SplitBehavior::Removed:
      for (auto& [s, is_m] : parts)
        if (!is_m) out.push_back({s, false});
      break;
    case SplitBehavior::Isolated:
      out = parts;
      break;
    case SplitBehavior::MergedWithPrevious:
      for (auto& [s, is_m] : parts) {
        if (is_m && !previous_match && !out.empty()) out.back().first.second = s.second;
        else out.push_back({s, is_m});
        previous_match = is_m;
      }
      break;
    case SplitBehavior::MergedWithNext:
      for (size_t k = parts.size(); k-- > 0;) {
        auto [s, is_m] = parts[k];
        if (is_m && !previous_match && !out.empty()) out.back().first.first = s.first;
        else out.push_back({s, is_m});
        previous_match = is_m;
      }
      std::reverse(out.begin(), out.end());
      break;
    case SplitBehavior::Contiguous:
      for (auto& [s, is_m] : parts) {
        if (is_m == previous_match && !out.empty()) out.back().first.second = s.second;
        else out.push_back({s, is_m});
        previous_match = is_m;
      }
      break;
  }
  for (auto& [s, is_m] : out)
    if (s.second > s.first) pieces.push_back(s);  // HF drops empty pieces
}

SplitBehavior parse_behavior(const json& j, const std::string& path) {
  const std::string b = str_field(j, "behavior", path);
  if (b == "Removed") return SplitBehavior::Removed;
  if (b == "Isolated") return SplitBehavior::Isolated;
  if (b == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (b == "Contiguous") return SplitBehavior::Contiguous;
  throw Error("tokenizer.json: {}.behavior: unknown split behavior \"{}\" (expected Removed, Isolated, "
              "MergedWithPrevious, MergedWithNext or Contiguous)", path, b);
}

constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace

// ---------------------------------------------------------------- normalizer

struct Normalizer::Step {
  enum Kind { Norm, Replace, Prepend, Strip } kind;
  NormForm form = NormForm::NFC;
  Pattern pattern;
  std::string content;
  bool left = false, right = false;
};

Normalizer::Normalizer() = default;
Normalizer::~Normalizer() = default;
Normalizer::Normalizer(Normalizer&&) noexcept = default;
Normalizer& Normalizer::operator=(Normalizer&&) noexcept = default;

Normalizer Normalizer::parse(const json& j, const std::string& path) {
  Normalizer n;
  if (!j.is_null()) n.add(j, path);
  return n;
}
Normalizer Normalizer::nfc() {
  Normalizer n;
  n.steps_.push_back(Step{Step::Norm, NormForm::NFC, {}, {}});
  return n;
}

void Normalizer::add(const json& j, const std::string& path) {
  const std::string type = type_of(j, path);
  if (type == "Sequence") {
    const json& list = field(j, "normalizers", path);
    if (!list.is_array()) throw Error("tokenizer.json: {}.normalizers must be an array", path);
    for (size_t k = 0; k < list.size(); ++k) add(list[k], fmt::format("{}.normalizers[{}]", path, k));
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    const NormForm f = type == "NFC" ? NormForm::NFC : type == "NFD" ? NormForm::NFD : type == "NFKC" ? NormForm::NFKC : NormForm::NFKD;
    steps_.push_back(Step{Step::Norm, f, {}, {}});
  } else if (type == "Replace") {
    Step s{Step::Replace, NormForm::NFC, Pattern::parse(field(j, "pattern", path), path + ".pattern"),
           str_field(j, "content", path)};
    steps_.push_back(std::move(s));
  } else if (type == "Prepend") {
    steps_.push_back(Step{Step::Prepend, NormForm::NFC, {}, str_field(j, "prepend", path)});
  } else if (type == "Strip") {
    Step s{Step::Strip, NormForm::NFC, {}, {}};
    s.left = get_or(j, "strip_left", true, path);
    s.right = get_or(j, "strip_right", true, path);
    steps_.push_back(std::move(s));
  } else {
    throw Error("tokenizer.json: {}.type: unsupported normalizer \"{}\" (supported: NFC, NFD, NFKC, NFKD, Replace, "
                "Prepend, Strip, Sequence)", path, type);
  }
}

std::string Normalizer::apply(std::string s) const {
  for (const Step& st : steps_) {
    switch (st.kind) {
      case Step::Norm: s = normalize(s, st.form); break;
      case Step::Replace: s = replace_all(s, st.pattern, st.content); break;
      case Step::Prepend:
        if (!s.empty()) s = st.content + s;
        break;
      case Step::Strip: {  // strips Unicode whitespace (Rust char::is_whitespace)
        size_t b = 0, e = s.size();
        if (st.left) {
          for (size_t i = 0; i < s.size();) {
            if (!is_whitespace(next_cp(s, i))) break;
            b = i;
          }
        }
        if (st.right) {
          e = b;
          for (size_t i = b; i < s.size();)
            if (!is_whitespace(next_cp(s, i))) e = i;
        }
        s = s.substr(b, e - b);
        break;
      }
    }
  }
  return s;
}

// ---------------------------------------------------------------- pre-tokenizer

struct PreTokenizer::Step {
  enum Kind { Split, ByteLevel, Metaspace, Digits } kind;
  Pattern pattern;          // Split
  int fast_digits = 0;      // Split: > 0 when the hand-written splitter handles the regex
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
  bool add_prefix_space = false;  // ByteLevel
  std::unique_ptr<Regex> gpt2;    // ByteLevel use_regex
  std::string replacement;        // Metaspace
  enum Prepend { Always, First, Never } prepend = Always;
  bool split = true;              // Metaspace
  bool individual = false;        // Digits
};

PreTokenizer::PreTokenizer() = default;
PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;

PreTokenizer PreTokenizer::parse(const json& j, const std::string& path) {
  PreTokenizer p;
  if (!j.is_null()) p.add(j, path);
  for (size_t k = 0; k < p.steps_.size(); ++k)
    if (p.steps_[k].kind == Step::ByteLevel && k + 1 != p.steps_.size())
      throw Error("tokenizer.json: {}: a ByteLevel pre-tokenizer followed by other pre-tokenizers is not "
                  "supported (ByteLevel must come last)", path);
  p.byte_level_ = !p.steps_.empty() && p.steps_.back().kind == Step::ByteLevel;
  return p;
}

PreTokenizer PreTokenizer::qwen2() {
  const json j = json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
       "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]})");
  return parse(j, "pre_tokenizer");
}

void PreTokenizer::add(const json& j, const std::string& path) {
  const std::string type = type_of(j, path);
  Step s{};
  if (type == "Sequence") {
    const json& list = field(j, "pretokenizers", path);
    if (!list.is_array()) throw Error("tokenizer.json: {}.pretokenizers must be an array", path);
    for (size_t k = 0; k < list.size(); ++k) add(list[k], fmt::format("{}.pretokenizers[{}]", path, k));
    return;
  } else if (type == "Split") {
    s.kind = Step::Split;
    const json& pj = field(j, "pattern", path);
    if (pj.is_object() && pj.contains("Regex") && pj.at("Regex").is_string() &&
        is_fast_split_pattern(pj.at("Regex").get<std::string>(), s.fast_digits)) {
      s.pattern.regex_src = pj.at("Regex").get<std::string>();  // the hand-written splitter runs it
    } else {
      s.pattern = Pattern::parse(pj, path + ".pattern");
    }
    s.behavior = parse_behavior(j, path);
    s.invert = get_or(j, "invert", false, path);
  } else if (type == "ByteLevel") {
    s.kind = Step::ByteLevel;
    s.add_prefix_space = get_or(j, "add_prefix_space", true, path);
    if (get_or(j, "use_regex", true, path)) s.gpt2 = std::make_unique<Regex>(kGpt2Pattern, path);
  } else if (type == "Metaspace") {
    s.kind = Step::Metaspace;
    s.replacement = get_or<std::string>(j, "replacement", "\u2581", path);
    single_char(s.replacement, path + ".replacement");
    if (j.contains("prepend_scheme") && j.at("prepend_scheme").is_string()) {
      const std::string ps = j.at("prepend_scheme").get<std::string>();
      if (ps == "always") s.prepend = Step::Always;
      else if (ps == "first") s.prepend = Step::First;
      else if (ps == "never") s.prepend = Step::Never;
      else throw Error("tokenizer.json: {}.prepend_scheme: unknown value \"{}\" (expected always, first, never)", path, ps);
    } else {
      s.prepend = get_or(j, "add_prefix_space", true, path) ? Step::Always : Step::Never;
    }
    s.split = get_or(j, "split", true, path);
  } else if (type == "Digits") {
    s.kind = Step::Digits;
    s.individual = get_or(j, "individual_digits", false, path);
  } else {
    throw Error("tokenizer.json: {}.type: unsupported pre-tokenizer \"{}\" (supported: Split, ByteLevel, Metaspace, "
                "Digits, Sequence)", path, type);
  }
  steps_.push_back(std::move(s));
}

void PreTokenizer::for_each_word(std::string_view text, bool at_start,
                                 const std::function<void(std::string_view)>& f) const {
  if (text.empty()) return;
  // Common fast case (Qwen2, Llama 3): a Split with Isolated behaviour, then at most a
  // ByteLevel that is the identity on raw bytes (no prefix space, no regex). Matches and the
  // gaps between them are the words; found a chunk at a time.
  const Step* s0 = steps_.empty() ? nullptr : &steps_[0];
  const bool simple_tail = steps_.size() == 1 || (steps_.size() == 2 && steps_[1].kind == Step::ByteLevel &&
                                                  !steps_[1].add_prefix_space && !steps_[1].gpt2);
  if (s0 && s0->kind == Step::Split && simple_tail && s0->behavior == SplitBehavior::Isolated && !s0->invert &&
      (s0->fast_digits > 0 || s0->pattern.regex)) {
    thread_local std::vector<Span> spans;
    constexpr size_t kChunk = 4096;
    size_t pos = 0, prev = 0;
    while (pos < text.size()) {
      spans.clear();
      pos = s0->fast_digits > 0 ? fast_split(text, pos, s0->fast_digits, spans, kChunk)
                                : s0->pattern.regex->find_some(text, pos, kChunk, spans);
      for (auto [b, e] : spans) {
        if (b > prev) f(text.substr(prev, b - prev));  // the text between matches
        if (e > b) f(text.substr(b, e - b));
        prev = std::max(prev, e);
      }
    }
    if (prev < text.size()) f(text.substr(prev));
    return;
  }
  thread_local std::vector<std::string> words;
  words.clear();
  split(text, at_start, words);
  for (const auto& w : words) f(w);
}

void PreTokenizer::split(std::string_view text, bool at_start, std::vector<std::string>& words) const {
  if (text.empty()) return;
  if (steps_.empty()) {
    words.emplace_back(text);
    return;
  }
  // General case: each step maps the current list of pieces to a new one.
  std::vector<Span> spans, pieces;
  std::vector<std::string> cur{std::string(text)}, next;
  bool first_at_start = at_start;  // does cur[0] begin at offset 0 of the input?
  for (const Step& st : steps_) {
    next.clear();
    bool next_first_at_start = false;
    for (size_t k = 0; k < cur.size(); ++k) {
      std::string& piece = cur[k];
      const bool piece_at_start = k == 0 && first_at_start;
      spans.clear();
      pieces.clear();
      std::string_view view;
      std::string owned;
      switch (st.kind) {
        case Step::Split:
          if (st.fast_digits > 0) fast_split(piece, st.fast_digits, spans);
          else st.pattern.find(piece, spans);
          apply_behavior(piece, spans, st.behavior, st.invert, pieces);
          view = piece;
          break;
        case Step::ByteLevel:
          if (st.add_prefix_space && piece.rfind(' ', 0) != 0) piece = " " + piece;
          if (st.gpt2) {
            st.gpt2->find_all(piece, spans);
            apply_behavior(piece, spans, SplitBehavior::Isolated, false, pieces);
          } else {
            pieces.emplace_back(0, piece.size());
          }
          view = piece;
          break;
        case Step::Metaspace: {
          owned.reserve(piece.size());
          for (char c : piece) {
            if (c == ' ') owned += st.replacement;
            else owned.push_back(c);
          }
          const bool starts = owned.rfind(st.replacement, 0) == 0;
          if (!starts && (st.prepend == Step::Always || (st.prepend == Step::First && piece_at_start)))
            owned = st.replacement + owned;
          if (st.split) {
            for (size_t pos = owned.find(st.replacement); pos != std::string::npos;
                 pos = owned.find(st.replacement, pos + st.replacement.size()))
              spans.emplace_back(pos, pos + st.replacement.size());
            apply_behavior(owned, spans, SplitBehavior::MergedWithNext, false, pieces);
          } else if (!owned.empty()) {
            pieces.emplace_back(0, owned.size());
          }
          view = owned;
          break;
        }
        case Step::Digits: {
          for (size_t i = 0; i < piece.size();) {
            const size_t b = i;
            if (is_numeric(next_cp(piece, i))) spans.emplace_back(b, i);
          }
          apply_behavior(piece, spans, st.individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous, false, pieces);
          view = piece;
          break;
        }
      }
      for (size_t q = 0; q < pieces.size(); ++q) {
        if (next.empty()) next_first_at_start = piece_at_start && pieces[q].first == 0;
        next.emplace_back(view.substr(pieces[q].first, pieces[q].second - pieces[q].first));
      }
    }
    cur.swap(next);
    first_at_start = next_first_at_start;
  }
  for (auto& w : cur) words.push_back(std::move(w));
}

}  // namespace lorafit::tok
