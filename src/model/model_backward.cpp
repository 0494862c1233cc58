#include "model/model_backward.h"

#include <algorithm>
#include <span>
#include <utility>

#include "util/error.h"

namespace lorafit {

ModelBackward::ModelBackward(const Model& m, const LoraParams& lora, bool checkpointing)
    : m_(m), lora_(lora), checkpointing_(checkpointing) {}

ModelBackward::~ModelBackward() = default;

size_t ModelBackward::bytes() const { return acts_ ? acts_->bytes() : 0; }

void ModelBackward::reserve(int64_t B, int64_t T) {
  bool dropout = false;  // any adapter with dropout: the arena must hold drop(x)
  for (const LinearModule& mod : lora_.modules())
    dropout = dropout || lora_.weights(mod.layer, mod.proj)->dropout > 0.f;
  if (acts_ && B * T <= acts_->capacity() && dropout == dropout_) return;
  const ModelConfig& c = m_.config();
  const int64_t rows = std::max(B * T, acts_ ? acts_->capacity() : 0);  // never shrink
  acts_.reset();
  ArenaSpec spec;
  spec.B = 1;
  spec.T = rows;
  spec.layer_sets = checkpointing_ ? 1 : c.num_layers;
  spec.act = m_.act_dtype();
  spec.lora = &lora_;
  spec.lora_dropout = dropout;
  spec.grads = true;
  acts_ = std::make_unique<ActivationArena>(m_.backend(), c, spec);
  dropout_ = dropout;
  ++allocations_;
}

void ModelBackward::ensure_shape(int64_t B, int64_t T) {
  reserve(B, T);
  acts_->reshape(B, T);
  B_ = B;
  T_ = T;
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
  const int64_t N = B * T;
  if (packed_)
    acts_->set_tokens(ids, pos, seg);
  else
    acts_->set_tokens(ids);
  m_.forward(*acts_, &lora_, training, nullptr, {}, seg_mask(), seed_);
  const GradBufs g = acts_->grads();
  be.upload(g.targets.data, targets.data(), targets.size() * sizeof(int32_t));
  be.lmhead_ce_forward(g.loss, g.lse, acts_->hidden(), m_.weights().lm_head(), g.targets);
  std::vector<float> loss(static_cast<size_t>(N));
  be.sync();
  be.download(loss.data(), g.loss.data, loss.size() * sizeof(float));
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
  const GradBufs g = acts_->grads();
  std::vector<float> dloss(static_cast<size_t>(N));  // (N) d(Σ scale·loss_n)/d loss_n
  for (size_t n = 0; n < dloss.size(); ++n) dloss[n] = host_targets_[n] == -100 ? 0.f : loss_scale;
  be.upload(g.dloss.data, dloss.data(), dloss.size() * sizeof(float));

  // hidden = rmsnorm(residual.L); loss = CE(hidden · lm_headᵀ)
  be.lmhead_ce_backward(g.d_norm, g.dloss, acts_->hidden(), m_.weights().lm_head(), g.targets, g.lse);
  int cur = 0;  // g.dres[cur] holds d residual.(i+1) entering layer i
  be.rmsnorm_backward(g.dres[cur], g.d_norm, acts_->residual(L), m_.weights().final_norm(), acts_->final_rstd());
  for (int i = L - 1; i >= 0; --i) {
    const LayerActs a = layer_acts(*acts_, i, seed_);
    // The single layer set holds layer L−1 after the forward; earlier layers are recomputed.
    if (checkpointing_ && i != L - 1)
      m_.layer_forward(i, acts_->residual(i + 1), acts_->residual(i), a, layer_lora(&lora_, i), acts_->pos(),
                       seg_mask(), training_);
    layer_backward(i, g.dres[1 - cur], g.dres[cur], a, g);
    cur = 1 - cur;
  }
  // g.dres[cur] = d embeddings: the embedding is frozen, so it goes nowhere.
}

// Mirrors Model::layer_forward, last op first. dy (N,C) = d x_out; dx (N,C) = d x_in.
void ModelBackward::layer_backward(int i, Tensor dx, Tensor dy, const LayerActs& a, const GradBufs& g) {
  Backend& be = m_.backend();
  const ModelConfig& c = m_.config();
  const LayerWeights w = m_.weights().layer(i);
  const LayerLora ll = layer_lora(&lora_, i);
  const int64_t N = B_ * T_, H = c.num_heads, Hkv = c.num_kv_heads, D = c.head_dim;
  auto lin_back = [&](Proj p, Tensor d_in, Tensor d_out, Tensor x, Tensor W) {
    const auto k = static_cast<size_t>(p);
    LoraGradScratch s = g.lora;
    if (!s.dxin.empty()) s.dxin = Tensor(s.dxin.data, s.dxin.dtype, {N, x.dim(-1)}, be.device());  // (N, I)
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
  be.rope_backward(g.dq.view({N, H, D}), acts_->pos(), m_.rope());
  be.rope_backward(g.dk.view({N, Hkv, D}), acts_->pos(), m_.rope());
  // Qwen3: back through q_norm / k_norm (frozen weights: d input only). d_attn is free after
  // attention_backward and holds each d(q_proj output) in turn (Hkv ≤ H).
  Tensor dq_proj = g.dq, dk_proj = g.dk;
  if (c.qk_norm) {
    dq_proj = g.d_attn.view({N * H, D});
    be.rmsnorm_backward(dq_proj, g.dq.view({N * H, D}), a.q_raw.view({N * H, D}), w.q_norm, a.q_rstd.view({N * H}));
  }
  lin_back(Proj::Q, g.d_norm, rows(dq_proj), a.attn_norm, w.q);
  if (c.qk_norm) {
    dk_proj = Tensor(g.d_attn.data, g.d_attn.dtype, {N * Hkv, D}, be.device());  // (N·Hkv, D)
    be.rmsnorm_backward(dk_proj, g.dk.view({N * Hkv, D}), a.k_raw.view({N * Hkv, D}), w.k_norm, a.k_rstd.view({N * Hkv}));
  }
  lin_back(Proj::K, g.tmp, rows(dk_proj), a.attn_norm, w.k);
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
