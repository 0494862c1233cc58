// Limits of the template engine. A chat template comes from a downloaded
// tokenizer_config.json, so it is untrusted input: every construct that could recurse, loop
// or allocate without bound stops at one of these with a message naming the limit.
// Real chat templates stay far below each (they nest < 10 levels, loop over the messages).
#pragma once
#include <cstddef>
#include <cstdint>

namespace lorafit::jinja {

inline constexpr int kMaxNesting = 100;          // parser: tags inside tags, expression height
inline constexpr int kMaxCallDepth = 100;        // macro calls inside macro calls
inline constexpr int kMaxEvalDepth = 500;        // expression evaluation, across macro calls
inline constexpr int kMaxValueDepth = 256;       // lists/dicts inside lists/dicts when printed or compared
inline constexpr size_t kMaxStringBytes = 64u << 20;    // one string value or the rendered output
inline constexpr size_t kMaxListItems = 1000000;        // one list, `range(...)` included
inline constexpr int64_t kMaxLoopIterations = 1000000;  // all `for` iterations of one render
inline constexpr int kMaxJsonIndent = 64;               // `tojson(indent=...)`
inline constexpr size_t kMaxSourceBytes = 4u << 20;     // template source

}  // namespace lorafit::jinja
