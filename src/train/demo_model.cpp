#include "train/demo_model.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/safetensors.h"
#include "util/error.h"
#include "util/rng.h"

namespace lorafit {

namespace {

constexpr int kV = 151936, kC = 64, kL = 2, kH = 4, kHkv = 2, kD = 16, kF = 172;

// Deterministic N(0, std²) from splitmix64 + Box–Muller (the same on every platform).
struct Normal {
  uint64_t s;
  double next_u() {
    const uint64_t z = splitmix64_next(s);
    return (static_cast<double>(z >> 11) + 0.5) * (1.0 / 9007199254740992.0);  // (0, 1)
  }
  float operator()(double stddev) {
    const double u1 = next_u(), u2 = next_u();
    return static_cast<float>(stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
};

std::string config_json() {
  nlohmann::ordered_json j{{"architectures", {"Qwen2ForCausalLM"}},
                           {"model_type", "qwen2"},
                           {"vocab_size", kV},
                           {"hidden_size", kC},
                           {"intermediate_size", kF},
                           {"num_hidden_layers", kL},
                           {"num_attention_heads", kH},
                           {"num_key_value_heads", kHkv},
                           {"hidden_act", "silu"},
                           {"max_position_embeddings", 32768},
                           {"rms_norm_eps", 1e-6},
                           {"rope_theta", 1000000.0},
                           {"tie_word_embeddings", true},
                           {"attention_dropout", 0.0},
                           {"use_sliding_window", false},
                           {"sliding_window", nullptr},
                           {"max_window_layers", kL},
                           {"bos_token_id", 151643},
                           {"eos_token_id", 151645},
                           {"torch_dtype", "float32"},
                           {"initializer_range", 0.02},
                           {"use_cache", true},
                           {"lorafit_note", "lorafit demo model: random weights (seeded), real Qwen2.5 tokenizer"}};
  return j.dump(2) + "\n";
}

}  // namespace

fs::path default_demo_model_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "lorafit" / "demo-model";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "lorafit" / "demo-model";
  return fs::temp_directory_path() / "lorafit-demo-model";
}

bool ensure_demo_model(const fs::path& dir, const fs::path& tokenizer_dir, uint64_t seed) {
  if (fs::exists(dir / "model.safetensors") && fs::exists(dir / "config.json") && fs::exists(dir / "tokenizer.json"))
    return false;
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    if (!fs::exists(tokenizer_dir / f))
      throw Error("{}: missing {}; the demo needs the Qwen2.5 tokenizer files of the source tree "
                  "(tests/data/qwen-tokenizer/qwen2.5)",
                  tokenizer_dir.string(), f);
  fs::path tmp = dir;
  tmp += ".tmp";
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  // Tensors in a fixed order, each filled from the one generator: N(0, 0.02) like
  // transformers' _init_weights, norms 1, biases 0.
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> t;
  Normal rng{seed};
  auto normal = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = rng(0.02);
    t[name] = {std::move(shape), std::move(v)};
  };
  auto fill = [&](const std::string& name, int64_t n, float value) {
    t[name] = {{n}, std::vector<float>(static_cast<size_t>(n), value)};
  };
  normal("model.embed_tokens.weight", {kV, kC});
  for (int i = 0; i < kL; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    fill(p + "input_layernorm.weight", kC, 1.0f);
    fill(p + "post_attention_layernorm.weight", kC, 1.0f);
    normal(p + "self_attn.q_proj.weight", {kH * kD, kC});
    normal(p + "self_attn.k_proj.weight", {kHkv * kD, kC});
    normal(p + "self_attn.v_proj.weight", {kHkv * kD, kC});
    fill(p + "self_attn.q_proj.bias", kH * kD, 0.0f);
    fill(p + "self_attn.k_proj.bias", kHkv * kD, 0.0f);
    fill(p + "self_attn.v_proj.bias", kHkv * kD, 0.0f);
    normal(p + "self_attn.o_proj.weight", {kC, kH * kD});
    normal(p + "mlp.gate_proj.weight", {kF, kC});
    normal(p + "mlp.up_proj.weight", {kF, kC});
    normal(p + "mlp.down_proj.weight", {kC, kF});
  }
  fill("model.norm.weight", kC, 1.0f);
  std::vector<TensorToWrite> w;
  for (const auto& [name, sv] : t)
    w.push_back({name, DType::F32, sv.first,
                 {reinterpret_cast<const uint8_t*>(sv.second.data()), sv.second.size() * sizeof(float)}});
  safetensors_save(tmp / "model.safetensors", w, {{"format", "pt"}});
  write_file_atomic(tmp / "config.json", config_json());
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"})
    if (fs::exists(tokenizer_dir / f)) write_file_atomic(tmp / f, read_file(tokenizer_dir / f));
  write_file_atomic(tmp / "generation_config.json",
                    "{\n  \"bos_token_id\": 151643,\n  \"do_sample\": false,\n  \"eos_token_id\": [151645, 151643],\n"
                    "  \"pad_token_id\": 151643\n}\n");
  write_file_atomic(tmp / "README.md",
                    "# lorafit demo model\n\nA tiny Qwen2-architecture model with RANDOM weights (seeded, "
                    "deterministic) and the real Qwen2.5 tokenizer and chat template. It knows nothing; it exists "
                    "so that `lorafit demo` runs the whole training pipeline in minutes on a CPU.\n");
  if (fs::exists(dir)) fs::remove_all(dir);
  fs::create_directories(dir.parent_path());
  fs::rename(tmp, dir);
  return true;
}

}  // namespace lorafit
