// A Jinja2 renderer for Hugging Face chat templates: the subset of jinja2 that chat
// templates use, with the settings transformers 4.46 gives it (trim_blocks, lstrip_blocks,
// loopcontrols, `raise_exception`, `strftime_now`, and json.dumps-style `tojson`).
// Unknown filters/tests/tags and bad syntax raise lorafit::Error "<name>:<line>: ...".
//
// Output attribution: the caller may register list/dict identities (e.g. each message dict).
// While a `for` loop iterates an item registered as index i, everything written to the
// output is attributed to i. This survives `messages[1:]`, `messages | selectattr(...)` and
// `set messages = messages[1:]`, which copy references, not dicts.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace lorafit::jinja {

struct TemplateAst;

struct OutputSpan {
  size_t begin = 0, end = 0;  // byte range of the rendered text
  int index = -1;             // registered index of the item being iterated
};

struct RenderResult {
  std::string text;
  std::vector<OutputSpan> spans;  // in order, non-overlapping, only for attributed output
};

class Template {
 public:
  // Parses now; throws lorafit::Error naming `name` and the line on syntax errors.
  Template(const std::string& source, std::string name);
  ~Template();
  Template(const Template&);
  Template& operator=(const Template&);

  // `context` must be a dict; its entries are the template's variables.
  // `tracked` maps identities (Value::identity()) of loop items to attribution indices.
  RenderResult render(const Value& context,
                      const std::unordered_map<const void*, int>* tracked = nullptr) const;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::shared_ptr<const TemplateAst> ast_;
};

}  // namespace lorafit::jinja
