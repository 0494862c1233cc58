#include "eval/mcq.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <set>

#include "eval/csv.h"
#include "eval/eval_assets.h"
#include "tokenizer/jieba.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace lorafit::eval {

namespace {

// Python's \s on str patterns is str.isspace(); PCRE2's \s is not, so the patterns below spell
// it out (tok::py_isspace lists the same characters).
constexpr std::string_view kPySpace =
    "\\t\\n\\x0B\\f\\r\\x1C-\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

std::string expand_space(std::string_view pat) {  // \s → [..] outside classes, the list inside
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pat.size(); ++i) {
    if (pat[i] == '\\' && i + 1 < pat.size()) {
      if (pat[i + 1] == 's') {
        out += in_class ? std::string(kPySpace) : "[" + std::string(kPySpace) + "]";
      } else {
        out += pat.substr(i, 2);
      }
      ++i;
      continue;
    }
    if (pat[i] == '[') in_class = true;
    if (pat[i] == ']') in_class = false;
    out += pat[i];
  }
  return out;
}

struct Regex {
  pcre2_code* code = nullptr;
  explicit Regex(std::string_view python_pattern) {
    const std::string p = expand_space(python_pattern);
    int err = 0;
    PCRE2_SIZE off = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(), PCRE2_UTF, &err, &off, nullptr);
    LF_CHECK(code, "MCQ pattern {} does not compile at {}", p, off);
  }
  ~Regex() { pcre2_code_free(code); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Group 1 of every non-overlapping match from the left (re.findall with one group), or of
  // the first only (re.search).
  std::vector<std::string> find(std::string_view s, bool all) const {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(code, nullptr), pcre2_match_data_free);
    std::vector<std::string> out;
    for (PCRE2_SIZE pos = 0; pos <= s.size();) {
      const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, 0, md.get(), nullptr);
      if (rc < 0) break;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
      out.emplace_back(s.substr(ov[2], ov[3] - ov[2]));
      if (!all) break;
      pos = ov[1] > ov[0] ? ov[1] : ov[1] + 1;  // the patterns never match empty; guard anyway
    }
    return out;
  }
};

// McqRegexEvaluator._pats1 and _pats2, verbatim.
constexpr const char* kPats1[] = {
    R"(答案应?该?[为是]([ABCD,，、\s]+))",
    R"(答案是([ABCD,，、\s]+))",
    R"(选项应?该?[是为]([ABCD,，\s、]+))",
    R"(答案([ABCD,，、\s]+))",
    R"(答案应该?选\s?([ABCD,，、\s]+))",
    R"(选择([ABCD,，、\s]+))",
    R"(故?选[:：]?([ABCD,，、\s]+))",
    R"(选择答案([ABCD,，\s、]+))",
    R"(^\s*选([ABCD,，、\s]+)[,，项．\.])",
    R"(([ABCD,，、\s]+)</s>)",
    R"(^([ABCD,，、\s]+)。)",
};
constexpr const char* kLetterDot = R"(([ABCD][\.．])\s?)";
constexpr const char* kPats2[] = {
    R"(([ABCD,，、\s]+)都?是正确的)",
    R"(选项([ABCD,，\s、]+)正确)",
    R"(([ABCD,，、\s]+)选项正确)",
    R"(([ABCD,，、\s]+)\s?都?[是为]正确答案)",
    R"(([ABCD,，、\s]+)\s?都?[是为]正确选项)",
    R"(([ABCD,，、\s]+)\s?选?项?都?属于[^错不])",
};

struct Patterns {
  std::vector<std::unique_ptr<Regex>> pats1, pats2;
  std::unique_ptr<Regex> letter_dot;
  Patterns() {
    for (const char* p : kPats1) pats1.push_back(std::make_unique<Regex>(p));
    for (const char* p : kPats2) pats2.push_back(std::make_unique<Regex>(p));
    letter_dot = std::make_unique<Regex>(kLetterDot);
  }
};
const Patterns& patterns() {
  static const Patterns p;
  return p;
}

