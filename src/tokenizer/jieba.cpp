#include "tokenizer/jieba.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "tokenizer/jieba_data.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace lorafit::tok {

namespace {

constexpr double kMinFloat = -3.14e100;  // jieba.finalseg.MIN_FLOAT
constexpr char kStates[4] = {'B', 'M', 'E', 'S'};
// finalseg.PrevStatus: the states that may precede each state.
constexpr int kPrev[4][2] = {{2, 3} /*B: E S*/, {1, 0} /*M: M B*/, {0, 1} /*E: B M*/, {3, 2} /*S: S E*/};

int state_index(std::string_view s) {
  for (int i = 0; i < 4; ++i)
    if (s.size() == 1 && s[0] == kStates[i]) return i;
  return -1;
}

bool is_han(char32_t c) { return c >= 0x4E00 && c <= 0x9FD5; }
bool is_ascii_alnum(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
// re_han_default = [\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-]
bool in_han_run(char32_t c) {
  return is_han(c) || is_ascii_alnum(c) || c == '+' || c == '#' || c == '&' || c == '.' || c == '_' || c == '%' ||
         c == '-';
}

std::u32string decode(std::string_view s) {
  const std::string valid = is_valid_utf8(s) ? std::string(s) : utf8_lossy(s);
  std::u32string out;
  out.reserve(valid.size());
  for (size_t i = 0; i < valid.size();) out.push_back(next_cp(valid, i));
  return out;
}

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> f;
  size_t a = 0;
  for (size_t b; (b = line.find(' ', a)) != std::string_view::npos; a = b + 1) f.push_back(line.substr(a, b - a));
  f.push_back(line.substr(a));
  return f;
}

std::string_view trim_ascii(std::string_view s) {  // bytes.strip()
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

double parse_double(std::string_view s, std::string_view what, int line) {
  const std::string z(s);
  char* end = nullptr;
  const double v = std::strtod(z.c_str(), &end);  // exact for the repr strings the file holds
  if (z.empty() || *end != '\0') throw Error("{} line {}: '{}' is not a number", what, line, z);
  return v;
}

}  // namespace

bool py_isspace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

Jieba::Jieba(std::string_view dict_txt, std::string_view hmm_txt, std::string_view what) {
  // gen_pfdict: every word with its frequency, every prefix of a word with 0 unless listed.
  int lineno = 0;
  for (size_t a = 0; a < dict_txt.size();) {
    size_t b = dict_txt.find('\n', a);
    if (b == std::string_view::npos) b = dict_txt.size();
    const std::string_view line = trim_ascii(dict_txt.substr(a, b - a));
    a = b + 1;
    ++lineno;
    const auto f = split_fields(line);
    int64_t v = 0;
    if (f.size() < 2 || std::from_chars(f[1].data(), f[1].data() + f[1].size(), v).ptr != f[1].data() + f[1].size())
      throw Error("{} dict.txt line {}: expected 'word frequency [tag]'", what, lineno);
    const std::u32string w = decode(f[0]);
    freq_[w] = v;
    total_ += v;
    for (size_t n = 1; n < w.size(); ++n) freq_.try_emplace(w.substr(0, n), 0);
  }
  for (auto& row : trans_)
    for (double& p : row) p = kMinFloat;
  for (double& p : start_) p = kMinFloat;
  lineno = 0;
  for (size_t a = 0; a < hmm_txt.size();) {
    size_t b = hmm_txt.find('\n', a);
    if (b == std::string_view::npos) b = hmm_txt.size();
    const std::string_view line = hmm_txt.substr(a, b - a);
    a = b + 1;
    ++lineno;
    if (line.empty()) continue;
    const auto f = split_fields(line);
    const int s = f.size() >= 2 ? state_index(f[1]) : -1;
    if (f[0] == "start" && f.size() == 3 && s >= 0) {
      start_[s] = parse_double(f[2], what, lineno);
    } else if (f[0] == "trans" && f.size() == 4 && s >= 0 && state_index(f[2]) >= 0) {
      trans_[s][state_index(f[2])] = parse_double(f[3], what, lineno);
    } else if (f[0] == "emit" && f.size() == 4 && s >= 0) {
      uint32_t cp = 0;
      if (std::from_chars(f[2].data(), f[2].data() + f[2].size(), cp, 16).ptr != f[2].data() + f[2].size())
        throw Error("{} hmm_model.txt line {}: bad code point '{}'", what, lineno, f[2]);
      emit_[s][static_cast<char32_t>(cp)] = parse_double(f[3], what, lineno);
    } else {
      throw Error("{} hmm_model.txt line {}: expected start/trans/emit", what, lineno);
    }
  }
  if (total_ <= 0) throw Error("{}: the dictionary is empty", what);
}

const Jieba& Jieba::builtin() {
  static const Jieba j(jieba_dict_txt(), jieba_hmm_txt(), "the bundled jieba data");
  return j;
}

const int64_t* Jieba::freq(std::u32string_view w) const {
  const auto it = freq_.find(w);
  return it == freq_.end() ? nullptr : &it->second;
}

// __cut_DAG: get_DAG, calc (max-probability route from the end), then buffered single
// characters through the HMM unless they form one dictionary word.
void Jieba::cut_dag(std::u32string_view s, std::vector<std::u32string>& out) const {
  const size_t N = s.size();
  std::vector<std::vector<size_t>> dag(N);  // dag[k]: ends x of dictionary words s[k..x]
  for (size_t k = 0; k < N; ++k) {
    for (size_t i = k; i < N; ++i) {
      const int64_t* f = freq(s.substr(k, i - k + 1));
      if (!f) break;
      if (*f) dag[k].push_back(i);
    }
    if (dag[k].empty()) dag[k].push_back(k);
  }
  std::vector<std::pair<double, size_t>> route(N + 1, {0.0, 0});
  const double logtotal = std::log(static_cast<double>(total_));
  for (size_t idx = N; idx-- > 0;) {
    bool first = true;
    for (size_t x : dag[idx]) {
      const int64_t* f = freq(s.substr(idx, x - idx + 1));
      const double p = std::log(static_cast<double>(f && *f ? *f : 1)) - logtotal + route[x + 1].first;
      const std::pair<double, size_t> cand{p, x};
      if (first || cand > route[idx]) route[idx] = cand;  // Python max over (p, x) tuples
      first = false;
    }
  }
  std::u32string buf;
  auto flush = [&] {
    if (buf.empty()) return;
    if (buf.size() == 1) {
      out.push_back(buf);
    } else if (const int64_t* f = freq(buf); !f || *f == 0) {
      cut_unknown(buf, out);
    } else {
      for (char32_t c : buf) out.emplace_back(1, c);
    }
    buf.clear();
  };
  for (size_t x = 0; x < N;) {
    const size_t y = route[x].second + 1;
    if (y - x == 1) {
      buf += s[x];
    } else {
      flush();
      out.emplace_back(s.substr(x, y - x));
    }
    x = y;
  }
  flush();
}

// finalseg.cut: Chinese runs through the Viterbi; the rest split at [a-zA-Z0-9]+(\.\d+)?%?.
void Jieba::cut_unknown(std::u32string_view s, std::vector<std::u32string>& out) const {
  for (size_t i = 0; i < s.size();) {
    size_t j = i;
    if (is_han(s[i])) {
      while (j < s.size() && is_han(s[j])) ++j;
      viterbi_words(s.substr(i, j - i), out);
      i = j;
      continue;
    }
    while (j < s.size() && !is_han(s[j])) ++j;
    const std::u32string_view blk = s.substr(i, j - i);  // re_skip.split(blk), empty pieces dropped
    size_t a = 0, p = 0;
    while (p < blk.size()) {
      if (!is_ascii_alnum(blk[p])) {
        ++p;
        continue;
      }
      size_t e = p;
      while (e < blk.size() && is_ascii_alnum(blk[e])) ++e;
      if (e + 1 < blk.size() && blk[e] == '.' && blk[e + 1] >= '0' && blk[e + 1] <= '9') {
        e += 2;
        while (e < blk.size() && blk[e] >= '0' && blk[e] <= '9') ++e;
      }
      if (e < blk.size() && blk[e] == '%') ++e;
      if (p > a) out.emplace_back(blk.substr(a, p - a));
      out.emplace_back(blk.substr(p, e - p));
      a = p = e;
    }
    if (blk.size() > a) out.emplace_back(blk.substr(a));
    i = j;
  }
}

// finalseg.viterbi + __cut. Ties go as Python's max over (prob, state) tuples: to the larger
// state letter.
void Jieba::viterbi_words(std::u32string_view obs, std::vector<std::u32string>& out) const {
  const size_t T = obs.size();
  auto em = [&](int y, char32_t c) {
    const auto it = emit_[y].find(c);
    return it == emit_[y].end() ? kMinFloat : it->second;
  };
  std::vector<std::array<double, 4>> V(T);
  std::vector<std::array<int8_t, 4>> back(T);  // the chosen previous state
  for (int y = 0; y < 4; ++y) V[0][y] = start_[y] + em(y, obs[0]);
  for (size_t t = 1; t < T; ++t) {
    for (int y = 0; y < 4; ++y) {
      const double e = em(y, obs[t]);
      int best = -1;
      double bp = 0;
      for (int y0 : kPrev[y]) {
        const double p = V[t - 1][y0] + trans_[y0][y] + e;
        if (best < 0 || p > bp || (p == bp && kStates[y0] > kStates[best])) best = y0, bp = p;
      }
      V[t][y] = bp;
      back[t][y] = static_cast<int8_t>(best);
    }
  }
  // The last state: E or S (larger prob; a tie goes to S).
  int state = V[T - 1][3] >= V[T - 1][2] ? 3 : 2;
  std::vector<int> path(T);
  for (size_t t = T; t-- > 0;) {
    path[t] = state;
    if (t > 0) state = back[t][state];
  }
  size_t begin = 0, next = 0;
  for (size_t i = 0; i < T; ++i) {
    const char pos = kStates[path[i]];
    if (pos == 'B') {
      begin = i;
    } else if (pos == 'E') {
      out.emplace_back(obs.substr(begin, i + 1 - begin));
      next = i + 1;
    } else if (pos == 'S') {
      out.emplace_back(1, obs[i]);
      next = i + 1;
    }
  }
  if (next < T) out.emplace_back(obs.substr(next));
}

std::vector<std::u32string> Jieba::cut32(const std::u32string& s) const {
  std::vector<std::u32string> out;
  for (size_t i = 0; i < s.size();) {
    size_t j = i;
    if (in_han_run(s[i])) {
      while (j < s.size() && in_han_run(s[j])) ++j;
      cut_dag(std::u32string_view(s).substr(i, j - i), out);
    } else {
      while (j < s.size() && !in_han_run(s[j])) ++j;
      for (size_t k = i; k < j; ++k) {  // re_skip (\r\n|\s) pieces and single characters
        if (s[k] == '\r' && k + 1 < j && s[k + 1] == '\n') {
          out.push_back(U"\r\n");
          ++k;
        } else {
          out.emplace_back(1, s[k]);
        }
      }
    }
    i = j;
  }
  return out;
}

std::vector<std::string> Jieba::cut(std::string_view text) const {
  std::vector<std::string> out;
  for (const auto& w : cut32(decode(text))) {
    std::string u;
    for (char32_t c : w) append_utf8(u, c);
    out.push_back(std::move(u));
  }
  return out;
}

}  // namespace lorafit::tok
