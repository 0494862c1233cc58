#include "eval/text_metrics.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "tokenizer/jieba.h"
#include "tokenizer/unicode.h"

namespace lorafit::eval {

namespace {

using U32 = std::u32string;
using tok::py_isspace;

U32 to32(std::string_view s) {
  const std::string v = tok::is_valid_utf8(s) ? std::string(s) : tok::utf8_lossy(s);
  U32 out;
  for (size_t i = 0; i < v.size();) out.push_back(tok::next_cp(v, i));
  return out;
}

std::vector<U32> py_split_ws(const U32& s) {  // str.split()
  std::vector<U32> out;
  for (size_t i = 0; i < s.size();) {
    while (i < s.size() && py_isspace(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !py_isspace(s[j])) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::vector<U32> split_space(const U32& s) {  // str.split(" ")
  std::vector<U32> out;
  size_t a = 0;
  for (size_t b; (b = s.find(U' ', a)) != U32::npos; a = b + 1) out.push_back(s.substr(a, b - a));
  out.push_back(s.substr(a));
  return out;
}

bool is_quote(char32_t c) { return c == U'”' || c == U'’'; }
bool is_stop(char32_t c) { return c == U'。' || c == U'！' || c == U'？' || c == U'?'; }

// re.sub(pattern, r"\1\n\2", s) for the fixed-length patterns of Rouge.cut_sent: `head(i)`
// returns the length of group 1 matched at i (0: none), `tail` tests the one-character group 2.
template <class Head, class Tail>
U32 insert_breaks(const U32& s, Head head, Tail tail) {
  U32 out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t h = head(i);
    if (h > 0 && i + h < s.size() && tail(s[i + h])) {
      out.append(s, i, h);
      out += U'\n';
      out += s[i + h];
      i += h + 1;
    } else {
      out += s[i++];
    }
  }
  return out;
}

std::vector<U32> cut_sent(U32 p) {  // rouge_chinese.Rouge.cut_sent
  p = insert_breaks(p, [&](size_t i) -> size_t { return is_stop(p[i]) ? 1 : 0; },
                    [](char32_t c) { return !is_quote(c); });
  p = insert_breaks(p, [&](size_t i) -> size_t { return i + 6 <= p.size() && p.compare(i, 6, U"......") == 0 ? 6 : 0; },
                    [](char32_t c) { return !is_quote(c); });
  p = insert_breaks(p, [&](size_t i) -> size_t { return i + 2 <= p.size() && p.compare(i, 2, U"……") == 0 ? 2 : 0; },
                    [](char32_t c) { return !is_quote(c); });
  p = insert_breaks(p, [&](size_t i) -> size_t { return i + 1 < p.size() && is_stop(p[i]) && is_quote(p[i + 1]) ? 2 : 0; },
                    [](char32_t c) { return !(c == U'，' || is_stop(c)); });
  while (!p.empty() && py_isspace(p.back())) p.pop_back();  // rstrip()
  std::vector<U32> out;
  size_t a = 0;
  for (size_t b; (b = p.find(U'\n', a)) != U32::npos; a = b + 1) out.push_back(p.substr(a, b - a));
  out.push_back(p.substr(a));
  return out;
}

// The sentences as _get_scores prepares them, flattened to words (_split_into_words).
std::vector<U32> rouge_words(const U32& text) {
  std::vector<U32> words;
  for (const U32& sent : cut_sent(text)) {
    if (sent.empty()) continue;
    U32 norm;
    for (const U32& w : py_split_ws(sent)) norm += (norm.empty() ? U"" : U" ") + w;
    for (U32& w : split_space(norm)) words.push_back(std::move(w));
  }
  return words;
}

double f1(double p, double r) { return 2.0 * ((p * r) / (p + r + 1e-8)); }

double rouge_n(const std::vector<U32>& hyp, const std::vector<U32>& ref, size_t n) {
  auto grams = [n](const std::vector<U32>& w) {
    std::set<std::vector<U32>> s;
    for (size_t i = 0; i + n <= w.size(); ++i) s.emplace(w.begin() + static_cast<ptrdiff_t>(i),
                                                         w.begin() + static_cast<ptrdiff_t>(i + n));
    return s;
  };
  const auto h = grams(hyp), r = grams(ref);
  size_t overlap = 0;
  for (const auto& g : h) overlap += r.count(g);
  const double p = h.empty() ? 0.0 : static_cast<double>(overlap) / static_cast<double>(h.size());
  const double rc = r.empty() ? 0.0 : static_cast<double>(overlap) / static_cast<double>(r.size());
  return f1(p, rc);
}

double rouge_l(const std::vector<U32>& hyp, const std::vector<U32>& ref) {
  const size_t n = ref.size(), m = hyp.size();  // _len_lcs(ref, hyp)
  std::vector<size_t> prev(m + 1, 0), cur(m + 1, 0);
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) cur[j] = ref[i - 1] == hyp[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  const double llcs = static_cast<double>(prev[m]);
  return f1(llcs / static_cast<double>(m), llcs / static_cast<double>(n));
}

double round4(double x) { return std::nearbyint(x * 1e4) / 1e4; }  // Python round(x, 4), to < 1e-4

}  // namespace

RougeF rouge_chinese(const U32& hyp_joined, const U32& ref_joined) {
  const auto hyp = rouge_words(hyp_joined), ref = rouge_words(ref_joined);
  return {rouge_n(hyp, ref, 1), rouge_n(hyp, ref, 2), rouge_l(hyp, ref)};
}

double bleu4_method3(const U32& ref, const U32& hyp) {
  int64_t num[4], den[4];
  for (size_t n = 1; n <= 4; ++n) {  // modified_precision
    std::map<U32, int64_t> hc, rc;
    for (size_t i = 0; i + n <= hyp.size(); ++i) ++hc[hyp.substr(i, n)];
    for (size_t i = 0; i + n <= ref.size(); ++i) ++rc[ref.substr(i, n)];
    int64_t clipped = 0, total = 0;
    for (const auto& [g, c] : hc) {
      const auto it = rc.find(g);
      clipped += std::min(c, it == rc.end() ? 0 : it->second);
      total += c;
    }
    num[n - 1] = clipped;
    den[n - 1] = std::max<int64_t>(1, total);
  }
  if (num[0] == 0) return 0.0;
  const double hl = static_cast<double>(hyp.size()), rl = static_cast<double>(ref.size());
  const double bp = hl > rl ? 1.0 : std::exp(1.0 - rl / hl);  // hl > 0 here: num[0] > 0
  double s = 0;
  int incvnt = 1;
  for (int i = 0; i < 4; ++i) {
    double p = static_cast<double>(num[i]) / static_cast<double>(den[i]);
    if (num[i] == 0) p = 1.0 / (std::pow(2.0, incvnt++) * static_cast<double>(den[i]));
    s += 0.25 * std::log(p);
  }
  return bp * std::exp(s);
}

QaScores qa_scores(std::string_view prediction, std::string_view reference, const tok::Jieba& jieba) {
  const U32 pred = to32(prediction), label = to32(reference);
  auto joined = [&](const U32& s) {
    U32 j;
    bool first = true;
    for (const U32& w : jieba.cut32(s)) {
      if (!first) j += U' ';
      j += w;
      first = false;
    }
    return j;
  };
  const U32 hyp = joined(pred), ref = joined(label);
  QaScores q;
  if (!py_split_ws(hyp).empty() && !py_split_ws(ref).empty()) {
    const RougeF f = rouge_chinese(hyp, ref);
    q.rouge1 = round4(f.r1 * 100), q.rouge2 = round4(f.r2 * 100), q.rougel = round4(f.rl * 100);
  }
  q.bleu4 = round4(bleu4_method3(label, pred) * 100);
  return q;
}

}  // namespace lorafit::eval
