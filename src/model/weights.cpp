#include "model/weights.h"

#include <algorithm>

#include <set>

#include "formats/bnb_checkpoint.h"
#include "lora/lora_config.h"
#include "util/error.h"

namespace lorafit {

namespace {

struct Dims {
  int64_t V, C, H, Hkv, D, F;
};
Dims dims_of(const ModelConfig& c) {
  return {c.vocab_size, c.hidden_size, c.num_heads, c.num_kv_heads, c.head_dim, c.intermediate_size};
}

// The parameters of one decoder layer: HF name suffix, where the view goes, shape, presence.
// The projections' names come from the one projection table (lora/lora_config.h).
struct LayerSpec {
  std::string suffix;
  Tensor LayerWeights::*member;
  std::vector<int64_t> (*shape)(const Dims&);
  bool (*present)(const ModelConfig&);
};
bool always(const ModelConfig&) { return true; }
bool qkv_bias(const ModelConfig& c) { return c.attention_bias; }
bool o_bias(const ModelConfig& c) { return c.o_bias; }
bool qk_norm(const ModelConfig& c) { return c.qk_norm; }

using Shape = std::vector<int64_t> (*)(const Dims&);
// The (out, in) shape of each projection's weight, in Proj order.
const Shape kProjShape[kNumProj] = {
    [](const Dims& d) { return std::vector{d.H * d.D, d.C}; },    // q
    [](const Dims& d) { return std::vector{d.Hkv * d.D, d.C}; },  // k
    [](const Dims& d) { return std::vector{d.Hkv * d.D, d.C}; },  // v
    [](const Dims& d) { return std::vector{d.C, d.H * d.D}; },    // o
    [](const Dims& d) { return std::vector{d.F, d.C}; },          // gate
    [](const Dims& d) { return std::vector{d.F, d.C}; },          // up
    [](const Dims& d) { return std::vector{d.C, d.F}; },          // down
};
Tensor LayerWeights::*const kProjMember[kNumProj] = {&LayerWeights::q,    &LayerWeights::k,  &LayerWeights::v,
                                                     &LayerWeights::o,    &LayerWeights::gate, &LayerWeights::up,
                                                     &LayerWeights::down};

const std::vector<LayerSpec>& layer_specs() {
  static const std::vector<LayerSpec> specs = [] {
    auto w = [](Proj p) { return proj_path(p) + ".weight"; };
    auto b = [](Proj p) { return proj_path(p) + ".bias"; };
    auto out = [](Proj p) -> Shape {  // the bias of projection p: (O)
      switch (p) {
        case Proj::Q: return [](const Dims& d) { return std::vector{d.H * d.D}; };
        case Proj::O: return [](const Dims& d) { return std::vector{d.C}; };
        default: return [](const Dims& d) { return std::vector{d.Hkv * d.D}; };
      }
    };
    const auto P = [](Proj p) { return static_cast<size_t>(p); };
    return std::vector<LayerSpec>{
        {"input_layernorm.weight", &LayerWeights::attn_norm, [](const Dims& d) { return std::vector{d.C}; }, always},
        {w(Proj::Q), kProjMember[P(Proj::Q)], kProjShape[P(Proj::Q)], always},
        {b(Proj::Q), &LayerWeights::q_bias, out(Proj::Q), qkv_bias},
        {w(Proj::K), kProjMember[P(Proj::K)], kProjShape[P(Proj::K)], always},
        {b(Proj::K), &LayerWeights::k_bias, out(Proj::K), qkv_bias},
        {w(Proj::V), kProjMember[P(Proj::V)], kProjShape[P(Proj::V)], always},
        {b(Proj::V), &LayerWeights::v_bias, out(Proj::V), qkv_bias},
        {w(Proj::O), kProjMember[P(Proj::O)], kProjShape[P(Proj::O)], always},
        {b(Proj::O), &LayerWeights::o_bias, out(Proj::O), o_bias},
        {"self_attn.q_norm.weight", &LayerWeights::q_norm, [](const Dims& d) { return std::vector{d.D}; }, qk_norm},
        {"self_attn.k_norm.weight", &LayerWeights::k_norm, [](const Dims& d) { return std::vector{d.D}; }, qk_norm},
        {"post_attention_layernorm.weight", &LayerWeights::mlp_norm, [](const Dims& d) { return std::vector{d.C}; },
         always},
        {w(Proj::Gate), kProjMember[P(Proj::Gate)], kProjShape[P(Proj::Gate)], always},
        {w(Proj::Up), kProjMember[P(Proj::Up)], kProjShape[P(Proj::Up)], always},
        {w(Proj::Down), kProjMember[P(Proj::Down)], kProjShape[P(Proj::Down)], always},
    };
  }();
  return specs;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// Tensors a checkpoint may carry that transformers ignores when loading.
bool ignored_extra(const std::string& name, const ModelConfig& cfg) {
  if (name == "lm_head.weight" && cfg.tie_word_embeddings) return true;  // tie_weights() replaces it
  const std::string inv = ".rotary_emb.inv_freq";                        // old checkpoints' buffers
  return name.size() > inv.size() && name.compare(name.size() - inv.size(), inv.size(), inv) == 0;
}

// "model.layers.0.self_attn.q_proj" of "model.layers.0.self_attn.q_proj.weight".
std::string module_of(const std::string& weight_name) { return weight_name.substr(0, weight_name.rfind('.')); }

// A module transformers keeps unquantized (a skip module, the lm head) stored as 4-bit codes
// anyway: transformers would fail on it (a packed (n/2, 1) tensor for an (O, I) Linear); lorafit
// names it. A 4-bit lm head (llm_int8_skip_modules without "lm_head") is not supported.
void refuse_4bit_kept_module(const SafetensorsSet& files, const std::string& weight, bool skip_list_given) {
  for (const char* t : {"nf4", "fp4"}) {
    const TensorInfo* qs = files.find(fmt::format("{}.quant_state.bitsandbytes__{}", weight, t));
    if (!qs) continue;
    if (weight == "lm_head.weight")
      throw Error("{}: tensor \"{}\" is stored as 4-bit ({}): {}lorafit keeps the lm head in 16/32 bits (transformers' "
                  "default) and cannot read a 4-bit one; quantize the model again with \"lm_head\" in "
                  "llm_int8_skip_modules",
                  qs->file, weight, t,
                  skip_list_given ? "config.json's llm_int8_skip_modules does not name \"lm_head\", so transformers "
                                    "quantized it; "
                                  : "");
    throw Error("{}: tensor \"{}\" is stored as 4-bit ({}), but config.json's quantization_config keeps this module "
                "unquantized (llm_int8_skip_modules); the file and the config disagree",
                qs->file, weight, t);
  }
}

Tensor make_tensor(void* data, DType t, const std::vector<int64_t>& s, Device dev) {
  Tensor x;
  x.data = data;
  x.dtype = t;
  x.device = dev;
  LF_CHECK(s.size() <= Tensor::kMaxDims);
  for (int64_t d : s) x.shape[x.ndim++] = d;
  return x;
}

}  // namespace

std::vector<ParamInfo> expected_params(const ModelConfig& cfg) {
  const Dims d = dims_of(cfg);
  std::vector<ParamInfo> p;
  p.push_back({"model.embed_tokens.weight", {d.V, d.C}, {}});
  p.push_back({"model.norm.weight", {d.C}, {}});
  if (!cfg.tie_word_embeddings) p.push_back({"lm_head.weight", {d.V, d.C}, {}});
  for (int i = 0; i < cfg.num_layers; ++i)
    for (const auto& s : layer_specs())
      if (s.present(cfg)) p.push_back({fmt::format("model.layers.{}.{}", i, s.suffix), s.shape(d), {}});
  return p;
}

ModelWeights::ModelWeights(Backend& be, const ModelConfig& cfg, const fs::path& dir, const QuantConfig& quant,
                           DType dequant)
    : be_(be) {
  for (const auto& s : layer_specs()) per_layer_ += s.present(cfg) ? 1 : 0;
  files_ = std::make_unique<SafetensorsSet>(dir);
  const fs::path single = dir / "model.safetensors";
  const std::string where = fs::is_directory(dir) ? (fs::exists(single) ? single : dir / "model.safetensors.index.json").string()
                                                  : dir.string();
  params_ = expected_params(cfg);
  globals_ = cfg.tie_word_embeddings ? 2 : 3;
  std::set<std::string> expected;
  std::vector<std::pair<ParamInfo*, Quant4View>> prequantized;  // stored as 4-bit (bnb4): views into the mapping
  for (auto& p : params_) {
    expected.insert(p.name);
    if (cfg.bnb4 && is_projection_weight(p.name) && !bnb_skips_module(*cfg.bnb4, module_of(p.name))) {
      for (const std::string& n : bnb4_state_names(p.name, *cfg.bnb4)) expected.insert(n);
      prequantized.emplace_back(&p, read_bnb4_weight(*files_, p.name, p.shape[0], p.shape[1], *cfg.bnb4, where));
      continue;
    }
    if (cfg.bnb4) refuse_4bit_kept_module(*files_, p.name, cfg.bnb4->skip_modules.has_value());
    const TensorInfo* t = files_->find(p.name);
    if (t == nullptr)
      throw Error("{}: tensor \"{}\" is missing; config.json implies shape {}", where, p.name, shape_str(p.shape));
    if (t->shape != p.shape)
      throw Error("{}: tensor \"{}\" has shape {}, but config.json implies {}", t->file, p.name, shape_str(t->shape),
                  shape_str(p.shape));
    if (t->dtype != DType::F32 && t->dtype != DType::BF16 && t->dtype != DType::F16)
      throw Error("{}: tensor \"{}\" has dtype {}; expected F32, BF16 or F16", t->file, p.name, dtype_name(t->dtype));
    // view() refuses data not aligned to its element size: the kernels read it in place.
    p.tensor = make_tensor(t->view().data, t->dtype, p.shape, Device::CPU);
  }
  if (cfg.bnb4) refuse_4bit_kept_module(*files_, "lm_head.weight", cfg.bnb4->skip_modules.has_value());
  for (const TensorInfo* t : files_->all())
    if (!expected.count(t->name) && !ignored_extra(t->name, cfg))
      throw Error("{}: unexpected tensor \"{}\" with shape {}; a {} model with this config.json has no such parameter",
                  t->file, t->name, shape_str(t->shape), cfg.model_type);

  if (!prequantized.empty()) install_prequantized(prequantized, dequant);
  else if (quant.enabled && !cfg.bnb4) quantize_projections(quant, dequant);  // a 4-bit checkpoint stays as stored
  if (be.device() != Device::CPU) {  // one copy per tensor on the device; the mapping stays host-side
    for (auto& p : params_) {
      if (p.quant) continue;  // already on the device
      void* d = be.alloc(p.tensor.nbytes());
      be.upload(d, p.tensor.data, p.tensor.nbytes());
      device_copies_.push_back(d);
      p.tensor.data = d;
      p.tensor.device = be.device();
    }
  }
  lm_head_ = cfg.tie_word_embeddings ? params_[0].tensor : params_[2].tensor;
  dtype_ = params_.back().tensor.dtype;
}

ModelWeights::~ModelWeights() {
  for (void* p : device_copies_) be_.free(p);
  if (scratch_) be_.free(scratch_);
}

std::string quantization_bit_note(const ModelConfig& cfg, const QuantConfig& q) {
  if (!cfg.bnb4 || !q.enabled) return "";
  return fmt::format("note: --quantization_bit 4 is ignored: config.json's quantization_config says the checkpoint is "
                     "already bitsandbytes 4-bit ({}{}), and its stored 4-bit weights are used as they are",
                     quant4_type_name(cfg.bnb4->quant_type), cfg.bnb4->double_quant ? ", double quantization" : "");
}

std::string quant4_description(const Quant4Source& s) {
  return fmt::format("4-bit {}{}", quant4_type_name(s.type), s.double_quant ? " with double quantization" : "");
}

bool is_projection_weight(const std::string& name) {
  for (int p = 0; p < kNumProj; ++p)
    if (name.ends_with(fmt::format(".{}.weight", proj_path(static_cast<Proj>(p))))) return true;
  return false;
}

Tensor ModelWeights::to_device(Tensor t) {
  if (be_.device() == Device::CPU || t.empty()) return t;
  void* d = be_.alloc(t.nbytes());
  be_.upload(d, t.data, t.nbytes());
  device_copies_.push_back(d);
  t.data = d;
  t.device = be_.device();
  return t;
}

void ModelWeights::bind_quantized(ParamInfo& p, std::unique_ptr<Quant4View> view, DType dequant) {
  p.quant = view.get();
  p.tensor = make_tensor(nullptr, dequant, p.shape, be_.device());  // its dequantized form (no data of its own)
  quant_.push_back(std::move(view));
}

void ModelWeights::size_scratch() {
  const int layers = (static_cast<int>(params_.size()) - globals_) / per_layer_;
  for (int i = 0; i < layers; ++i) {  // the layer with the most 4-bit bytes (skip modules differ per layer)
    size_t n = 0;
    for (int k = 0; k < per_layer_; ++k) {
      const ParamInfo& p = params_[static_cast<size_t>(globals_ + i * per_layer_ + k)];
      if (p.quant) n += p.tensor.nbytes();
    }
    scratch_bytes_ = std::max(scratch_bytes_, n);
  }
}

void ModelWeights::install_prequantized(std::vector<std::pair<ParamInfo*, Quant4View>>& weights, DType dequant) {
  LF_CHECK(dequant == DType::F32 || dequant == DType::BF16, "dequantize to {}", dtype_name(dequant));
  dequant_ = dequant;
  // bitsandbytes' kernels use the built-in code book of the quant_type: one device copy per type.
  Tensor code4[2] = {to_device(Tensor(const_cast<float*>(quant4_code(Quant4Type::NF4)), DType::F32, {16})),
                     to_device(Tensor(const_cast<float*>(quant4_code(Quant4Type::FP4)), DType::F32, {16}))};
  for (auto& [p, v] : weights) {
    auto view = std::make_unique<Quant4View>(v);  // CPU: views of the mapping, which files_ keeps alive
    view->packed = to_device(view->packed);
    view->absmax = to_device(view->absmax);
    view->nested_absmax = to_device(view->nested_absmax);
    view->code8 = to_device(view->code8);  // the checkpoint's nested_quant_map
    view->code4 = code4[v.type == Quant4Type::NF4 ? 0 : 1];
    bind_quantized(*p, std::move(view), dequant);
  }
  size_scratch();
  quant_source_ = Quant4Source{weights.front().second.type, weights.front().second.nested(), true};
}

void ModelWeights::quantize_projections(const QuantConfig& qc, DType dequant) {
  LF_CHECK(dequant == DType::F32 || dequant == DType::BF16, "dequantize to {}", dtype_name(dequant));
  dequant_ = dequant;
  const bool on_cpu = be_.device() == Device::CPU;
  // The code books every view points at: static host tables, or one device copy of each.
  Tensor code4(const_cast<float*>(quant4_code(qc.type)), DType::F32, {16});
  Tensor code8(const_cast<float*>(dynamic8_code()), DType::F32, {256});
  code4 = to_device(code4);
  code8 = to_device(code8);
  size_t n_quant = 0;
  for (const auto& p : params_) n_quant += is_projection_weight(p.name) ? 1 : 0;
  if (on_cpu) quant_host_.reserve(n_quant);  // the views point into these: no reallocation
  std::vector<uint16_t> rounded;             // (numel) one weight rounded to bf16, for a bf16 run
  for (auto& p : params_) {
    if (!is_projection_weight(p.name)) continue;
    Tensor src = p.tensor;  // (O, I) in the mapping
    if (dequant == DType::BF16 && src.dtype != DType::BF16) {  // quantize what torch_dtype=bf16 loads
      rounded.resize(static_cast<size_t>(src.numel()));
      std::vector<float> f(rounded.size());
      convert_to_f32(f.data(), src.data, src.dtype, f.size());
      for (size_t i = 0; i < f.size(); ++i) rounded[i] = f32_to_bf16(f[i]);
      src = Tensor(rounded.data(), DType::BF16, {src.dim(0), src.dim(1)});
    }
    Quant4Host h = quantize_4bit(src.data, src.dtype, src.numel(), qc.type, qc.double_quant);
    auto view = std::make_unique<Quant4View>(cpu_view(h, src.dim(0), src.dim(1)));
    view->packed = to_device(view->packed);
    view->absmax = to_device(view->absmax);
    view->nested_absmax = to_device(view->nested_absmax);
    view->code4 = code4;
    view->code8 = h.nested ? code8 : Tensor();
    if (on_cpu) quant_host_.push_back(std::move(h));  // a vector's move keeps its buffer: views stay valid
    bind_quantized(p, std::move(view), dequant);
  }
  size_scratch();
  quant_source_ = Quant4Source{qc.type, qc.double_quant, false};
}

size_t ModelWeights::quantized_bytes() const {
  size_t n = 0;
  for (const auto& q : quant_) n += quant4_nbytes(q->numel(), q->nested());
  return n;
}

LayerWeights ModelWeights::layer(int i) const {
  LayerWeights w;
  size_t idx = static_cast<size_t>(globals_) + static_cast<size_t>(i) * static_cast<size_t>(per_layer_);
  if (!quant_.empty() && !scratch_) scratch_ = be_.alloc(scratch_bytes_);
  char* free_scratch = static_cast<char*>(scratch_);  // (scratch_bytes_) the next unused byte
  for (const auto& s : layer_specs()) {
    const std::string& suffix = s.suffix;
    // The table holds only the present parameters, in kLayerSpecs order.
    if (idx < params_.size() && params_[idx].name == fmt::format("model.layers.{}.{}", i, suffix)) {
      const ParamInfo& p = params_[idx++];
      Tensor t = p.tensor;
      if (p.quant) {  // dequantized into its slice of the layer scratch (unless it holds layer i)
        t.data = free_scratch;
        free_scratch += t.nbytes();
        if (scratch_layer_ != i) be_.dequantize_4bit(t, *p.quant);
      }
      w.*(s.member) = t;
    }
  }
  scratch_layer_ = i;
  LF_CHECK(!w.q.empty() && !w.down.empty(), "layer {} views", i);
  return w;
}

void ModelWeights::rebind(const std::string& name, Tensor t) {
  for (auto& p : params_) {
    if (p.name != name) continue;
    if (p.quant)
      throw Error("cannot merge into {}: the base weights are quantized to 4 bits; apply the adapter unmerged, or "
                  "merge it into the 16-bit model with lorafit merge",
                  name);
    if (p.tensor.data == lm_head_.data) throw Error("cannot rebind {}: it is also the (tied) lm head", name);
    if (t.shape != p.tensor.shape || t.ndim != p.tensor.ndim || t.dtype != p.tensor.dtype)
      throw Error("cannot rebind {}: {} {} given for {} {}", name, dtype_name(t.dtype), t.shape_str(),
                  dtype_name(p.tensor.dtype), p.tensor.shape_str());
    p.tensor = t;
    return;
  }
  throw Error("cannot rebind {}: the model has no such parameter", name);
}

void ModelWeights::round_to_bf16() {
  for (auto& p : params_) {
    if (p.tensor.dtype == DType::BF16 || p.quant) continue;  // 4-bit weights: bf16 when dequantized
    Tensor t = p.tensor;
    t.data = be_.alloc(static_cast<size_t>(t.numel()) * 2);
    t.dtype = DType::BF16;
    be_.convert(t, p.tensor);
    const auto old = std::find(device_copies_.begin(), device_copies_.end(), p.tensor.data);
    if (old != device_copies_.end()) {
      be_.free(*old);
      device_copies_.erase(old);
    }
    device_copies_.push_back(t.data);
    p.tensor = t;
  }
  lm_head_ = globals_ == 2 ? params_[0].tensor : params_[2].tensor;  // tied: the embedding
  dtype_ = DType::BF16;
}

int64_t ModelWeights::num_params() const {
  int64_t n = 0;
  for (const auto& p : params_) n += p.tensor.numel();
  return n;
}

}  // namespace lorafit
