// The model of `lorafit demo`: a tiny Qwen2-architecture model with RANDOM weights (it knows
// nothing; it only lets the whole pipeline run in minutes on a laptop CPU) and the real
// Qwen2.5 tokenizer and chat template, created deterministically as a real Hugging Face
// folder (config.json, model.safetensors, tokenizer files) that transformers also loads.
// Shape: hidden 64, 2 layers, 4 heads, 2 kv heads, ffn 172, vocab 151936, tied embeddings
// (the lm head dominates the cost: V·C = 9.7M multiply-adds per token).
#pragma once
#include <cstdint>

#include "util/file.h"

namespace lorafit {

// Where the demo model lives: $XDG_CACHE_HOME/lorafit/demo-model, else ~/.cache/lorafit/demo-model.
fs::path default_demo_model_dir();

// Creates the folder at `dir` from `tokenizer_dir` (Qwen2.5's tokenizer.json and
// tokenizer_config.json) unless a complete one is already there; returns true when created.
// Written to dir.tmp and renamed, so an interrupted creation is redone next time.
bool ensure_demo_model(const fs::path& dir, const fs::path& tokenizer_dir, uint64_t seed = 1234);

}  // namespace lorafit
