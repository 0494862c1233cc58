#include "model/activations.h"

#include <cstring>
#include <map>

#include "formats/safetensors.h"
#include "lora/lora_params.h"
#include "util/error.h"

namespace lorafit {

namespace {

struct Sizes {
  int64_t B, T, N, C, H, Hkv, D, F;
};

// The per-layer buffers, in arena order: name, where the view goes, shape.
struct LayerActSpec {
  const char* name;
  Tensor LayerActs::*member;
  std::vector<int64_t> (*shape)(const Sizes&);
  bool qk_norm_only = false;  // present only for models with q_norm / k_norm (Qwen3)
};
const LayerActSpec kLayerActs[] = {
    {"attn_norm", &LayerActs::attn_norm, [](const Sizes& s) { return std::vector{s.N, s.C}; }},
    {"attn_rstd", &LayerActs::attn_rstd, [](const Sizes& s) { return std::vector{s.N}; }},
    {"q_raw", &LayerActs::q_raw, [](const Sizes& s) { return std::vector{s.B, s.T, s.H, s.D}; }, true},
    {"k_raw", &LayerActs::k_raw, [](const Sizes& s) { return std::vector{s.B, s.T, s.Hkv, s.D}; }, true},
    {"q_rstd", &LayerActs::q_rstd, [](const Sizes& s) { return std::vector{s.N * s.H}; }, true},
    {"k_rstd", &LayerActs::k_rstd, [](const Sizes& s) { return std::vector{s.N * s.Hkv}; }, true},
    {"q", &LayerActs::q, [](const Sizes& s) { return std::vector{s.B, s.T, s.H, s.D}; }},
    {"k", &LayerActs::k, [](const Sizes& s) { return std::vector{s.B, s.T, s.Hkv, s.D}; }},
    {"v", &LayerActs::v, [](const Sizes& s) { return std::vector{s.B, s.T, s.Hkv, s.D}; }},
    {"attn", &LayerActs::attn, [](const Sizes& s) { return std::vector{s.B, s.T, s.H, s.D}; }},
    {"lse", &LayerActs::lse, [](const Sizes& s) { return std::vector{s.B, s.H, s.T}; }},
    {"attn_proj", &LayerActs::attn_proj, [](const Sizes& s) { return std::vector{s.N, s.C}; }},
    {"resid_mid", &LayerActs::resid_mid, [](const Sizes& s) { return std::vector{s.N, s.C}; }},
    {"mlp_norm", &LayerActs::mlp_norm, [](const Sizes& s) { return std::vector{s.N, s.C}; }},
    {"mlp_rstd", &LayerActs::mlp_rstd, [](const Sizes& s) { return std::vector{s.N}; }},
    {"gate", &LayerActs::gate, [](const Sizes& s) { return std::vector{s.N, s.F}; }},
    {"up", &LayerActs::up, [](const Sizes& s) { return std::vector{s.N, s.F}; }},
    {"mlp_act", &LayerActs::mlp_act, [](const Sizes& s) { return std::vector{s.N, s.F}; }},
    {"mlp_out", &LayerActs::mlp_out, [](const Sizes& s) { return std::vector{s.N, s.C}; }},
};

size_t align64(size_t n) { return (n + 63) / 64 * 64; }

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

}  // namespace

ActivationArena::ActivationArena(Backend& be, const ModelConfig& cfg, int64_t B, int64_t T, int layer_sets,
                                 const LoraParams* lora, bool lora_dropout)
    : be_(be), B_(B), T_(T), layer_sets_(layer_sets), qk_norm_(cfg.qk_norm) {
  LF_CHECK(B > 0 && T > 0 && (layer_sets == 1 || layer_sets == cfg.num_layers), "arena B={} T={} sets={}", B, T,
           layer_sets);
  const Sizes s{B, T, B * T, cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.intermediate_size};
  auto add = [&](std::string name, DType t, std::vector<int64_t> shape) {
    const size_t n = static_cast<size_t>(numel(shape)) * dtype_size(t);
    buffers_.push_back({std::move(name), t, std::move(shape), bytes_});
    bytes_ += align64(n);
  };
  add("ids", DType::I32, {B, T});
  add("pos", DType::I32, {s.N});
  add("seg", DType::I32, {B, T});
  for (int i = 0; i <= cfg.num_layers; ++i) add(fmt::format("residual.{}", i), DType::F32, {s.N, s.C});
  add("final_rstd", DType::F32, {s.N});
  add("hidden", DType::F32, {s.N, s.C});
  for (int j = 0; j < layer_sets; ++j) {
    layer_first_.push_back(buffers_.size());
    for (const auto& spec : kLayerActs)
      if (!spec.qk_norm_only || cfg.qk_norm) add(fmt::format("layers.{}.{}", j, spec.name), DType::F32, spec.shape(s));
    if (lora == nullptr) continue;
    std::array<int64_t, kNumProj> in_features{};  // 0: projection not adapted in any layer
    for (const auto& m : lora->modules()) in_features[static_cast<size_t>(m.proj)] = m.in;
    for (int p = 0; p < kNumProj; ++p) {
      if (in_features[p] == 0) continue;
      const std::string base = fmt::format("layers.{}.lora.{}", j, proj_name(static_cast<Proj>(p)));
      add(base + ".xa", DType::F32, {s.N, lora->config().r});
      if (lora_dropout) add(base + ".xdrop", DType::F32, {s.N, in_features[p]});
    }
  }
  base_ = static_cast<char*>(be.alloc(bytes_));
}

ActivationArena::~ActivationArena() { be_.free(base_); }

Tensor ActivationArena::view(const Buffer& b) const {
  Tensor t;
  t.data = base_ + b.offset;
  t.dtype = b.dtype;
  t.device = be_.device();
  for (int64_t d : b.shape) t.shape[t.ndim++] = d;
  return t;
}

void ActivationArena::visit(const std::function<void(const Buffer&, Tensor)>& f) const {
  for (const auto& b : buffers_) f(b, view(b));
}

Tensor ActivationArena::get(const std::string& name) const {
  for (const auto& b : buffers_)
    if (b.name == name) return view(b);
  LF_CHECK(false, "no activation buffer named {}", name);
  return {};
}

Tensor ActivationArena::residual(int i) const {
  const Buffer& b = buffers_[3 + static_cast<size_t>(i)];  // after ids, pos, seg
  LF_CHECK(b.name == fmt::format("residual.{}", i), "residual {} -> {}", i, b.name);
  return view(b);
}

LayerActs ActivationArena::layer(int i) const {
  const int set = layer_sets_ == 1 ? 0 : i;
  LF_CHECK(set >= 0 && set < layer_sets_, "layer {} of {} sets", i, layer_sets_);
  LayerActs a;
  size_t idx = layer_first_[static_cast<size_t>(set)];
  for (const auto& spec : kLayerActs) {
    if (spec.qk_norm_only && !qk_norm_) continue;
    const Buffer& b = buffers_[idx++];
    LF_CHECK(b.name == fmt::format("layers.{}.{}", set, spec.name), "layer view {} -> {}", spec.name, b.name);
    a.*(spec.member) = view(b);
  }
  // LoRA buffers follow the layer's own, when present.
  for (; idx < buffers_.size() && buffers_[idx].name.starts_with(fmt::format("layers.{}.lora.", set)); ++idx) {
    for (int p = 0; p < kNumProj; ++p) {
      const std::string base = fmt::format("layers.{}.lora.{}", set, proj_name(static_cast<Proj>(p)));
      if (buffers_[idx].name == base + ".xa") a.lora[static_cast<size_t>(p)].xa = view(buffers_[idx]);
      if (buffers_[idx].name == base + ".xdrop") a.lora[static_cast<size_t>(p)].xdrop = view(buffers_[idx]);
    }
  }
  return a;
}

void ActivationArena::set_tokens(const std::vector<int32_t>& host_ids, int64_t p0) {
  LF_CHECK(static_cast<int64_t>(host_ids.size()) == B_ * T_, "{} ids for B={} T={}", host_ids.size(), B_, T_);
  std::vector<int32_t> host_pos(host_ids.size());
  for (size_t n = 0; n < host_pos.size(); ++n)
    host_pos[n] = static_cast<int32_t>(p0 + static_cast<int64_t>(n) % T_);
  be_.upload(ids().data, host_ids.data(), host_ids.size() * 4);
  be_.upload(pos().data, host_pos.data(), host_pos.size() * 4);
  const std::vector<int32_t> host_seg(host_ids.size(), 0);  // unused unpacked; zero so dumps are defined
  be_.upload(seg().data, host_seg.data(), host_seg.size() * 4);
}

void ActivationArena::set_tokens(const std::vector<int32_t>& host_ids, const std::vector<int32_t>& host_pos,
                                 const std::vector<int32_t>& host_seg) {
  const auto n = static_cast<size_t>(B_ * T_);
  LF_CHECK(host_ids.size() == n && host_pos.size() == n && host_seg.size() == n, "{} ids, {} pos, {} seg for B={} T={}",
           host_ids.size(), host_pos.size(), host_seg.size(), B_, T_);
  be_.upload(ids().data, host_ids.data(), n * 4);
  be_.upload(pos().data, host_pos.data(), n * 4);
  be_.upload(seg().data, host_seg.data(), n * 4);
}

void ActivationArena::save(const fs::path& path) const {
  std::vector<std::string> host(buffers_.size());
  std::vector<TensorToWrite> out;
  be_.sync();
  for (size_t i = 0; i < buffers_.size(); ++i) {
    const Tensor t = view(buffers_[i]);
    host[i].resize(t.nbytes());
    be_.download(host[i].data(), t.data, t.nbytes());
    out.push_back({buffers_[i].name, t.dtype, buffers_[i].shape,
                   {reinterpret_cast<const uint8_t*>(host[i].data()), host[i].size()}});
  }
  safetensors_save(path, out, {{"format", "pt"}});
}

}  // namespace lorafit
