// LORAFIT_JIEBA_DIR is set by CMakeLists.txt, which also makes this file depend on the data.
#include "tokenizer/jieba_data.h"

#include "util/incbin.h"

#ifndef LORAFIT_JIEBA_DIR
#error "LORAFIT_JIEBA_DIR must name third_party/jieba"
#endif

LF_INCBIN(lorafit_jieba_dict, LORAFIT_JIEBA_DIR "/dict.txt");
LF_INCBIN(lorafit_jieba_hmm, LORAFIT_JIEBA_DIR "/hmm_model.txt");

namespace lorafit::tok {

std::string_view jieba_dict_txt() { return lf_incbin_view(lorafit_jieba_dict_begin, lorafit_jieba_dict_end); }
std::string_view jieba_hmm_txt() { return lf_incbin_view(lorafit_jieba_hmm_begin, lorafit_jieba_hmm_end); }

}  // namespace lorafit::tok
