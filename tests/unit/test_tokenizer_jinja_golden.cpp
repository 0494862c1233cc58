// The Jinja interpreter against jinja2 as transformers 4.46 configures it: every snippet in
// tests/fixtures/chat/jinja_cases.json (tools/golden/make_chat_fixtures.py) must render to
// the same text, or fail where jinja2 fails (same line for syntax errors, same message for
// runtime errors).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tokenizer/jinja.h"
#include "util/error.h"
#include "util/file.h"

using namespace lorafit;
using ojson = nlohmann::ordered_json;

namespace {

ojson load_cases() { return ojson::parse(read_file(fs::path(LORAFIT_FIXTURES) / "chat" / "jinja_cases.json")); }

TEST(JinjaGolden, MatchesJinja2) {
  ojson doc = load_cases();
  jinja::Value ctx = jinja::Value::from_json(doc["context"]);
  ASSERT_GT(doc["cases"].size(), 50u);
  int i = 0;
  for (const auto& c : doc["cases"]) {
    const std::string src = c["template"].get<std::string>();
    const std::string name = "case" + std::to_string(i++);
    SCOPED_TRACE(name + ": " + src);
    if (c.contains("rendered")) {
      try {
        jinja::Template t(src, name);
        EXPECT_EQ(t.render(ctx).text, c["rendered"].get<std::string>());
      } catch (const Error& e) {
        ADD_FAILURE() << "unexpected error: " << e.what();
      }
      continue;
    }
    std::string msg;
    try {
      jinja::Template t(src, name);
      t.render(ctx);
    } catch (const Error& e) {
      msg = e.what();
    }
    ASSERT_FALSE(msg.empty()) << "expected an error like jinja2's: " << c["error"];
    EXPECT_EQ(msg.rfind(name + ":", 0), 0u) << msg;  // names the template
    const std::string type = c["error_type"].get<std::string>();
    if (type == "TemplateSyntaxError" && c.contains("lineno")) {
      EXPECT_EQ(msg.rfind(name + ":" + std::to_string(c["lineno"].get<int>()) + ":", 0), 0u) << msg;
    }
    if (type == "UndefinedError" || type == "TypeError" || type == "TemplateError") {
      EXPECT_NE(msg.find(c["error"].get<std::string>()), std::string::npos) << msg;
    }
  }
}

TEST(JinjaGolden, ErrorNamesTemplateAndLine) {
  try {
    jinja::Template t("a\nb\n{{ 1 + }}", "my-template");
    FAIL() << "expected a syntax error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "my-template:3: syntax error: unexpected '}}'");
  }
  jinja::Template t("x\n\n{{ raise_exception('bad role') }}", "t2");
  try {
    t.render(jinja::Value::dict());
    FAIL() << "expected raise_exception to throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "t2:3: template raised an exception: bad role");
  }
}

TEST(JinjaGolden, AttributesOutputToTrackedItems) {
  // Items of a registered list keep their identity through slicing and filters.
  ojson items = ojson::parse(R"([{"r": "a"}, {"r": "b"}, {"r": "c"}])");
  jinja::Value list = jinja::Value::from_json(items);
  std::unordered_map<const void*, int> tracked;
  for (size_t i = 0; i < list.items().size(); ++i) tracked[list.items()[i].identity()] = static_cast<int>(i);
  jinja::ValueDict ctx = {{"xs", list}};
  jinja::Template t("<{% set xs = xs[1:] %}{% for x in xs | rejectattr('r', 'eq', 'b') %}[{{ x.r }}]{% endfor %}>", "t");
  jinja::RenderResult r = t.render(jinja::Value::dict(ctx), &tracked);
  EXPECT_EQ(r.text, "<[c]>");
  ASSERT_EQ(r.spans.size(), 1u);
  EXPECT_EQ(r.spans[0].index, 2);
  EXPECT_EQ(r.text.substr(r.spans[0].begin, r.spans[0].end - r.spans[0].begin), "[c]");
}

}  // namespace
