// Hostile chat templates end with a named lorafit::Error, never a crash, hang or wrapped
// integer: nesting (generated here, thousands deep), recursion, loop/range/repetition/output
// size limits, and 64-bit arithmetic that Python would have done in big integers.
#include <gtest/gtest.h>

#include <string>

#include "tokenizer/jinja.h"
#include "tokenizer/jinja_limits.h"
#include "util/error.h"

using namespace lorafit;
using namespace lorafit::jinja;

namespace {

std::string render(const std::string& src) { return Template(src, "t").render(Value::dict()).text; }

// The message of the Error that rendering (or parsing) `src` throws; "" if none.
std::string error_of(const std::string& src) {
  try {
    render(src);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

const std::string kNesting = "expressions or tags nested deeper than 100 levels (the template engine's limit)";

}  // namespace

TEST(JinjaLimits, DeepParenthesesNotAndMinus) {
  EXPECT_EQ(error_of("{{ " + repeat("(", 100000) + "1" + repeat(")", 100000) + " }}"),
            "t:1: syntax error: " + kNesting);
  EXPECT_EQ(error_of("{{ " + repeat("not ", 100000) + "1 }}"), "t:1: syntax error: " + kNesting);
  EXPECT_EQ(error_of("{{ " + repeat("- ", 100000) + "1 }}"), "t:1: syntax error: " + kNesting);
  EXPECT_EQ(error_of("{{ " + repeat("[", 100000) + repeat("]", 100000) + " }}"), "t:1: syntax error: " + kNesting);
  // Within the limit the same shapes still work.
  EXPECT_EQ(render("{{ " + repeat("(", 50) + "1" + repeat(")", 50) + " }}"), "1");
  EXPECT_EQ(render("{{ " + repeat("not ", 50) + "1 }}"), "True");
}

TEST(JinjaLimits, LongChainsAreTallTrees) {
  // `1 + 1 + ...` is built in a loop, but is as tall as it is long.
  EXPECT_EQ(error_of("{{ 1" + repeat(" + 1", 100000) + " }}"), "t:1: syntax error: " + kNesting);
  EXPECT_EQ(error_of("{{ 'a'" + repeat(" ~ 'a'", 100000) + " }}"), "t:1: syntax error: " + kNesting);
  EXPECT_EQ(error_of("{{ x" + repeat("|lower", 100000) + " }}"), "t:1: syntax error: " + kNesting);
  EXPECT_EQ(error_of("{{ x" + repeat(".a", 100000) + " }}"), "t:1: syntax error: " + kNesting);
  EXPECT_EQ(render("{{ 1" + repeat(" + 1", 90) + " }}"), "91");
}

TEST(JinjaLimits, DeepTags) {
  EXPECT_EQ(error_of(repeat("{% if true %}", 100000) + "x" + repeat("{% endif %}", 100000)),
            "t:1: syntax error: " + kNesting);
  EXPECT_EQ(error_of(repeat("{% for i in [1] %}", 100000) + repeat("{% endfor %}", 100000)),
            "t:1: syntax error: " + kNesting);
  EXPECT_EQ(render(repeat("{% if true %}", 60) + "x" + repeat("{% endif %}", 60)), "x");
}

TEST(JinjaLimits, RecursiveMacro) {
  EXPECT_EQ(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
            "t:1: macro 'f': calls nested deeper than 100 (recursion without end?)");
  // Bounded recursion is fine (jinja2 allows it too).
  EXPECT_EQ(render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}"),
            "54321");
}

TEST(JinjaLimits, LoopsRangeAndRepetition) {
  EXPECT_EQ(error_of("{{ range(100000000) | length }}"), "t:1: range of 100000000 items is larger than the limit of 1000000");
  EXPECT_EQ(error_of("{{ range(-9223372036854775807, 9223372036854775807, 3) | length }}"),
            "t:1: range of 6148914691236517205 items is larger than the limit of 1000000");
  EXPECT_EQ(error_of("{% for i in range(1000) %}{% for j in range(1001) %}{% endfor %}{% endfor %}"),
            "t:1: more than 1000000 loop iterations in one render (the template engine's limit)");
  EXPECT_EQ(error_of("{{ 'ab' * 100000000 }}"),
            "t:1: repeating a string 100000000 times is larger than the limit of 67108864 bytes");
  EXPECT_EQ(error_of("{{ ([1, 2] * 9000000000000000000) | length }}"),
            "t:1: repeating a list 9000000000000000000 times is larger than the limit of 1000000 items");
  EXPECT_EQ(error_of("{% set s = 'x' * 1000000 %}{% for i in range(100) %}{{ s }}{% endfor %}"),
            "t: rendered output passes 64 MiB (the template engine's limit)");
  EXPECT_EQ(error_of("{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
                     "{% endfor %}"),
            "t:1: string of more than 64 MiB (the template engine's limit)");
  EXPECT_EQ(error_of("{{ ('x' * 1000000).replace('x', 'y' * 1000) }}"),
            "t:1: string of more than 64 MiB (the template engine's limit)");
  EXPECT_EQ(error_of("{{ [1] | tojson(indent=1000000000) }}"), "t:1: tojson indent 1000000000 is larger than 64");
  EXPECT_EQ(render("{{ range(3, 12, 4) | list }}|{{ range(5, -6, -5) | list }}|{{ 'ab' * 3 }}"),
            "[3, 7, 11]|[5, 0, -5]|ababab");
}

TEST(JinjaLimits, DeepValuesBuiltByLoops) {
  // A list nested deep is built in a loop (within the iteration limit); printing it stops at
  // the value-depth limit, and freeing one nested 200,000 deep does not recurse (a recursive
  // destructor overflows the stack there).
  EXPECT_EQ(error_of("{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}"
                     "{{ ns.x }}"),
            "t:1: value nested deeper than 256 lists/dicts (or containing itself)");
  EXPECT_EQ(error_of("{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}"
                     "{{ ns.x | tojson }}"),
            "t:1: value nested deeper than 256 lists/dicts (or containing itself)");
  EXPECT_EQ(render("{% set ns = namespace(x=[]) %}{% for i in range(200000) %}{% set ns.x = [ns.x] %}{% endfor %}ok"),
            "ok");
  // A namespace that contains itself.
  EXPECT_EQ(error_of("{% set ns = namespace(a=1) %}{% set ns.a = ns %}{{ ns }}"),
            "t:1: value nested deeper than 256 lists/dicts (or containing itself)");
  EXPECT_EQ(error_of("{% set ns = namespace(a=1) %}{% set ns.a = ns %}{{ ns == ns }}"),
            "t:1: value nested deeper than 256 lists/dicts (or containing itself)");
}

TEST(JinjaLimits, CheckedIntegerArithmetic) {
  const std::string max = "9223372036854775807", min1 = "-9223372036854775807";
  EXPECT_EQ(error_of("{{ " + max + " + 1 }}"),
            "t:1: integer overflow: 9223372036854775807 + 1 does not fit in 64 bits");
  EXPECT_EQ(error_of("{{ " + min1 + " - 2 }}"),
            "t:1: integer overflow: -9223372036854775807 - 2 does not fit in 64 bits");
  EXPECT_EQ(error_of("{{ 4294967296 * 4294967296 }}"),
            "t:1: integer overflow: 4294967296 * 4294967296 does not fit in 64 bits");
  EXPECT_EQ(error_of("{{ 2 ** 64 }}"), "t:1: integer overflow: 2 ** 64 does not fit in 64 bits");
  EXPECT_EQ(error_of("{{ 3 ** 1000000000000000000 }}"),
            "t:1: integer overflow: 3 ** 1000000000000000000 does not fit in 64 bits");
  EXPECT_EQ(error_of("{{ -(" + min1 + " - 1) }}"),
            "t:1: integer overflow: -(-9223372036854775808) does not fit in 64 bits");
  EXPECT_EQ(error_of("{{ (" + min1 + " - 1) // -1 }}"),
            "t:1: integer overflow: -9223372036854775808 // -1 does not fit in 64 bits");
  EXPECT_EQ(error_of("{{ 99999999999999999999 }}"), "t:1: syntax error: integer 99999999999999999999 does not fit in 64 bits");
  // Exact results at the edges, as Python computes them.
  EXPECT_EQ(render("{{ 2 ** 62 }}|{{ (-2) ** 63 }}|{{ 0 ** 1000000000000000000 }}|{{ 1 ** 1000000000000000000 }}"),
            "4611686018427387904|-9223372036854775808|0|1");
  EXPECT_EQ(render("{{ (" + min1 + " - 1) % -1 }}|{{ -7 // 2 }}|{{ -7 % 2 }}|{{ 1e999 }}"), "0|-4|1|inf");
  EXPECT_EQ(render("{{ [1, 2, 3][::9223372036854775807] }}|{{ [1, 2, 3][::-9223372036854775807] }}"), "[1]|[3]");
  EXPECT_EQ(error_of("{{ 1e300 | int }}"), "t:1: integer overflow: int(1e+300) does not fit in 64 bits");
  EXPECT_EQ(error_of("{{ '1e300' | int(7) }}"), "t:1: integer overflow: int(1e+300) does not fit in 64 bits");
  EXPECT_EQ(render("{{ 2.9 | int }}|{{ '-3.5' | int }}|{{ 'nan' | int(7) }}"), "2|-3|7");
}

TEST(JinjaLimits, SourceSize) {
  EXPECT_EQ(error_of(std::string(5u << 20, 'x')), "t: template of 5242880 bytes is larger than the limit of 4 MiB");
}

// Found by fuzz_jinja (fuzz/regressions/jinja/newline-in-token): a syntax error quotes the
// token it got, and a string token may hold a raw newline; the message stays one line.
TEST(JinjaLimits, QuotedTokensStayOneLine) {
  // (the lexer numbers a token by the line it ends on)
  EXPECT_EQ(error_of("{% set x = 1 'a\nb' %}"), "t:2: syntax error: expected '%}', got 'a<U+000A>b'");
}

// Found by fuzz_jinja (fuzz/regressions/jinja/divisibleby-zero): `divisibleby 0` was an integer
// division by zero (UB, SIGFPE); Python raises ZeroDivisionError, so this is an error. Every
// number is divisible by -1, INT64_MIN included (whose C++ remainder would overflow).
TEST(JinjaLimits, DivisibleByZeroIsAnError) {
  EXPECT_EQ(error_of("{{ 4 is divisibleby 0 }}"), "t:1: integer division or modulo by zero");
  EXPECT_EQ(render("{{ (-9223372036854775807 - 1) is divisibleby(-1) }} {{ 7 is divisibleby 2 }}"), "True False");
}

// Found by fuzz_jinja (fuzz/regressions/jinja/newline-in-raise-exception): a template's own
// raise_exception message may hold newlines; lorafit's message quoting it stays one line.
TEST(JinjaLimits, RaisedMessageStaysOneLine) {
  EXPECT_EQ(error_of("{{ raise_exception('Conversation\\nroles must alternate') }}"),
            "t:1: template raised an exception: Conversation<U+000A>roles must alternate");
}
