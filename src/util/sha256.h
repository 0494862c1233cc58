// SHA-256 (FIPS 180-4), for identifying content by hash (e.g. llama.cpp's pre-tokenizer check).
#pragma once
#include <string>
#include <string_view>

namespace lorafit {

std::string sha256_hex(std::string_view data);  // 64 lowercase hex digits

}  // namespace lorafit
