#include "export/gguf_arch.h"

#include <cstring>
#include <regex>
#include <vector>

#include "util/error.h"

namespace lorafit {

GgufArch gguf_arch_for(const ModelConfig& cfg, const std::string& config_file) {
  GgufArch a;
  a.n_head = cfg.num_heads;
  a.n_kv = cfg.num_kv_heads;
  switch (cfg.family) {
    case ModelFamily::Qwen2: a.name = "qwen2"; break;
    case ModelFamily::Llama:
    case ModelFamily::Mistral:
      a.name = "llama";  // convert_hf_to_gguf's LlamaModel serves both
      a.permute_qk = true;
      break;
    default:
      throw Error("{}: model_type \"{}\" has no GGUF export in lorafit (qwen2, llama, mistral)", config_file,
                  cfg.model_type);
  }
  return a;
}

std::optional<std::string> gguf_tensor_name(const std::string& hf, const std::string& file) {
  static const std::pair<const char*, const char*> kTop[] = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"}};
  for (const auto& [from, to] : kTop)
    if (hf == from) return std::string(to);
  static const std::pair<const char*, const char*> kLayer[] = {
      {"input_layernorm", "attn_norm"},      {"post_attention_layernorm", "ffn_norm"},
      {"self_attn.q_proj", "attn_q"},        {"self_attn.k_proj", "attn_k"},
      {"self_attn.v_proj", "attn_v"},        {"self_attn.o_proj", "attn_output"},
      {"self_attn.q_norm", "attn_q_norm"},   {"self_attn.k_norm", "attn_k_norm"},
      {"mlp.gate_proj", "ffn_gate"},         {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"}};
  static const std::regex layer(R"(model\.layers\.(\d+)\.(.+)\.(weight|bias))");
  std::smatch m;
  if (hf.find("rotary_emb.inv_freq") != std::string::npos) return std::nullopt;
  if (std::regex_match(hf, m, layer))
    for (const auto& [from, to] : kLayer)
      if (m[2] == from) return "blk." + m[1].str() + "." + to + "." + m[3].str();
  throw Error("{}: tensor {} has no llama.cpp name (convert_hf_to_gguf: \"Can not map tensor\"); lorafit exports the "
              "tensors of plain Qwen2/Llama/Mistral causal LMs",
              file, hf);
}

int gguf_permute_heads(const GgufArch& a, const std::string& hf) {
  if (!a.permute_qk) return 0;
  auto ends = [&](const char* s) {
    const size_t n = std::strlen(s);
    return hf.size() >= n && hf.compare(hf.size() - n, n, s) == 0;
  };
  if (ends("q_proj.weight") || ends("q_proj.bias")) return a.n_head;
  if (ends("k_proj.weight") || ends("k_proj.bias")) return a.n_head != a.n_kv ? a.n_kv : a.n_head;
  return 0;
}

void gguf_permute_rows(float* w, int64_t O, int64_t I, int heads) {
  LF_CHECK(heads > 0 && O % (2 * heads) == 0, "permute {} rows into {} heads", O, heads);
  const int64_t D = O / heads, half = D / 2;
  std::vector<float> tmp(static_cast<size_t>(D * I));  // (D, I) one head
  for (int64_t h = 0; h < heads; ++h) {
    float* blk = w + h * D * I;
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t b = 0; b < half; ++b)
        std::memcpy(tmp.data() + (2 * b + a) * I, blk + (a * half + b) * I, static_cast<size_t>(I) * sizeof(float));
    std::memcpy(blk, tmp.data(), tmp.size() * sizeof(float));
  }
}

GgmlType gguf_tensor_type(const std::string& name, int n_dims, int64_t row, GgmlType want, bool* fell_back) {
  *fell_back = false;
  auto ends = [&](const char* s) {
    const size_t n = std::strlen(s);
    return name.size() >= n && name.compare(name.size() - n, n, s) == 0;
  };
  if (n_dims <= 1 || ends("_norm.weight")) return GgmlType::F32;
  if (!ends(".weight") && !ends(".lora_a") && !ends(".lora_b")) return GgmlType::F32;
  if (want == GgmlType::Q8_0 && row % kQ8_0Block != 0) {
    *fell_back = true;
    return GgmlType::F16;
  }
  return want;
}

}  // namespace lorafit
