// QA scores as the field computes them (LLaMA-Factory's ComputeSimilarity, the
// predict_with_generate metrics):
//   ROUGE-1/2/L F1: rouge_chinese.Rouge().get_scores(" ".join(jieba.cut(prediction)),
//     " ".join(jieba.cut(reference))) — sentences cut at 。！？? …… ......, unique n-grams
//     (exclusive) for ROUGE-N, summary-level LCS for ROUGE-L; 0 when either side has no word;
//   BLEU-4: nltk sentence_bleu([list(reference)], list(prediction)) over characters, uniform
//     weights, SmoothingFunction().method3;
// each ×100 and rounded to 4 decimals per row, as LLaMA-Factory does, then averaged.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace lorafit::tok {
class Jieba;
}

namespace lorafit::eval {

struct QaScores {
  double rouge1 = 0, rouge2 = 0, rougel = 0, bleu4 = 0;  // ×100
};

// jieba-segmented words in, F1 scores in [0, 1] out (rouge_chinese.Rouge.get_scores()[0]["f"]).
struct RougeF {
  double r1 = 0, r2 = 0, rl = 0;
};
RougeF rouge_chinese(const std::u32string& hyp_joined, const std::u32string& ref_joined);
// nltk.translate.bleu_score.sentence_bleu with method3 smoothing, over code points, in [0, 1].
double bleu4_method3(const std::u32string& reference, const std::u32string& hypothesis);

QaScores qa_scores(std::string_view prediction, std::string_view reference, const tok::Jieba& jieba);

}  // namespace lorafit::eval
