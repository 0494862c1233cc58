#include "model/model_backward.h"

#include <algorithm>
#include <span>
#include <utility>

#include "util/error.h"
#include "util/rng.h"

namespace lorafit {

// Gradient scratch of one batch shape, one backend allocation carved into named views.
struct ModelBackward::Grads {
  Backend& be;
  char* base = nullptr;
  Tensor dres[2];  // (N, C) gradient w.r.t. the residual stream, ping-pong across layers
  Tensor d_mid;    // (N, C) w.r.t. resid_mid
  Tensor d_norm;   // (N, C) w.r.t. a norm output (attn_norm, mlp_norm, hidden)
  Tensor tmp;      // (N, C) a second contribution before it is added
  Tensor d_act;    // (N, F) w.r.t. mlp_act
  Tensor d_gate;   // (N, F)
  Tensor d_up;     // (N, F)
  Tensor d_attn;   // (B, T, H, D) w.r.t. the attention output
  Tensor dq;       // (B, T, H, D)
  Tensor dk, dv;   // (B, T, Hkv, D)
  Tensor loss, lse, dloss;  // (N)
  Tensor targets;           // (N) I32
  Tensor dxa;               // (N, r)
  Tensor dxin;              // (N, max I) only with dropout; viewed as (N, I) per projection
  size_t bytes = 0;

