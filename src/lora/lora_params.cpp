#include "lora/lora_params.h"

#include <cmath>
#include <cstring>

#include "formats/safetensors.h"
#include "util/error.h"
#include "util/rng.h"

namespace lorafit {

LoraParams::LoraParams(Backend& be, const LoraConfig& cfg, const ModelConfig& model)
    : be_(be), cfg_(cfg), num_layers_(model.num_layers) {
  modules_ = select_lora_modules(cfg_, model);
  const int64_t r = cfg_.r;
  for (size_t i = 0; i < modules_.size(); ++i) {
    const LinearModule& m = modules_[i];
    const std::string base = "base_model.model." + m.name;
    tensors_.push_back({base + ".lora_A.weight", static_cast<int>(i), false, r, m.in, P_});
    P_ += r * m.in;
    tensors_.push_back({base + ".lora_B.weight", static_cast<int>(i), true, m.out, r, P_});
    P_ += m.out * r;
    if (cfg_.use_dora) {  // PEFT saves it without ".weight" (save_and_load.py strips the adapter name)
      tensors_.push_back({base + ".lora_magnitude_vector", static_cast<int>(i), false, m.out, 1, P_, true});
      P_ += m.out;
    }
  }
  buf_ = static_cast<float*>(be_.alloc(static_cast<size_t>(4 * P_) * sizeof(float)));
  int64_t norm_floats = 0;
  for (const LinearModule& m : modules_) norm_floats += m.out;
  if (cfg_.use_dora) norms_ = static_cast<float*>(be_.alloc(static_cast<size_t>(norm_floats) * sizeof(float)));
  weights_.resize(static_cast<size_t>(num_layers_) * kNumProj);
  const float s = static_cast<float>(cfg_.scale());
  int64_t norm_at = 0;
  for (const LoraTensor& t : tensors_) {
    const LinearModule& m = modules_[static_cast<size_t>(t.module)];
    LoraWeights& w = weights_[static_cast<size_t>(m.layer) * kNumProj + static_cast<size_t>(m.proj)];
    const Tensor v = view(params(), t), dv = view(grads(), t);
    if (t.is_m) {
      w.m = v.view({m.out});
      w.dm = dv.view({m.out});
      w.norm = Tensor(norms_ + norm_at, DType::F32, {m.out}, be_.device());
      norm_at += m.out;
    } else {
      (t.is_B ? w.B : w.A) = v;
      (t.is_B ? w.dB : w.dA) = dv;
    }
    w.scale = s;
    w.dropout = static_cast<float>(cfg_.dropout);
  }
}

LoraParams::~LoraParams() {
  if (buf_) be_.free(buf_);
  if (norms_) be_.free(norms_);
}

Tensor LoraParams::section(int i) const {
  return Tensor(buf_ + static_cast<int64_t>(i) * P_, DType::F32, {P_}, be_.device());
}

Tensor LoraParams::view(const Tensor& sec, const LoraTensor& t) const {
  LF_CHECK(t.offset + t.numel() <= P_);
  return Tensor(sec.as<float>() + t.offset, DType::F32, {t.rows, t.cols}, be_.device());
}

const LoraWeights* LoraParams::weights(int layer, Proj p) const {
  LF_CHECK(layer >= 0 && layer < num_layers_);
  const LoraWeights& w = weights_[static_cast<size_t>(layer) * kNumProj + static_cast<size_t>(p)];
  return w.empty() ? nullptr : &w;
}

void LoraParams::set_dropout(float p) {
  for (LoraWeights& w : weights_) w.dropout = p;
}

void LoraParams::zero_grads() {
  const std::vector<float> z(static_cast<size_t>(P_), 0.f);
  be_.upload(grads().data, z.data(), z.size() * sizeof(float));
}

void LoraParams::zero_optimizer_state() {
  const std::vector<float> z(static_cast<size_t>(P_), 0.f);
  be_.upload(adam_m().data, z.data(), z.size() * sizeof(float));
  be_.upload(adam_v().data, z.data(), z.size() * sizeof(float));
}

std::vector<float> LoraParams::download_params() const {
  std::vector<float> h(static_cast<size_t>(P_));
  be_.download(h.data(), params().data, h.size() * sizeof(float));
  return h;
}

void LoraParams::upload_params(const std::vector<float>& host) {
  LF_CHECK(static_cast<int64_t>(host.size()) == P_);
  be_.upload(params().data, host.data(), host.size() * sizeof(float));
}

void lora_init_peft(LoraParams& p, uint64_t seed, bool round_A_to_bf16) {
  std::vector<float> h(static_cast<size_t>(p.num_params()), 0.f);
  // splitmix64 counter stream: value i of the whole buffer depends only on (seed, i).
  const uint64_t s0 = splitmix64(seed);
  for (const LoraTensor& t : p.tensors()) {
    if (t.is_B || t.is_m) continue;  // B = 0; m from the base weights (lora_init_dora_magnitude)
    // kaiming_uniform(a=√5): gain = √(2/(1+5)), bound = gain·√(3/fan_in) = 1/√fan_in
    const double bound = 1.0 / std::sqrt(static_cast<double>(t.cols));
    for (int64_t i = 0; i < t.numel(); ++i) {
      const uint64_t u = splitmix64(s0 + static_cast<uint64_t>(t.offset + i));
      const double x = u64_to_unit_double(u) * 2.0 - 1.0;  // [-1, 1)
      float a = static_cast<float>(bound * x);
      if (round_A_to_bf16) a = bf16_to_f32(f32_to_bf16(a));
      h[static_cast<size_t>(t.offset + i)] = a;
    }
  }
  p.upload_params(h);
}

void lora_init_dora_magnitude(LoraParams& p, const std::function<Tensor(const LinearModule&)>& weight,
                              DType norm_dtype) {
  if (!p.config().use_dora) return;
  Backend& be = p.backend();
  for (const LinearModule& m : p.modules()) {
    const LoraWeights* w = p.weights(m.layer, m.proj);
    LF_CHECK(w && w->dora(), "DoRA magnitude of {}", m.name);
    dora_weight_norm(be, weight(m), *w);  // n = ‖W + s·B·A‖ (B = 0: no bf16 rounding of s·B·A to model)
    std::vector<float> mag(static_cast<size_t>(w->m.numel()));  // m = n, rounded as PEFT's .to(dtype)
    be.download(mag.data(), w->norm.data, w->norm.nbytes());
    for (float& v : mag)
      v = norm_dtype == DType::BF16  ? bf16_to_f32(f32_to_bf16(v))
          : norm_dtype == DType::F16 ? f16_to_f32(f32_to_f16(v))
                                     : v;
    be.upload(w->m.data, mag.data(), w->m.nbytes());
  }
}

void load_lora_tensors(LoraParams& p, const std::function<const TensorInfo*(const std::string&)>& find,
                       const std::string& label) {
  std::vector<float> h(static_cast<size_t>(p.num_params()), 0.f);
  for (const LoraTensor& t : p.tensors()) {
    const TensorInfo* ti = find(t.key);
    if (ti == nullptr && t.is_m)
      throw Error("{}: tensor '{}' is missing; a DoRA adapter (use_dora: true) needs a lora_magnitude_vector "
                  "for every target module: the file is incomplete or the config's use_dora is wrong",
                  label, t.key);
    if (ti == nullptr)
      throw Error("{}: tensor '{}' is missing; the adapter must have lora_A/lora_B for every "
                  "target module (r = {})", label, t.key, p.config().r);
    if (ti->shape != t.shape())
      throw Error("{}: tensor '{}' has shape {}, expected {} (r = {}); was the adapter "
                  "trained with another rank or base model?",
                  label, t.key, ti->view().shape_str(), t.is_m ? fmt::format("[{}]", t.rows) : fmt::format("[{}, {}]", t.rows, t.cols),
                  p.config().r);
    if (ti->dtype != DType::F32 && ti->dtype != DType::BF16 && ti->dtype != DType::F16)
      throw Error("{}: tensor '{}' has dtype {}, expected F32, BF16 or F16", label, t.key,
                  dtype_name(ti->dtype));
    float* dst = h.data() + t.offset;
    convert_to_f32(dst, ti->data, ti->dtype, static_cast<size_t>(t.numel()));
    // NaN/Inf are never trained values: say at load that the file is damaged, instead of a
    // "diverged" loss one step later.
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(dst[i]))
        throw Error("{}: tensor '{}' holds {} at element {}: the adapter is damaged (training never writes NaN/Inf); "
                    "use another checkpoint or adapter",
                    label, t.key, std::isnan(dst[i]) ? "NaN" : "Inf", i);
  }
  p.upload_params(h);
}

}  // namespace lorafit
