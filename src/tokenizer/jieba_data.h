// jieba's dictionary and HMM tables (third_party/jieba/, MIT), linked into the binary by
// jieba_data.cpp so `lorafit eval` works from any directory.
#pragma once
#include <string_view>

namespace lorafit::tok {

std::string_view jieba_dict_txt();  // third_party/jieba/dict.txt
std::string_view jieba_hmm_txt();   // third_party/jieba/hmm_model.txt

}  // namespace lorafit::tok
