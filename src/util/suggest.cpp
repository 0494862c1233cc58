#include "util/suggest.h"

#include <algorithm>
#include <cctype>

namespace lorafit {

// Optimal string alignment: Levenshtein plus the swap of two neighbours ("trian" → "train"
// is one edit, the commonest typo).
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> pp(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);  // (|b|+1) DP rows i-2, i-1, i
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) cur[j] = std::min(cur[j], pp[j - 2] + 1);
    }
    std::swap(pp, prev);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string snake_case(std::string_view name) {
  std::string s(name);
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

namespace {

std::string lower_snake(std::string_view s) {
  std::string l = snake_case(s);
  for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return l;
}

std::string initials(std::string_view name) {  // "learning_rate" → "lr"
  std::string r;
  for (size_t i = 0; i < name.size(); ++i)
    if (name[i] != '_' && (i == 0 || name[i - 1] == '_' || name[i - 1] == '.')) r += name[i];
  return r;
}

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> w;
  for (size_t a = 0; a <= s.size();) {
    const size_t b = std::min(s.find('_', a), s.size());
    if (b > a) w.push_back(s.substr(a, b - a));
    a = b + 1;
  }
  return w;
}

bool every_word_in(const std::string& typed, const std::string& name) {
  const std::vector<std::string> have = words(name);
  for (const std::string& w : words(typed))
    if (std::find(have.begin(), have.end(), w) == have.end()) return false;
  return true;
}

// A rank (lower is closer) when `name` is close to `typed`, else -1. Typos may cost about one
// edit per four characters: "lr" → "data" (4 edits of 2 letters) is not close.
int closeness(const std::string& typed, const std::string& name) {
  if (typed.empty()) return -1;
  const size_t d = edit_distance(typed, name);
  const size_t allowed = std::max<size_t>(1, typed.size() / 4);
  if (d <= allowed && d < typed.size()) return static_cast<int>(d);
  if (typed.size() >= 2 && name.find('_') != std::string::npos && initials(name) == typed) return 10;
  if (typed.size() >= 3 && name.starts_with(typed)) return 20;
  if (name.size() >= 4 && typed.starts_with(name)) return 25;  // lora_rnak → lora_r
  if (typed.size() >= 4 && name.find(typed) != std::string::npos) return 30;
  if (typed.find('_') != std::string::npos && every_word_in(typed, name)) return 40;  // max_tokens → max_new_tokens
  return -1;
}

}  // namespace

std::vector<std::string> close_names(std::string_view typed_in, const std::vector<std::string>& candidates,
                                     size_t max_n) {
  const std::string typed = lower_snake(typed_in);
  std::vector<std::pair<int, std::string>> hits;
  for (const std::string& c : candidates) {
    const int r = closeness(typed, lower_snake(c));
    if (r >= 0 && std::none_of(hits.begin(), hits.end(), [&](const auto& h) { return h.second == c; }))
      hits.emplace_back(r, c);
  }
  std::stable_sort(hits.begin(), hits.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (size_t i = 0; i < hits.size() && i < max_n; ++i) out.push_back(hits[i].second);
  return out;
}

std::string did_you_mean(std::string_view typed, const std::vector<std::string>& candidates,
                         std::string_view prefix, bool quoted) {
  const std::vector<std::string> c = close_names(typed, candidates);
  if (c.empty()) return "";
  std::string s = "; did you mean ";
  for (size_t i = 0; i < c.size(); ++i) {
    if (i) s += i + 1 == c.size() ? " or " : ", ";
    if (quoted) s += '"';
    s.append(prefix).append(c[i]);
    if (quoted) s += '"';
  }
  return s + "?";
}

}  // namespace lorafit
