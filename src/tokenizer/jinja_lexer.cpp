// GCC 12 at -O3 reports a false -Wrestrict inside std::string for "literal" + string
// (GCC bug 105329); the code is fine, so the warning is off for this file.
#pragma GCC diagnostic ignored "-Wrestrict"

#include "tokenizer/jinja_lexer.h"

#include <cctype>

#include "util/error.h"

namespace lorafit::jinja {
namespace {

enum class PieceKind { Text, Var, Block, Comment };

struct Piece {
  PieceKind kind;
  std::string text;  // Text: the literal; tags: the inside without markers
  bool minus_left = false, plus_left = false, minus_right = false, plus_right = false;
  bool line_start = false;  // Text: begins at the start of a line (for lstrip_blocks)
  int line = 1;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Finds the end of a {{ }} or {% %} tag starting at `pos` (just after the opener), skipping
// string literals and nested braces. Returns the index of the closing delimiter's first
// char ('}' or '%'), with `minus`/`plus` set when a marker precedes it.
size_t find_tag_end(const std::string& s, size_t pos, char close_first, const std::string& name, int line) {
  int depth = 0;
  for (size_t i = pos; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\'' || c == '"') {
      size_t j = i + 1;
      while (j < s.size() && s[j] != c) j += (s[j] == '\\') ? 2 : 1;
      if (j >= s.size()) throw Error("{}:{}: unterminated string literal in a tag", name, line);
      i = j;
      continue;
    }
    if (c == '{' || c == '(' || c == '[') ++depth;
    else if ((c == ')' || c == ']') && depth > 0) --depth;
    else if (c == '}' && depth > 0) {
      --depth;
      continue;
    }
    if (depth == 0 && c == close_first && i + 1 < s.size() && s[i + 1] == '}') return i;
  }
  throw Error("{}:{}: unclosed tag (expected '{}}}')", name, line, close_first);
}

std::vector<Piece> split_pieces(const std::string& s, const std::string& name) {
  std::vector<Piece> out;
  size_t pos = 0;
  int line = 1;
  auto count_lines = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) line += s[i] == '\n';
  };
  while (pos <= s.size()) {
    size_t open = s.find('{', pos);
    while (open != std::string::npos && open + 1 < s.size() && s[open + 1] != '{' && s[open + 1] != '%' &&
           s[open + 1] != '#')
      open = s.find('{', open + 1);
    if (open == std::string::npos || open + 1 >= s.size()) {
      out.push_back({PieceKind::Text, s.substr(pos), false, false, false, false, false, line});
      break;
    }
    if (open > pos) out.push_back({PieceKind::Text, s.substr(pos, open - pos), false, false, false, false, false, line});
    count_lines(pos, open);
    char kind_c = s[open + 1];
    Piece tag;
    tag.kind = kind_c == '{' ? PieceKind::Var : kind_c == '%' ? PieceKind::Block : PieceKind::Comment;
    tag.line = line;
    size_t inner = open + 2;
    if (inner < s.size() && (s[inner] == '-' || s[inner] == '+')) {
      (s[inner] == '-' ? tag.minus_left : tag.plus_left) = true;
      ++inner;
    }
    size_t close;  // index of the closer's first char
    if (tag.kind == PieceKind::Comment) {
      close = s.find("#}", inner);
      if (close == std::string::npos) throw Error("{}:{}: unclosed comment (expected '#}}')", name, line);
    } else {
      close = find_tag_end(s, inner, tag.kind == PieceKind::Var ? '}' : '%', name, line);
    }
    size_t inner_end = close;
    if (inner_end > inner && (s[inner_end - 1] == '-' || s[inner_end - 1] == '+')) {
      (s[inner_end - 1] == '-' ? tag.minus_right : tag.plus_right) = true;
      --inner_end;
    }
    tag.text = s.substr(inner, inner_end - inner);
    count_lines(open, close + 2);
    pos = close + 2;
    out.push_back(std::move(tag));
    if (pos == s.size()) break;
  }
  // The first text piece starts a line; later ones do when trim_blocks ate the newline
  // before them (set in apply_whitespace) or when they follow a newline in the source.
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i].kind == PieceKind::Text) out[i].line_start = i == 0;
  return out;
}

