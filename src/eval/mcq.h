// DISC-Law-Eval multiple choice exactly as its official code (FudanDISC/DISC-LawLLM, commit
// f40d023488b4deb5eb369c85d4e9e8ebcde35c95, eval/src/models.py BaseModel.mcq_formatter and
// eval/src/eval.py McqRegexEvaluator): the few-shot prompt, the answer-extraction cascade and
// the exact set match. docs/eval.md describes each step.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace lorafit::eval {

struct FewShot {
  std::string question;  // the example's input (question and its options)
  std::string answer;    // the example's output ("B.裁定不予受理")
};
// The official eval/src/few_shot/mcq_{sing,mult}_examples.csv (9 each), bundled in the binary.
const std::vector<FewShot>& official_few_shot(bool multi);

// mcq_formatter(multi, n_shot).format(question, options): the instruction, n_shot examples,
// then "问题：{question}\n{options}\n答案：". `options` is "A. ..\nB. ..\nC. ..\nD. .." (the
// official layout; "" when the question already ends with them); throws Error when n_shot
// exceeds the 9 examples.
std::string mcq_prompt(std::string_view question, std::string_view options, bool multi, int n_shot);

// McqRegexEvaluator._extract_answer: responses under 10 characters whole; else the first
// match of its _pats1 in order (group 1, stripped); else every "A." / "B．" joined; else all
// matches of the first matching _pats2 joined; else the response itself.
std::string extract_answer(std::string_view response);
// The letters A-D of an extracted answer, sorted, without repeats ("" when none).
std::string answer_letters(std::string_view extracted);
// _get_score / 100: set(reference) == the set of A-D letters in the extracted answer. Every
// character of the reference counts (as in the official set(gt)).
bool mcq_correct(std::string_view reference, std::string_view extracted);

}  // namespace lorafit::eval