  Grads(Backend& b, const ModelConfig& c, int64_t B, int64_t T, int64_t r, bool dropout) : be(b) {
    const int64_t N = B * T, C = c.hidden_size, F = c.intermediate_size, H = c.num_heads, Hkv = c.num_kv_heads,
                  D = c.head_dim;
    const int64_t max_in = std::max({C, F, H * D});
    struct Want {
      Tensor* t;
      DType dt;
      std::vector<int64_t> shape;
    };
    std::vector<Want> want = {
        {&dres[0], DType::F32, {N, C}},   {&dres[1], DType::F32, {N, C}},   {&d_mid, DType::F32, {N, C}},
        {&d_norm, DType::F32, {N, C}},    {&tmp, DType::F32, {N, C}},       {&d_act, DType::F32, {N, F}},
        {&d_gate, DType::F32, {N, F}},    {&d_up, DType::F32, {N, F}},      {&d_attn, DType::F32, {B, T, H, D}},
        {&dq, DType::F32, {B, T, H, D}},  {&dk, DType::F32, {B, T, Hkv, D}}, {&dv, DType::F32, {B, T, Hkv, D}},
        {&loss, DType::F32, {N}},         {&lse, DType::F32, {N}},          {&dloss, DType::F32, {N}},
        {&targets, DType::I32, {N}},      {&dxa, DType::F32, {N, r}},
    };
    if (dropout) want.push_back({&dxin, DType::F32, {N, max_in}});
    std::vector<size_t> off;
    for (const Want& w : want) {
      int64_t n = 1;
      for (int64_t d : w.shape) n *= d;
      off.push_back(bytes);
      bytes += (static_cast<size_t>(n) * dtype_size(w.dt) + 63) / 64 * 64;
    }
    base = static_cast<char*>(be.alloc(bytes));
    for (size_t i = 0; i < want.size(); ++i) {
      Tensor& t = *want[i].t;
      t.data = base + off[i];
      t.dtype = want[i].dt;
      t.device = be.device();
      t.ndim = 0;
      for (int64_t d : want[i].shape) t.shape[t.ndim++] = d;
    }
  }
  ~Grads() { be.free(base); }
  Grads(const Grads&) = delete;
  Grads& operator=(const Grads&) = delete;
};

ModelBackward::ModelBackward(const Model& m, const LoraParams& lora, bool checkpointing)
    : m_(m), lora_(lora), checkpointing_(checkpointing) {}

ModelBackward::~ModelBackward() = default;

size_t ModelBackward::bytes() const { return (acts_ ? acts_->bytes() : 0) + (g_ ? g_->bytes : 0); }

void ModelBackward::ensure_shape(int64_t B, int64_t T) {
  bool dropout = false;  // any adapter with dropout: the arena must hold drop(x)
  for (const LinearModule& mod : lora_.modules())
    dropout = dropout || lora_.weights(mod.layer, mod.proj)->dropout > 0.f;
  if (acts_ && B == B_ && T == T_ && dropout == dropout_) return;
  g_.reset();
  acts_.reset();
  const ModelConfig& c = m_.config();
  acts_ = std::make_unique<ActivationArena>(m_.backend(), c, B, T, checkpointing_ ? 1 : c.num_layers, &lora_,
                                            dropout);
  g_ = std::make_unique<Grads>(m_.backend(), c, B, T, lora_.config().r, dropout);
  B_ = B;
  T_ = T;
  dropout_ = dropout;
}

LayerLora ModelBackward::layer_lora(int i) const {
  LayerLora ll{};
  for (int p = 0; p < kNumProj; ++p) ll[static_cast<size_t>(p)] = lora_.weights(i, static_cast<Proj>(p));
  return ll;
}

// Every (layer, projection) draws an independent dropout mask (PEFT has one nn.Dropout per
// adapted module), and the recomputation of a layer reuses exactly the same seeds.
LayerActs ModelBackward::layer_acts(int i) const {
  LayerActs a = acts_->layer(i);
  for (int p = 0; p < kNumProj; ++p)
    a.lora[static_cast<size_t>(p)].dropout_seed = splitmix64(seed_ ^ splitmix64(static_cast<uint64_t>(i * kNumProj + p)));
  return a;
}

std::vector<float> ModelBackward::forward(int64_t B, int64_t T, const std::vector<int32_t>& ids,
                                          const std::vector<int32_t>& targets, bool training, uint64_t seed) {
  return forward(B, T, ids, {}, {}, targets, training, seed);
}

std::vector<float> ModelBackward::forward(int64_t B, int64_t T, const std::vector<int32_t>& ids,
                                          const std::vector<int32_t>& pos, const std::vector<int32_t>& seg,
                                          const std::vector<int32_t>& targets, bool training, uint64_t seed) {
  LF_CHECK(static_cast<int64_t>(ids.size()) == B * T && targets.size() == ids.size());
  LF_CHECK(pos.size() == seg.size() && (pos.empty() || pos.size() == ids.size()),
           "packed forward: {} pos, {} seg for {} ids", pos.size(), seg.size(), ids.size());
  m_.check_input(std::span<const int32_t>(ids), T, "training batch");
  ensure_shape(B, T);
  training_ = training;
  seed_ = seed;
  packed_ = !seg.empty();
  Backend& be = m_.backend();
  const ModelConfig& c = m_.config();
  const int64_t N = B * T;
  if (packed_)
    acts_->set_tokens(ids, pos, seg);
  else
    acts_->set_tokens(ids);
  be.embedding_forward(acts_->residual(0), acts_->ids().view({N}), m_.weights().embed());
  for (int i = 0; i < c.num_layers; ++i)
    m_.layer_forward(i, acts_->residual(i + 1), acts_->residual(i), layer_acts(i), layer_lora(i), acts_->pos(),
                     seg_mask(), training);
  be.rmsnorm_forward(acts_->hidden(), acts_->final_rstd(), acts_->residual(c.num_layers), m_.weights().final_norm(),
                     static_cast<float>(c.rms_norm_eps));
  be.upload(g_->targets.data, targets.data(), targets.size() * sizeof(int32_t));
  be.lmhead_ce_forward(g_->loss, g_->lse, acts_->hidden(), m_.weights().lm_head(), g_->targets);
  std::vector<float> loss(static_cast<size_t>(N));
  be.sync();
  be.download(loss.data(), g_->loss.data, loss.size() * sizeof(float));
  host_targets_ = targets;
  have_forward_ = true;
  return loss;
}

void ModelBackward::backward(float loss_scale) {
  LF_CHECK(have_forward_, "ModelBackward::backward without a forward");
  Backend& be = m_.backend();
  const ModelConfig& c = m_.config();
  const int L = c.num_layers;
  const int64_t N = B_ * T_;
  std::vector<float> dloss(static_cast<size_t>(N));  // (N) d(Σ scale·loss_n)/d loss_n
  for (size_t n = 0; n < dloss.size(); ++n) dloss[n] = host_targets_[n] == -100 ? 0.f : loss_scale;
  be.upload(g_->dloss.data, dloss.data(), dloss.size() * sizeof(float));

  // hidden = rmsnorm(residual.L); loss = CE(hidden · lm_headᵀ)
  be.lmhead_ce_backward(g_->d_norm, g_->dloss, acts_->hidden(), m_.weights().lm_head(), g_->targets, g_->lse);
  int cur = 0;  // g_->dres[cur] holds d residual.(i+1) entering layer i
  be.rmsnorm_backward(g_->dres[cur], g_->d_norm, acts_->residual(L), m_.weights().final_norm(), acts_->final_rstd());
  for (int i = L - 1; i >= 0; --i) {
    const LayerActs a = layer_acts(i);
    // The single layer set holds layer L−1 after the forward; earlier layers are recomputed.
    if (checkpointing_ && i != L - 1)
      m_.layer_forward(i, acts_->residual(i + 1), acts_->residual(i), a, layer_lora(i), acts_->pos(), seg_mask(),
                       training_);
    layer_backward(i, g_->dres[1 - cur], g_->dres[cur], a);
    cur = 1 - cur;
  }
  // g_->dres[cur] = d embeddings: the embedding is frozen, so it goes nowhere.
}

// Mirrors Model::layer_forward, last op first. dy (N,C) = d x_out; dx (N,C) = d x_in.
void ModelBackward::layer_backward(int i, Tensor dx, Tensor dy, const LayerActs& a) {
  Backend& be = m_.backend();
  const ModelConfig& c = m_.config();
  const LayerWeights w = m_.weights().layer(i);
  const LayerLora ll = layer_lora(i);
  const int64_t N = B_ * T_, H = c.num_heads, Hkv = c.num_kv_heads, D = c.head_dim;
  const float theta = static_cast<float>(c.rope_theta);
  Grads& g = *g_;
  auto lin_back = [&](Proj p, Tensor d_in, Tensor d_out, Tensor x, Tensor W) {
    const auto k = static_cast<size_t>(p);
    LoraGradScratch s{g.dxa, g.dxin.empty() ? Tensor() : Tensor(g.dxin.data, DType::F32, {N, x.dim(-1)}, be.device())};
    linear_backward(be, d_in, d_out, x, W, ll[k], &a.lora[k], training_, s);
  };
  auto rows = [N](Tensor t) { return t.view({N, t.numel() / N}); };

  // MLP block: x_out = resid_mid + down(silu(gate(m)) · up(m)), m = rmsnorm(resid_mid)
  lin_back(Proj::Down, g.d_act, dy, a.mlp_act, w.down);
  be.swiglu_backward(g.d_gate, g.d_up, g.d_act, a.gate, a.up);
  lin_back(Proj::Gate, g.d_norm, g.d_gate, a.mlp_norm, w.gate);
  lin_back(Proj::Up, g.tmp, g.d_up, a.mlp_norm, w.up);
  be.add(g.d_norm, g.d_norm, g.tmp);
  be.rmsnorm_backward(g.tmp, g.d_norm, a.resid_mid, w.mlp_norm, a.mlp_rstd);
  be.add(g.d_mid, dy, g.tmp);

  // attention block: resid_mid = x + o(attn(rope(q(n)), rope(k(n)), v(n))), n = rmsnorm(x)
  lin_back(Proj::O, rows(g.d_attn), g.d_mid, rows(a.attn), w.o);
  be.attention_backward(g.dq, g.dk, g.dv, g.d_attn, a.q, a.k, a.v, a.attn, a.lse, seg_mask());
  be.rope_backward(g.dq.view({N, H, D}), acts_->pos(), theta);
  be.rope_backward(g.dk.view({N, Hkv, D}), acts_->pos(), theta);
  lin_back(Proj::Q, g.d_norm, rows(g.dq), a.attn_norm, w.q);
  lin_back(Proj::K, g.tmp, rows(g.dk), a.attn_norm, w.k);
  be.add(g.d_norm, g.d_norm, g.tmp);
  lin_back(Proj::V, g.tmp, rows(g.dv), a.attn_norm, w.v);
  be.add(g.d_norm, g.d_norm, g.tmp);
  be.rmsnorm_backward(g.tmp, g.d_norm, acts_->residual(i), w.attn_norm, a.attn_rstd);
  be.add(dx, g.d_mid, g.tmp);
}

std::vector<int32_t> shift_labels(const std::vector<int32_t>& labels, int64_t B, int64_t T,
                                  const std::vector<int32_t>& seg) {
  LF_CHECK(static_cast<int64_t>(labels.size()) == B * T && (seg.empty() || seg.size() == labels.size()));
  std::vector<int32_t> t(labels.size(), -100);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s + 1 < T; ++s) {
      const auto n = static_cast<size_t>(b * T + s);
      if (seg.empty() || seg[n] == seg[n + 1]) t[n] = labels[n + 1];
    }
  return t;
}

}  // namespace lorafit
