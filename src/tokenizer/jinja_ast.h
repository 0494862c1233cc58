// Syntax tree of a parsed Jinja template.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace lorafit::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    Literal,   // value
    Name,      // name
    ListLit,   // args
    DictLit,   // args: key0, val0, key1, val1, ...
    Attr,      // args[0].name
    Item,      // args[0][args[1]]
    Slice,     // args[0][args[1]:args[2]:args[3]] (null parts allowed)
    Call,      // args[0](args[1..], kwargs)
    Filter,    // args[0] | name(args[1..], kwargs)
    Test,      // args[0] is [not] name(args[1..])
    Unary,     // name in {"-", "+", "not"}
    Binary,    // args[0] name args[1]; name in + - * / // % ** ~ == != < > <= >= in notin and or
    Cond,      // args[0] if args[1] else args[2] (args[2] may be null)
  };
  Kind kind;
  int line = 0;
  int height = 1;  // 1 + the tallest argument (bounded by kMaxNesting)
  Value value;
  std::string name;
  bool negated = false;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Kind { Text, Output, If, For, Set, SetBlock, Macro, Break, Continue, Generation };
  Kind kind;
  int line = 0;
  std::string text;                               // Text
  ExprPtr expr;                                   // Output, Set value, For iterable
  std::vector<std::pair<ExprPtr, Body>> branches;  // If: (condition, body) for if/elif
  Body body;                                      // For / SetBlock / Macro / Generation body
  Body else_body;                                 // If else, For else
  std::vector<std::string> targets;               // For / Set names; Set "ns.attr" -> {ns, attr}
  bool attr_target = false;                       // Set: targets = {object, attribute}
  ExprPtr filter;                                 // For: `if` condition
  std::string name;                               // Macro name
  std::vector<std::pair<std::string, ExprPtr>> params;  // Macro params with defaults
};

struct TemplateAst {
  std::string name;
  Body body;
};

// Throws lorafit::Error "<name>:<line>: ..." on syntax errors.
TemplateAst parse_template(const std::string& source, const std::string& name);

}  // namespace lorafit::jinja
