#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "formats/json_util.h"
#include "backend/backend.h"
#include "export/gguf_arch.h"
#include "export/gguf_export.h"
#include "formats/model_config.h"
#include "formats/safetensors.h"
#include "generate/adapter.h"
#include "lora/lora_merge.h"
#include "util/error.h"

namespace lorafit {

namespace {

using json = nlohmann::json;

GgmlType ggml_of(GgufOutType t) {
  switch (t) {
    case GgufOutType::F32: return GgmlType::F32;
    case GgufOutType::F16: return GgmlType::F16;
    case GgufOutType::BF16: return GgmlType::BF16;
    case GgufOutType::Q8_0: return GgmlType::Q8_0;
  }
  return GgmlType::F32;
}

// gguf.LlamaFileType
uint32_t file_type_of(GgufOutType t) {
  switch (t) {
    case GgufOutType::F32: return 0;   // ALL_F32
    case GgufOutType::F16: return 1;   // MOSTLY_F16
    case GgufOutType::BF16: return 32; // MOSTLY_BF16
    case GgufOutType::Q8_0: return 7;  // MOSTLY_Q8_0
  }
  return 0;
}

// The converter's find_hparam: present in config.json (a number).
std::optional<double> hparam(const json& c, const char* key) {
  const auto it = c.find(key);
  if (it == c.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

// The rope object and theta as transformers 4 (rope_scaling, rope_theta) or 5 (rope_parameters
// holding both) spells them; parse_model_config has already refused the two disagreeing.
json rope_object(const json& c) {
  for (const char* k : {"rope_scaling", "rope_parameters"})
    if (c.contains(k) && c[k].is_object()) return c[k];
  return json::object();
}
std::optional<double> rope_theta(const json& c) {
  if (auto v = hparam(c, "rope_theta")) return v;
  return c.contains("rope_parameters") && c["rope_parameters"].is_object() ? hparam(c["rope_parameters"], "rope_theta")
                                                                           : std::nullopt;
}

// TextModel.set_gguf_parameters (+ LlamaModel's vocab_size and rope dimension count).
void add_hparams(GgufMetadata& kv, const GgufArch& a, const json& c, const ModelConfig& cfg, GgufOutType out) {
  const std::string p = a.name + ".";
  kv.set_u32(p + "block_count", static_cast<uint32_t>(cfg.num_layers));
  if (auto v = hparam(c, "max_position_embeddings")) kv.set_u32(p + "context_length", static_cast<uint32_t>(*v));
  if (auto v = hparam(c, "hidden_size")) kv.set_u32(p + "embedding_length", static_cast<uint32_t>(*v));
  if (auto v = hparam(c, "intermediate_size")) kv.set_u32(p + "feed_forward_length", static_cast<uint32_t>(*v));
  if (auto v = hparam(c, "num_attention_heads")) kv.set_u32(p + "attention.head_count", static_cast<uint32_t>(*v));
  if (auto v = hparam(c, "num_key_value_heads")) kv.set_u32(p + "attention.head_count_kv", static_cast<uint32_t>(*v));
  const json rope = rope_object(c);
  std::string rope_type = rope.value("rope_type", rope.value("type", ""));
  if (rope_type == "linear" && rope.contains("factor")) {
    kv.set_string(p + "rope.scaling.type", "linear");
    kv.set_f32(p + "rope.scaling.factor", rope["factor"].get<float>());
  } else if (rope_type == "yarn" && rope.contains("factor")) {
    kv.set_string(p + "rope.scaling.type", "yarn");
    kv.set_f32(p + "rope.scaling.factor", rope["factor"].get<float>());
    kv.set_u32(p + "rope.scaling.original_context_length", rope["original_max_position_embeddings"].get<uint32_t>());
    if (rope.contains("extrapolation_factor")) kv.set_f32(p + "rope.scaling.yarn_ext_factor", rope["extrapolation_factor"].get<float>());
    const char* af = rope.contains("attention_factor") ? "attention_factor" : "attn_factor";
    if (rope.contains(af)) kv.set_f32(p + "rope.scaling.yarn_attn_factor", rope[af].get<float>());
    if (rope.contains("beta_fast")) kv.set_f32(p + "rope.scaling.yarn_beta_fast", rope["beta_fast"].get<float>());
    if (rope.contains("beta_slow")) kv.set_f32(p + "rope.scaling.yarn_beta_slow", rope["beta_slow"].get<float>());
  } else if (!rope_type.empty() && rope_type != "llama3" && rope_type != "default") {
    throw Error("config.json: rope_scaling type \"{}\" has no GGUF export in lorafit", rope_type);
  }
  if (auto v = rope_theta(c)) kv.set_f32(p + "rope.freq_base", static_cast<float>(*v));
  if (auto v = hparam(c, "rms_norm_eps")) kv.set_f32(p + "attention.layer_norm_rms_epsilon", static_cast<float>(*v));
  if (auto v = hparam(c, "head_dim")) {
    kv.set_u32(p + "attention.key_length", static_cast<uint32_t>(*v));
    kv.set_u32(p + "attention.value_length", static_cast<uint32_t>(*v));
  }
  kv.set_u32("general.file_type", file_type_of(out));
  if (a.permute_qk) {  // LlamaModel.set_gguf_parameters
    kv.set_u32(p + "vocab_size", static_cast<uint32_t>(cfg.vocab_size));
    kv.set_u32(p + "rope.dimension_count", static_cast<uint32_t>(cfg.head_dim));
  }
}

// LlamaModel.generate_extra_tensors: rope_freqs for rope_type "llama3" (Llama 3.1+).
std::vector<float> llama3_rope_factors(const json& c, const ModelConfig& cfg) {
  const json rope = rope_object(c);
  if (rope.value("rope_type", rope.value("type", "")) != "llama3") return {};
  const float base = static_cast<float>(rope_theta(c).value_or(10000.0));
  const int dim = cfg.head_dim;
  const double factor = rope.value("factor", 8.0), lo = rope.value("low_freq_factor", 1.0),
               hi = rope.value("high_freq_factor", 4.0), old_ctx = rope.value("original_max_position_embeddings", 8192.0);
  const double lo_wav = old_ctx / lo, hi_wav = old_ctx / hi;
  std::vector<float> out;
  for (int i = 0; i < dim; i += 2) {
    // torch: 1.0 / (base ** (arange(0, dim, 2, float32) / dim)) in float32
    const float freq = 1.0f / std::pow(base, static_cast<float>(i) / static_cast<float>(dim));
    const double wav = 2 * M_PI / freq;
    if (wav < hi_wav) out.push_back(1.f);
    else if (wav > lo_wav) out.push_back(static_cast<float>(factor));
    else {
      const double smooth = (old_ctx / wav - lo) / (hi - lo);
      out.push_back(static_cast<float>(1 / ((1 - smooth) / factor + smooth)));
    }
  }
  return out;
}

struct Planned {
  const TensorInfo* src = nullptr;  // null: generated (rope_freqs)
  std::string hf_name;
  int module = -1;   // adapted module to merge, or -1
  int heads = 0;     // permutation heads, 0 = none
};

void check_output(const GgufExportOptions& o) {
  if (o.output.empty()) throw Error("--output FILE.gguf is required");
  if (fs::exists(o.output) && !o.overwrite)
    throw Error("--output {} already exists; give --overwrite to replace it", o.output.string());
  if (fs::is_directory(o.output)) throw Error("--output {} is a folder; give a file name", o.output.string());
  const fs::path parent = o.output.parent_path().empty() ? fs::path(".") : o.output.parent_path();
  if (!fs::is_directory(parent)) throw Error("--output {}: folder {} does not exist", o.output.string(), parent.string());
}

}  // namespace

GgufOutType parse_gguf_outtype(const std::string& s) {
  if (s == "f32") return GgufOutType::F32;
  if (s == "f16") return GgufOutType::F16;
  if (s == "bf16") return GgufOutType::BF16;
  if (s == "q8_0") return GgufOutType::Q8_0;
  throw Error("--outtype {}: not implemented; choose f32, f16, bf16 or q8_0", s);
}

GgufOutType gguf_auto_outtype(const fs::path& model_dir) {
  const SafetensorsSet files(model_dir);
  std::vector<const TensorInfo*> order = files.all();
  std::stable_sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) { return a->file < b->file; });
  for (const TensorInfo* t : order) {
    if (t->shape.size() < 2) continue;
    if (t->dtype == DType::BF16) return GgufOutType::BF16;
    if (t->dtype == DType::F16) return GgufOutType::F16;
  }
  return GgufOutType::F16;
}

std::string gguf_title_from_id(const std::string& id) {
  std::string s = id;
  std::replace(s.begin(), s.end(), '-', ' ');
  static const std::regex keep(R"(^(v\d+(?:\.\d+)*|\d.*)$)");
  std::string out, word;
  auto flush = [&] {
    if (word.empty()) return;
    const bool lower = std::any_of(word.begin(), word.end(), [](char c) { return std::islower(static_cast<unsigned char>(c)); }) &&
                       !std::any_of(word.begin(), word.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)); });
    if (lower && !std::regex_match(word, keep)) {  // str.title(): capitalise after each non-letter
      bool prev_alpha = false;
      for (char& c : word) {
        const bool alpha = std::isalpha(static_cast<unsigned char>(c)) != 0;
        if (alpha) c = static_cast<char>(prev_alpha ? std::tolower(static_cast<unsigned char>(c)) : std::toupper(static_cast<unsigned char>(c)));
        prev_alpha = alpha;
      }
    }
    out += (out.empty() ? "" : " ") + word;
    word.clear();
  };
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) flush();
    else word += c;
  }
  flush();
  return out;
}

