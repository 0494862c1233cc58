// Decoders of tokenizer.json and GPT-2's byte-level table.
#include <optional>

#include "tokenizer/pipeline.h"
#include "tokenizer/pipeline_util.h"

namespace lorafit::tok {

// ---------------------------------------------------------------- decoder

struct Decoder::Step {
  enum Kind { ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip } kind;
  std::string replacement;   // Metaspace
  bool strip_first = true;   // Metaspace: prepend_scheme != never
  Pattern pattern;           // Replace
  std::string content;       // Replace, Strip
  size_t start = 0, stop = 0;  // Strip
};

Decoder::Decoder() = default;
Decoder::~Decoder() = default;
Decoder::Decoder(Decoder&&) noexcept = default;
Decoder& Decoder::operator=(Decoder&&) noexcept = default;

Decoder Decoder::parse(const json& j, const std::string& path) {
  Decoder d;
  if (!j.is_null()) d.add(j, path);
  return d;
}
Decoder Decoder::byte_level() {
  Decoder d;
  d.steps_.push_back(Step{Step::ByteLevel, {}, true, {}, {}});
  return d;
}

void Decoder::add(const json& j, const std::string& path) {
  const std::string type = type_of(j, path);
  Step s{};
  if (type == "Sequence") {
    const json& list = field(j, "decoders", path);
    if (!list.is_array()) throw Error("tokenizer.json: {}.decoders must be an array", path);
    for (size_t k = 0; k < list.size(); ++k) add(list[k], fmt::format("{}.decoders[{}]", path, k));
    return;
  } else if (type == "ByteLevel") {
    s.kind = Step::ByteLevel;
  } else if (type == "Metaspace") {
    s.kind = Step::Metaspace;
    s.replacement = get_or<std::string>(j, "replacement", "\u2581", path);
    single_char(s.replacement, path + ".replacement");
    if (j.contains("prepend_scheme") && j.at("prepend_scheme").is_string())
      s.strip_first = j.at("prepend_scheme").get<std::string>() != "never";
    else
      s.strip_first = get_or(j, "add_prefix_space", true, path);
  } else if (type == "Replace") {
    s.kind = Step::Replace;
    s.pattern = Pattern::parse(field(j, "pattern", path), path + ".pattern");
    s.content = str_field(j, "content", path);
  } else if (type == "ByteFallback") {
    s.kind = Step::ByteFallback;
  } else if (type == "Fuse") {
    s.kind = Step::Fuse;
  } else if (type == "Strip") {
    s.kind = Step::Strip;
    s.content = str_field(j, "content", path);
    single_char(s.content, path + ".content");
    s.start = get_or<size_t>(j, "start", 0, path);
    s.stop = get_or<size_t>(j, "stop", 0, path);
  } else {
    throw Error("tokenizer.json: {}.type: unsupported decoder \"{}\" (supported: ByteLevel, Metaspace, Replace, "
                "ByteFallback, Fuse, Strip, Sequence)", path, type);
  }
  steps_.push_back(std::move(s));
}

namespace {
std::optional<uint8_t> byte_token(std::string_view t) {  // "<0xAB>" -> 0xAB
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(t[3]), lo = hex(t[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<uint8_t>(hi * 16 + lo);
}
}  // namespace

std::string Decoder::decode(std::vector<std::string> tokens, bool exact) const {
  std::vector<std::string> next;
  for (const Step& st : steps_) {
    next.clear();
    switch (st.kind) {
      case Step::ByteLevel: {  // all tokens -> one string of their bytes
        std::string bytes, tmp;
        for (const auto& t : tokens) {
          tmp.clear();
          if (unmap_byte_level(t, tmp)) bytes += tmp;
          else bytes += t;  // a character outside the table: HF keeps the token's own bytes
        }
        next.push_back(exact ? utf8_lossy(bytes) : std::move(bytes));
        break;
      }
      case Step::Metaspace:
        for (size_t k = 0; k < tokens.size(); ++k) {
          std::string out;
          const std::string& t = tokens[k];
          for (size_t pos = 0; pos < t.size();) {
            if (t.compare(pos, st.replacement.size(), st.replacement) == 0) {
              if (!(k == 0 && st.strip_first)) out.push_back(' ');
              pos += st.replacement.size();
            } else {
              out.push_back(t[pos++]);
            }
          }
          next.push_back(std::move(out));
        }
        break;
      case Step::Replace:
        for (const auto& t : tokens) next.push_back(replace_all(t, st.pattern, st.content));
        break;
      case Step::ByteFallback: {
        // Runs of <0x..> tokens become their bytes: as one string when valid UTF-8, else
        // one U+FFFD per byte (HF). Raw mode keeps the bytes for the streaming decoder.
        std::string group;
        size_t group_tokens = 0;
        auto flush = [&] {
          if (group_tokens == 0) return;
          if (!exact || is_valid_utf8(group)) {
            next.push_back(group);
          } else {
            for (size_t q = 0; q < group_tokens; ++q) next.emplace_back(kReplacementUtf8);
          }
          group.clear();
          group_tokens = 0;
        };
        for (auto& t : tokens) {
          if (auto b = byte_token(t)) {
            group.push_back(static_cast<char>(*b));
            ++group_tokens;
          } else {
            flush();
            next.push_back(std::move(t));
          }
        }
        flush();
        break;
      }
      case Step::Fuse: {
        std::string all;
        for (const auto& t : tokens) all += t;
        next.push_back(std::move(all));
        break;
      }
      case Step::Strip:
        for (const auto& t : tokens) {
          size_t b = 0, e = t.size();
          for (size_t q = 0; q < st.start && t.compare(b, st.content.size(), st.content) == 0; ++q) b += st.content.size();
          for (size_t q = 0; q < st.stop && e >= b + st.content.size() &&
                             t.compare(e - st.content.size(), st.content.size(), st.content) == 0; ++q)
            e -= st.content.size();
          next.push_back(t.substr(b, e - b));
        }
        break;
    }
    tokens.swap(next);
  }
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

// ---------------------------------------------------------------- byte-level table

namespace {
struct ByteTable {
  std::array<char32_t, 256> to_char{};
  std::array<int16_t, 324> to_byte{};  // every mapped character is below U+0144
  ByteTable() {
    to_byte.fill(-1);
    // GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes
    // to U+0100 + n in byte order.
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_char[b] = keep ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      to_byte[to_char[b]] = static_cast<int16_t>(b);
    }
  }
};
const ByteTable& byte_table() {
  static const ByteTable t;
  return t;
}
}  // namespace

char32_t byte_to_char(uint8_t b) { return byte_table().to_char[b]; }
int char_to_byte(char32_t c) { return c < 324 ? byte_table().to_byte[c] : -1; }

bool unmap_byte_level(std::string_view token, std::string& out) {
  if (!is_valid_utf8(token)) return false;
  for (size_t i = 0; i < token.size();) {
    const int b = char_to_byte(next_cp(token, i));
    if (b < 0) return false;
    out.push_back(static_cast<char>(b));
  }
  return true;
}

}  // namespace lorafit::tok