void apply_whitespace(std::vector<Piece>& pieces) {
  for (size_t i = 0; i < pieces.size(); ++i) {
    Piece& p = pieces[i];
    if (p.kind != PieceKind::Text) continue;
    const Piece* prev = i > 0 ? &pieces[i - 1] : nullptr;
    const Piece* next = i + 1 < pieces.size() ? &pieces[i + 1] : nullptr;
    // After a tag: `-` strips all leading whitespace; trim_blocks drops one newline after a
    // block or comment tag.
    if (prev) {
      bool is_block = prev->kind == PieceKind::Block || prev->kind == PieceKind::Comment;
      if (prev->minus_right) {
        size_t k = 0;
        while (k < p.text.size() && is_space(p.text[k])) p.line += p.text[k++] == '\n';
        p.text.erase(0, k);
      } else if (is_block && !prev->plus_right) {
        if (p.text.rfind("\r\n", 0) == 0) {
          p.text.erase(0, 2);
          p.line_start = true;
          ++p.line;
        } else if (!p.text.empty() && p.text[0] == '\n') {
          p.text.erase(0, 1);
          p.line_start = true;
          ++p.line;
        }
      }
    }
    // Before a tag: `-` strips all trailing whitespace; lstrip_blocks strips spaces and tabs
    // between the line start and a block or comment tag.
    if (next) {
      bool is_block = next->kind == PieceKind::Block || next->kind == PieceKind::Comment;
      if (next->minus_left) {
        size_t k = p.text.size();
        while (k > 0 && is_space(p.text[k - 1])) --k;
        p.text.erase(k);
      } else if (is_block && !next->plus_left) {
        size_t nl = p.text.rfind('\n');
        size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if (nl != std::string::npos || p.line_start) {
          bool only_ws = true;
          for (size_t k = l_pos; k < p.text.size(); ++k)
            if (p.text[k] != ' ' && p.text[k] != '\t') only_ws = false;
          if (only_ws) p.text.erase(l_pos);
        }
      }
    }
  }
}

