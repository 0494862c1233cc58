// The official DISC-Law-Eval few-shot examples (third_party/disc-law-eval/few_shot/, Apache-2.0),
// linked into the binary.
#pragma once
#include <string_view>

namespace lorafit::eval {

std::string_view few_shot_sing_csv();  // mcq_sing_examples.csv
std::string_view few_shot_mult_csv();  // mcq_mult_examples.csv

}  // namespace lorafit::eval
