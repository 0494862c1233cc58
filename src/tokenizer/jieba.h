// Chinese word segmentation exactly as jieba 0.42.1's jieba.cut(text) (accurate mode, HMM on),
// the segmenter ROUGE over Chinese text is computed with (rouge_chinese, LLaMA-Factory):
//   1. split the text into runs of [\u4E00-\u9FD5a-zA-Z0-9+#&._%-] and the rest; outside the
//      runs each whitespace piece ("\r\n" or one \s) is a word, every other character too;
//   2. inside a run: the DAG of dictionary words starting at each character (prefix dict), the
//      route of maximal Σ log(freq/total) (ties: the longer word), and
//   3. single characters the route leaves consecutive: one dictionary word → split into
//      characters, otherwise the HMM (B/M/E/S Viterbi, jieba.finalseg) finds the words.
// Bundled data: third_party/jieba/ (jieba's MIT dictionary and HMM tables), in the binary.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lorafit::tok {

// Python's str.isspace() (= re's \s on str patterns): what jieba and rouge_chinese treat as
// whitespace. Wider than Unicode White_Space (it includes U+001C..U+001F).
bool py_isspace(char32_t c);

class Jieba {
 public:
  // `dict_txt`: jieba's dict.txt ("word freq [tag]" lines); `hmm_txt`: third_party/jieba/
  // hmm_model.txt. `what` names the data in errors.
  Jieba(std::string_view dict_txt, std::string_view hmm_txt, std::string_view what);
  static const Jieba& builtin();  // the bundled data, parsed once on first use

  // jieba.cut(text) as UTF-8 words (their concatenation is the text; invalid UTF-8 bytes are
  // read as U+FFFD first, as a Python str could not hold them).
  std::vector<std::string> cut(std::string_view text) const;
  std::vector<std::u32string> cut32(const std::u32string& text) const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::u32string_view s) const { return std::hash<std::u32string_view>{}(s); }
  };
  using FreqMap = std::unordered_map<std::u32string, int64_t, Hash, std::equal_to<>>;

  void cut_dag(std::u32string_view run, std::vector<std::u32string>& out) const;      // step 2
  void cut_unknown(std::u32string_view buf, std::vector<std::u32string>& out) const;  // finalseg.cut
  void viterbi_words(std::u32string_view han, std::vector<std::u32string>& out) const;
  const int64_t* freq(std::u32string_view w) const;  // null: not even a prefix

  FreqMap freq_;  // word (or word prefix, freq 0) → frequency
  int64_t total_ = 0;
  // HMM, states in the order B M E S; log probabilities, kMinFloat where jieba has none.
  double start_[4];
  double trans_[4][4];
  std::unordered_map<char32_t, double> emit_[4];
};

}  // namespace lorafit::tok