void lex_tag(const std::string& src, int line, const std::string& name, std::vector<Token>& out) {
  size_t i = 0;
  while (i < src.size()) {
    char c = src[i];
    if (is_space(c)) {
      line += c == '\n';
      ++i;
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < src.size() && (std::isalnum(static_cast<unsigned char>(src[j])) || src[j] == '_')) ++j;
      out.push_back({Token::Type::Name, src.substr(i, j - i), line});
      i = j;
      continue;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      bool is_float = false;
      while (j < src.size() && (std::isdigit(static_cast<unsigned char>(src[j])) || src[j] == '_')) ++j;
      if (j + 1 < src.size() && src[j] == '.' && std::isdigit(static_cast<unsigned char>(src[j + 1]))) {
        is_float = true;
        ++j;
        while (j < src.size() && std::isdigit(static_cast<unsigned char>(src[j]))) ++j;
      }
      if (j < src.size() && (src[j] == 'e' || src[j] == 'E')) {
        size_t k = j + 1;
        if (k < src.size() && (src[k] == '+' || src[k] == '-')) ++k;
        if (k < src.size() && std::isdigit(static_cast<unsigned char>(src[k]))) {
          is_float = true;
          j = k;
          while (j < src.size() && std::isdigit(static_cast<unsigned char>(src[j]))) ++j;
        }
      }
      std::string num;
      for (size_t k = i; k < j; ++k)
        if (src[k] != '_') num += src[k];
      out.push_back({is_float ? Token::Type::Float : Token::Type::Int, num, line});
      i = j;
      continue;
    }
    if (c == '\'' || c == '"') {
      // Python string escapes (jinja2 decodes literals with "unicode-escape").
      std::string val;
      size_t j = i + 1;
      while (j < src.size() && src[j] != c) {
        if (src[j] == '\\' && j + 1 < src.size()) {
          char e = src[j + 1];
          j += 2;
          switch (e) {
            case 'n': val += '\n'; break;
            case 't': val += '\t'; break;
            case 'r': val += '\r'; break;
            case '\\': val += '\\'; break;
            case '\'': val += '\''; break;
            case '"': val += '"'; break;
            case '0': val += '\0'; break;
            case 'a': val += '\a'; break;
            case 'b': val += '\b'; break;
            case 'f': val += '\f'; break;
            case 'v': val += '\v'; break;
            case '\n': break;  // line continuation
            case 'x':
            case 'u':
            case 'U': {
              size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
              if (j + n > src.size()) throw Error("{}:{}: truncated \\{} escape in a string literal", name, line, e);
              uint32_t cp = static_cast<uint32_t>(std::stoul(src.substr(j, n), nullptr, 16));
              j += n;
              // UTF-8 encode
              if (cp < 0x80) val += static_cast<char>(cp);
              else if (cp < 0x800) {
                val += static_cast<char>(0xC0 | (cp >> 6));
                val += static_cast<char>(0x80 | (cp & 0x3F));
              } else if (cp < 0x10000) {
                val += static_cast<char>(0xE0 | (cp >> 12));
                val += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
                val += static_cast<char>(0x80 | (cp & 0x3F));
              } else {
                val += static_cast<char>(0xF0 | (cp >> 18));
                val += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
                val += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
                val += static_cast<char>(0x80 | (cp & 0x3F));
              }
              break;
            }
            default: val += '\\'; val += e; break;  // unknown escapes stay as written
          }
          continue;
        }
        line += src[j] == '\n';
        val += src[j++];
      }
      if (j >= src.size()) throw Error("{}:{}: unterminated string literal", name, line);
      out.push_back({Token::Type::String, val, line});
      i = j + 1;
      continue;
    }
    static const char* two[] = {"//", "**", "==", "!=", "<=", ">="};
    bool matched = false;
    for (const char* op : two)
      if (src.compare(i, 2, op) == 0) {
        out.push_back({Token::Type::Op, op, line});
        i += 2;
        matched = true;
        break;
      }
    if (matched) continue;
    if (std::string("()[]{}.,:|~+-*/%=<>").find(c) != std::string::npos) {
      out.push_back({Token::Type::Op, std::string(1, c), line});
      ++i;
      continue;
    }
    throw Error("{}:{}: unexpected character '{}' in a tag", name, line, c);
  }
}

}  // namespace

std::vector<Token> lex(const std::string& source, const std::string& name) {
  auto pieces = split_pieces(source, name);
  apply_whitespace(pieces);
  std::vector<Token> out;
  for (const auto& p : pieces) {
    switch (p.kind) {
      case PieceKind::Text:
        if (!p.text.empty()) out.push_back({Token::Type::Text, p.text, p.line});
        break;
      case PieceKind::Comment: break;
      case PieceKind::Var:
        out.push_back({Token::Type::VarBegin, "{{", p.line});
        lex_tag(p.text, p.line, name, out);
        out.push_back({Token::Type::VarEnd, "}}", p.line});
        break;
      case PieceKind::Block:
        out.push_back({Token::Type::BlockBegin, "{%", p.line});
        lex_tag(p.text, p.line, name, out);
        out.push_back({Token::Type::BlockEnd, "%}", p.line});
        break;
    }
  }
  out.push_back({Token::Type::End, "", out.empty() ? 1 : out.back().line});  // jinja2 reports EOF there
  return out;
}

}  // namespace lorafit::jinja