std::string gguf_size_label(uint64_t n) {
  double scaled;
  const char* suffix;
  if (n > 1e12) scaled = n * 1e-12, suffix = "T";
  else if (n > 1e9) scaled = n * 1e-9, suffix = "B";
  else if (n > 1e6) scaled = n * 1e-6, suffix = "M";
  else scaled = n * 1e-3, suffix = "K";
  // Python: fix = max(2 - len(str(round(x)).lstrip('0')), 0); f"{x:.{fix}f}"
  const std::string r = std::to_string(static_cast<long long>(std::nearbyint(scaled)));
  const size_t nz = r.find_first_not_of('0');
  const int digits = nz == std::string::npos ? 0 : static_cast<int>(r.size() - nz);
  const int fix = std::max(2 - digits, 0);
  return fmt::format("{:.{}f}{}", scaled, fix, suffix);
}

GgufExportResult export_gguf_model(const GgufExportOptions& o) {
  check_output(o);
  const fs::path config_file = o.model_dir / "config.json";
  if (!fs::exists(config_file)) throw Error("{}: no config.json; expected a Hugging Face model folder", o.model_dir.string());
  const ModelConfig cfg = load_model_config(config_file);
  refuse_4bit_checkpoint(cfg.bnb4, config_file.string(),
                         "lorafit export --format gguf converts 16/32-bit weights: pass the unquantized base folder "
                         "with --model");
  const GgufArch arch = gguf_arch_for(cfg, config_file.string());
  const json c = parse_json(read_file(config_file), config_file.string());
  const SafetensorsSet files(o.model_dir);
  auto be = make_backend("cpu");
  std::unique_ptr<LoraParams> lora;
  std::vector<float> host;
  std::map<std::string, int> adapted;  // HF weight name -> module
  if (!o.adapter_dir.empty()) {
    lora = load_adapter(*be, cfg, o.adapter_dir);
    host = lora->download_params();
    for (size_t k = 0; k < lora->modules().size(); ++k) adapted[lora->modules()[k].name + ".weight"] = static_cast<int>(k);
  }

  GgufExportResult res;
  res.arch = arch.name;
  res.merged_modules = static_cast<int>(adapted.size());
  // The files the run trained with: the adapter folder's tokenizer when it has one.
  res.tokenizer_dir = !o.adapter_dir.empty() && fs::exists(o.adapter_dir / "tokenizer.json") ? o.adapter_dir : o.model_dir;

  // Plan every tensor (names, types) before anything is written.
  const GgmlType want = ggml_of(o.outtype);
  std::vector<Planned> plan;
  std::vector<GgufTensor> tensors;
  const std::vector<float> rope_freqs = llama3_rope_factors(c, cfg);
  if (!rope_freqs.empty()) {
    plan.push_back({nullptr, "rope_freqs", -1, 0});
    tensors.push_back({"rope_freqs.weight", {static_cast<int64_t>(rope_freqs.size())}, GgmlType::F32});
  }
  std::vector<const TensorInfo*> order = files.all();
  std::stable_sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) { return a->file < b->file; });
  uint64_t params = 0;
  for (const TensorInfo* t : order) {
    const std::optional<std::string> name = gguf_tensor_name(t->name, t->file);
    if (!name) continue;
    if (t->dtype != DType::F32 && t->dtype != DType::BF16 && t->dtype != DType::F16)
      throw Error("{}: tensor {} has dtype {}; GGUF export reads F32, BF16 or F16", t->file, t->name, dtype_name(t->dtype));
    if (t->shape.empty() || t->shape.size() > 2)
      throw Error("{}: tensor {} has {} dimensions; expected 1 or 2", t->file, t->name, t->shape.size());
    GgufTensor g;
    g.name = *name;
    g.dims.assign(t->shape.rbegin(), t->shape.rend());
    bool fell = false;
    g.type = gguf_tensor_type(g.name, static_cast<int>(g.dims.size()), g.dims[0], want, &fell);
    res.fallback_f16 += fell;
    int64_t n = 1;
    for (int64_t d : g.dims) n *= d;
    params += static_cast<uint64_t>(n);
    const auto ad = adapted.find(t->name);
    plan.push_back({t, t->name, ad == adapted.end() ? -1 : ad->second, gguf_permute_heads(arch, t->name)});
    tensors.push_back(std::move(g));
  }
  params += rope_freqs.size();

  GgufMetadata kv;
  kv.set_string("general.architecture", arch.name);
  kv.set_string("general.type", "model");
  kv.set_string("general.name", gguf_title_from_id(fs::absolute(o.model_dir).lexically_normal().filename().string()));
  if (params > 0) kv.set_string("general.size_label", gguf_size_label(params));
  add_hparams(kv, arch, c, cfg, o.outtype);
  kv.set_u32("general.quantization_version", 2);  // GGML_QUANT_VERSION
  res.vocab = add_gguf_vocab(kv, res.tokenizer_dir, config_file, arch.permute_qk);

  res.tensors = static_cast<int>(tensors.size());
  for (const GgufTensor& t : tensors) res.bytes += t.nbytes();
  gguf_write(
      o.output, kv, tensors,
      [&](size_t k, const GgufSink& out) {
        const Planned& p = plan[k];
        const GgufTensor& g = tensors[k];
        if (!p.src) {  // rope_freqs
          out(rope_freqs.data(), rope_freqs.size() * sizeof(float));
          return;
        }
        const int64_t row = g.dims[0], rows = g.dims.size() > 1 ? g.dims[1] : 1;
        std::vector<uint8_t> merged;
        const uint8_t* src = p.src->data;
        if (p.module >= 0) {
          merged = merged_weight(*be, *p.src, *lora, host, p.module);
          src = merged.data();
        }
        const size_t esz = dtype_size(p.src->dtype);
        // Rows in chunks (whole tensor when permuted: heads are reordered across rows).
        const int64_t chunk = p.heads ? rows : std::max<int64_t>(1, (int64_t{16} << 20) / std::max<int64_t>(row, 1));
        std::vector<float> f;      // (chunk, row) fp32
        std::vector<uint8_t> enc;  // encoded chunk
        for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
          const int64_t nr = std::min(chunk, rows - r0);
          f.resize(static_cast<size_t>(nr * row));
          convert_to_f32(f.data(), src + static_cast<size_t>(r0 * row) * esz, p.src->dtype, f.size());
          if (p.heads && g.dims.size() == 1) gguf_permute_rows(f.data(), row, 1, p.heads);  // a bias
          else if (p.heads) gguf_permute_rows(f.data(), rows, row, p.heads);
          enc.resize(ggml_nbytes(g.type, nr * row));
          ggml_encode(g.type, f.data(), nr * row, enc.data());
          out(enc.data(), enc.size());
        }
      },
      o.progress);
  return res;
}

}  // namespace lorafit