std::u32string to32(std::string_view s) {
  const std::string v = tok::is_valid_utf8(s) ? std::string(s) : tok::utf8_lossy(s);
  std::u32string out;
  for (size_t i = 0; i < v.size();) out.push_back(tok::next_cp(v, i));
  return out;
}

std::string py_strip(std::string_view s) {  // str.strip()
  const std::u32string u = to32(s);
  size_t a = 0, b = u.size();
  while (a < b && tok::py_isspace(u[a])) ++a;
  while (b > a && tok::py_isspace(u[b - 1])) --b;
  std::string out;
  for (size_t i = a; i < b; ++i) tok::append_utf8(out, u[i]);
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x;
  return s;
}

}  // namespace

const std::vector<FewShot>& official_few_shot(bool multi) {
  static const auto load = [](std::string_view csv, const char* name) {
    std::vector<FewShot> out;
    const CsvTable t = parse_csv(csv, name);
    const size_t qi = t.column("input"), ai = t.column("output");
    for (const auto& r : t.rows) out.push_back({r.cells[qi], r.cells[ai]});
    return out;
  };
  static const std::vector<FewShot> sing = load(few_shot_sing_csv(), "few_shot/mcq_sing_examples.csv");
  static const std::vector<FewShot> mult = load(few_shot_mult_csv(), "few_shot/mcq_mult_examples.csv");
  return multi ? mult : sing;
}

std::string mcq_prompt(std::string_view question, std::string_view options, bool multi, int n_shot) {
  const auto& ex = official_few_shot(multi);
  const char* kind = multi ? "多项" : "单项";
  if (n_shot < 0 || static_cast<size_t>(n_shot) > ex.size())
    throw Error("MCQ ({}) supports at most {} few shot examples; got {} (--num_few_shot)", kind, ex.size(), n_shot);
  std::string s = fmt::format("以下是一道{}选择题，不需要做任何分析和解释，直接输出答案选项。\n下面给出了{}个样例，按照此样例输出答案。",
                              kind, n_shot);
  for (int i = 0; i < n_shot; ++i) s += fmt::format("\n\n问题：{}\n答案：{}", ex[static_cast<size_t>(i)].question,
                                                   ex[static_cast<size_t>(i)].answer);
  // The official "问题：{question}\n{options}\n答案："; a question that carries its options
  // (the bundled JSONL: question + "\n" + options) gives the same text with options "".
  s += options.empty() ? fmt::format("\n\n问题：{}\n答案：", question)
                       : fmt::format("\n\n问题：{}\n{}\n答案：", question, options);
  return s;
}

std::string extract_answer(std::string_view raw) {
  const std::string response = tok::is_valid_utf8(raw) ? std::string(raw) : tok::utf8_lossy(raw);  // a Python str
  if (to32(response).size() < 10) return response;
  const Patterns& P = patterns();
  for (const auto& re : P.pats1)
    if (auto m = re->find(response, false); !m.empty()) return py_strip(m[0]);
  if (auto m = P.letter_dot->find(response, true); !m.empty()) return py_strip(join(m));
  for (const auto& re : P.pats2)
    if (auto m = re->find(response, true); !m.empty()) return py_strip(join(m));
  return response;
}

std::string answer_letters(std::string_view extracted) {
  std::set<char> s;
  for (char c : extracted)  // UTF-8: bytes 'A'..'D' are only ever those characters
    if (c >= 'A' && c <= 'D') s.insert(c);
  return {s.begin(), s.end()};
}

bool mcq_correct(std::string_view reference, std::string_view extracted) {
  const std::u32string ref = to32(reference);
  const std::set<char32_t> gt(ref.begin(), ref.end());
  std::set<char32_t> got;
  for (char c : answer_letters(extracted)) got.insert(static_cast<char32_t>(c));
  return gt == got;
}

}  // namespace lorafit::eval
