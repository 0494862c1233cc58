#include "model/activations.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "formats/safetensors.h"
#include "lora/lora_params.h"
#include "util/error.h"

namespace lorafit {

namespace {

using A = ActivationArena;

struct Sizes {
  int64_t C, H, Hkv, D, F;
};

// The per-layer buffers, in arena order: name, where the view goes, shape, activation dtype
// (else F32: the saved norm and softmax statistics).
struct LayerActSpec {
  const char* name;
  Tensor LayerActs::*member;
  std::vector<int64_t> (*shape)(const Sizes&);
  bool act;
  bool qk_norm_only = false;  // present only for models with q_norm / k_norm (Qwen3)
};
const LayerActSpec kLayerActs[] = {
    {"attn_norm", &LayerActs::attn_norm, [](const Sizes& s) { return std::vector{A::kN, s.C}; }, true},
    {"attn_rstd", &LayerActs::attn_rstd, [](const Sizes&) { return std::vector{A::kN}; }, false},
    {"q_raw", &LayerActs::q_raw, [](const Sizes& s) { return std::vector{A::kB, A::kT, s.H, s.D}; }, true, true},
    {"k_raw", &LayerActs::k_raw, [](const Sizes& s) { return std::vector{A::kB, A::kT, s.Hkv, s.D}; }, true, true},
    {"q_rstd", &LayerActs::q_rstd, [](const Sizes& s) { return std::vector{A::kN, s.H}; }, false, true},
    {"k_rstd", &LayerActs::k_rstd, [](const Sizes& s) { return std::vector{A::kN, s.Hkv}; }, false, true},
    {"q", &LayerActs::q, [](const Sizes& s) { return std::vector{A::kB, A::kT, s.H, s.D}; }, true},
    {"k", &LayerActs::k, [](const Sizes& s) { return std::vector{A::kB, A::kT, s.Hkv, s.D}; }, true},
    {"v", &LayerActs::v, [](const Sizes& s) { return std::vector{A::kB, A::kT, s.Hkv, s.D}; }, true},
    {"attn", &LayerActs::attn, [](const Sizes& s) { return std::vector{A::kB, A::kT, s.H, s.D}; }, true},
    {"lse", &LayerActs::lse, [](const Sizes& s) { return std::vector{A::kB, s.H, A::kT}; }, false},
    {"attn_proj", &LayerActs::attn_proj, [](const Sizes& s) { return std::vector{A::kN, s.C}; }, true},
    {"resid_mid", &LayerActs::resid_mid, [](const Sizes& s) { return std::vector{A::kN, s.C}; }, true},
    {"mlp_norm", &LayerActs::mlp_norm, [](const Sizes& s) { return std::vector{A::kN, s.C}; }, true},
    {"mlp_rstd", &LayerActs::mlp_rstd, [](const Sizes&) { return std::vector{A::kN}; }, false},
    {"gate", &LayerActs::gate, [](const Sizes& s) { return std::vector{A::kN, s.F}; }, true},
    {"up", &LayerActs::up, [](const Sizes& s) { return std::vector{A::kN, s.F}; }, true},
    {"mlp_act", &LayerActs::mlp_act, [](const Sizes& s) { return std::vector{A::kN, s.F}; }, true},
    {"mlp_out", &LayerActs::mlp_out, [](const Sizes& s) { return std::vector{A::kN, s.C}; }, true},
};

// The gradient buffers: name, view, shape, activation dtype (else F32; targets I32).
struct GradSpec {
  const char* name;
  Tensor GradBufs::*member;
  std::vector<int64_t> (*shape)(const Sizes&);
  DType dtype;  // F32 or I32; BF16 placeholder = the activation dtype
};
const GradSpec kGrads[] = {
    {"dres0", nullptr, [](const Sizes& s) { return std::vector{A::kN, s.C}; }, DType::BF16},
    {"dres1", nullptr, [](const Sizes& s) { return std::vector{A::kN, s.C}; }, DType::BF16},
    {"d_mid", &GradBufs::d_mid, [](const Sizes& s) { return std::vector{A::kN, s.C}; }, DType::BF16},
    {"d_norm", &GradBufs::d_norm, [](const Sizes& s) { return std::vector{A::kN, s.C}; }, DType::BF16},
    {"tmp", &GradBufs::tmp, [](const Sizes& s) { return std::vector{A::kN, s.C}; }, DType::BF16},
    {"d_act", &GradBufs::d_act, [](const Sizes& s) { return std::vector{A::kN, s.F}; }, DType::BF16},
    {"d_gate", &GradBufs::d_gate, [](const Sizes& s) { return std::vector{A::kN, s.F}; }, DType::BF16},
    {"d_up", &GradBufs::d_up, [](const Sizes& s) { return std::vector{A::kN, s.F}; }, DType::BF16},
    {"d_attn", &GradBufs::d_attn, [](const Sizes& s) { return std::vector{A::kB, A::kT, s.H, s.D}; }, DType::BF16},
    {"dq", &GradBufs::dq, [](const Sizes& s) { return std::vector{A::kB, A::kT, s.H, s.D}; }, DType::BF16},
    {"dk", &GradBufs::dk, [](const Sizes& s) { return std::vector{A::kB, A::kT, s.Hkv, s.D}; }, DType::BF16},
    {"dv", &GradBufs::dv, [](const Sizes& s) { return std::vector{A::kB, A::kT, s.Hkv, s.D}; }, DType::BF16},
    {"loss", &GradBufs::loss, [](const Sizes&) { return std::vector{A::kN}; }, DType::F32},
    {"lse", &GradBufs::lse, [](const Sizes&) { return std::vector{A::kN}; }, DType::F32},
    {"dloss", &GradBufs::dloss, [](const Sizes&) { return std::vector{A::kN}; }, DType::F32},
    {"targets", &GradBufs::targets, [](const Sizes&) { return std::vector{A::kN}; }, DType::I32},
};

size_t align64(size_t n) { return (n + 63) / 64 * 64; }

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// dims with the placeholders replaced by (B, T).
std::vector<int64_t> concrete(const std::vector<int64_t>& dims, int64_t B, int64_t T) {
  std::vector<int64_t> s;
  for (int64_t d : dims) s.push_back(d == A::kB ? B : d == A::kT ? T : d == A::kN ? B * T : d);
  return s;
}

}  // namespace

ActivationArena::ActivationArena(Backend& be, const ModelConfig& cfg, int64_t B, int64_t T, int layer_sets,
                                 const LoraParams* lora, bool lora_dropout, DType act)
    : ActivationArena(be, cfg, ArenaSpec{B, T, layer_sets, act, lora, lora_dropout, false}) {}

ActivationArena::ActivationArena(Backend& be, const ModelConfig& cfg, const ArenaSpec& spec)
    : be_(be), B_(spec.B), T_(spec.T), cap_(spec.B * spec.T), act_(spec.act), layer_sets_(spec.layer_sets),
      grads_(spec.grads), qk_norm_(cfg.qk_norm) {
  LF_CHECK(B_ > 0 && T_ > 0 && (layer_sets_ == 1 || layer_sets_ == cfg.num_layers), "arena B={} T={} sets={}", B_,
           T_, layer_sets_);
  LF_CHECK(act_ == DType::F32 || act_ == DType::BF16, "activation dtype {}", dtype_name(act_));
  const Sizes s{cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.intermediate_size};
  // The table's shapes are at capacity: one row of B·T (a (1, B·T) batch bounds every (B, T) view).
  auto add = [&](std::string name, DType t, std::vector<int64_t> dims) {
    std::vector<int64_t> shape = concrete(dims, 1, cap_);
    const size_t n = static_cast<size_t>(numel(shape)) * dtype_size(t);
    buffers_.push_back({std::move(name), t, std::move(shape), bytes_, std::move(dims)});
    bytes_ += align64(n);
  };
  add("ids", DType::I32, {kB, kT});
  add("pos", DType::I32, {kN});
  add("seg", DType::I32, {kB, kT});
  for (int i = 0; i <= cfg.num_layers; ++i) add(fmt::format("residual.{}", i), act_, {kN, s.C});
  add("final_rstd", DType::F32, {kN});
  add("hidden", act_, {kN, s.C});
  std::array<int64_t, kNumProj> in_features{}, out_features{};  // 0: projection not adapted in any layer
  const LoraParams* lora = spec.lora;
  if (lora)
    for (const auto& m : lora->modules()) {
      in_features[static_cast<size_t>(m.proj)] = m.in;
      out_features[static_cast<size_t>(m.proj)] = m.out;
    }
  const int64_t r = lora ? lora->config().r : 0;
  const int64_t max_in = *std::max_element(in_features.begin(), in_features.end());
  const int64_t max_out = *std::max_element(out_features.begin(), out_features.end());
  // bf16 runs round the LoRA branch s·(xa·Bᵀ) on its own before adding it (as PEFT under
  // autocast): one (N, max O) buffer shared by the projections, in the forward and backward.
  const bool branch = lora && act_ == DType::BF16;
  if (branch) add("lora_branch", act_, {kN, max_out});
  // DoRA: one fp32 scratch for xd·Wᵀ and xa·Bᵀ in the forward (two (N, max O)) and the
  // backward's c⊙dy and (c − 1)⊙dy; each use is transient, so the projections and both passes
  // share it. A bf16 run's backward keeps two bf16 (N, I) input-gradient pieces or their fp32
  // sum there too.
  if (lora && lora->config().use_dora)
    add("lora_dora", DType::F32, {kN, 2 * (act_ == DType::BF16 ? std::max(max_out, max_in) : max_out)});
  for (int j = 0; j < layer_sets_; ++j) {
    layer_first_.push_back(buffers_.size());
    for (const auto& sp : kLayerActs)
      if (!sp.qk_norm_only || cfg.qk_norm)
        add(fmt::format("layers.{}.{}", j, sp.name), sp.act ? act_ : DType::F32, sp.shape(s));
    if (lora == nullptr) continue;
    for (int p = 0; p < kNumProj; ++p) {
      if (in_features[p] == 0) continue;
      const std::string base = fmt::format("layers.{}.lora.{}", j, proj_name(static_cast<Proj>(p)));
      add(base + ".xa", act_, {kN, r});
      if (spec.lora_dropout) add(base + ".xdrop", act_, {kN, in_features[p]});
    }
  }
  if (grads_) {
    for (const auto& g : kGrads)
      add(std::string("grad.") + g.name, g.dtype == DType::BF16 ? act_ : g.dtype, g.shape(s));
    add("grad.dxa", act_, {kN, r});
    if (spec.lora_dropout) add("grad.dxin", act_, {kN, std::max({s.C, s.F, s.H * s.D})});
    if (branch) {
      // dw: one (O, r) or (r, I) piece of dB/dA in bf16 before it joins the fp32 gradient.
      add("grad.lora_dys", act_, {kN, std::max(max_out, max_in)});  // also the bf16 dx piece (N, I)
      add("grad.lora_dw", act_, {r * std::max(max_out, max_in)});
    }
  }
  LF_CHECK(spec.kv_capacity >= 0 && spec.kv_rows >= 0 && (spec.kv_capacity == 0) == (spec.kv_rows == 0),
           "arena KV cache rows={} capacity={}", spec.kv_rows, spec.kv_capacity);
  for (int i = 0; spec.kv_capacity > 0 && i < cfg.num_layers; ++i)
    for (const char* kv : {"k", "v"})
      add(fmt::format("kv.{}.{}", i, kv), act_, {spec.kv_rows, spec.kv_capacity, s.Hkv, s.D});
  base_ = static_cast<char*>(be.alloc(bytes_));
}

ActivationArena::~ActivationArena() { be_.free(base_); }

void ActivationArena::reshape(int64_t B, int64_t T) {
  LF_CHECK(B > 0 && T > 0 && B * T <= cap_, "arena reshape to B={} T={} beyond its {} rows", B, T, cap_);
  B_ = B;
  T_ = T;
}

Tensor ActivationArena::view(const Buffer& b) const {
  Tensor t;
  t.data = base_ + b.offset;
  t.dtype = b.dtype;
  t.device = be_.device();
  for (int64_t d : concrete(b.dims, B_, T_)) t.shape[t.ndim++] = d;
  return t;
}

void ActivationArena::visit(const std::function<void(const Buffer&, Tensor)>& f) const {
  for (const auto& b : buffers_) f(b, view(b));
}

Tensor ActivationArena::view_or_empty(const std::string& name) const {
  for (const auto& b : buffers_)
    if (b.name == name) return view(b);
  return {};
}

Tensor ActivationArena::get(const std::string& name) const {
  const Tensor t = view_or_empty(name);
  LF_CHECK(!t.empty(), "no activation buffer named {}", name);
  return t;
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
  const Tensor branch = view_or_empty("lora_branch");
  const Tensor dora = view_or_empty("lora_dora");
  for (; idx < buffers_.size() && buffers_[idx].name.starts_with(fmt::format("layers.{}.lora.", set)); ++idx) {
    for (int p = 0; p < kNumProj; ++p) {
      const std::string base = fmt::format("layers.{}.lora.{}", set, proj_name(static_cast<Proj>(p)));
      LoraSaved& ls = a.lora[static_cast<size_t>(p)];
      if (buffers_[idx].name == base + ".xa") ls.xa = view(buffers_[idx]);
      if (buffers_[idx].name == base + ".xdrop") ls.xdrop = view(buffers_[idx]);
      ls.branch = branch;
      ls.dora = dora;
    }
  }
  return a;
}

GradBufs ActivationArena::grads() const {
  LF_CHECK(grads_, "this arena has no gradient buffers");
  GradBufs g;
  g.dres[0] = get("grad.dres0");
  g.dres[1] = get("grad.dres1");
  for (const auto& spec : kGrads)
    if (spec.member) g.*(spec.member) = get(std::string("grad.") + spec.name);
  g.lora.dxa = get("grad.dxa");
  g.lora.dxin = view_or_empty("grad.dxin");
  g.lora.dys = view_or_empty("grad.lora_dys");
  g.lora.dw = view_or_empty("grad.lora_dw");
  g.lora.dora = view_or_empty("lora_dora");
  return g;
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
    out.push_back({buffers_[i].name, t.dtype, std::vector<int64_t>(t.shape.begin(), t.shape.begin() + t.ndim),
                   {reinterpret_cast<const uint8_t*>(host[i].data()), host[i].size()}});
  }
  safetensors_save(path, out, {{"format", "pt"}});
}

}  // namespace lorafit
