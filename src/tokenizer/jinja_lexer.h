// Jinja lexer: splits a template into text and tags with jinja2's whitespace rules as
// transformers configures them (trim_blocks=True, lstrip_blocks=True, `-`/`+` markers),
// then tokenizes the inside of each tag.
#pragma once
#include <string>
#include <vector>

namespace lorafit::jinja {

struct Token {
  enum class Type {
    Text,        // literal template text (whitespace rules already applied)
    VarBegin,    // {{
    VarEnd,      // }}
    BlockBegin,  // {%
    BlockEnd,    // %}
    Name,
    String,      // value unescaped
    Int,
    Float,
    Op,          // ( ) [ ] { } . , : | ~ + - * / // % ** = == != < > <= >=
    End,
  };
  Type type;
  std::string value;
  int line;
};

// Throws lorafit::Error "<name>:<line>: ..." on unterminated tags, strings or bad characters.
std::vector<Token> lex(const std::string& source, const std::string& name);

}  // namespace lorafit::jinja
