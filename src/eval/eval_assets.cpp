// LORAFIT_DISC_EVAL_DIR is set by CMakeLists.txt, which also makes this file depend on the data.
#include "eval/eval_assets.h"

#include "util/incbin.h"

LF_INCBIN(lorafit_few_shot_sing, LORAFIT_DISC_EVAL_DIR "/few_shot/mcq_sing_examples.csv");
LF_INCBIN(lorafit_few_shot_mult, LORAFIT_DISC_EVAL_DIR "/few_shot/mcq_mult_examples.csv");

namespace lorafit::eval {

std::string_view few_shot_sing_csv() { return lf_incbin_view(lorafit_few_shot_sing_begin, lorafit_few_shot_sing_end); }
std::string_view few_shot_mult_csv() { return lf_incbin_view(lorafit_few_shot_mult_begin, lorafit_few_shot_mult_end); }

}  // namespace lorafit::eval
