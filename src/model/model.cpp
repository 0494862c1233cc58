#include "model/model.h"

#include "lora/lora_mix.h"
#include "lora/lora_params.h"
#include "util/error.h"
#include "util/rng.h"

namespace lorafit {

namespace {

// (N, ·) view of an activation for the linear layers: (B,T,H,D) → (N, H·D).
Tensor rows_of(Tensor t, int64_t N) { return t.view({N, t.numel() / N}); }

// A device buffer freed on scope exit (small per-call buffers of token_nll).
struct Scoped {
  Backend& be;
  void* p;
  Scoped(Backend& b, size_t bytes) : be(b), p(b.alloc(bytes)) {}
  ~Scoped() { be.free(p); }
  Scoped(const Scoped&) = delete;
  Scoped& operator=(const Scoped&) = delete;
};

}  // namespace

Model::Model(Backend& be, const fs::path& dir, DType act, const QuantConfig& quant) : be_(be), dir_(dir), act_(act) {
  LF_CHECK(act == DType::F32 || act == DType::BF16, "activation dtype {}", dtype_name(act));
  if (!fs::is_directory(dir)) throw Error("model folder {} does not exist (or is not a folder)", dir.string());
  const fs::path config = dir / "config.json";
  if (!fs::exists(config))
    throw Error("{}: no config.json; expected a Hugging Face model folder (config.json + model.safetensors)",
                dir.string());
  cfg_ = load_model_config(config);
  rope_ = rope_table(cfg_.rope, cfg_.head_dim, cfg_.max_position_embeddings);
  weights_ = std::make_unique<ModelWeights>(be, cfg_, dir, quant, act);
  checkpoint_dtype_ = weights_->dtype();
  if (act == DType::BF16) weights_->round_to_bf16();
}

LayerLora layer_lora(const LoraParams* lora, int layer) {
  LayerLora ll{};
  if (lora)
    for (int p = 0; p < kNumProj; ++p) ll[static_cast<size_t>(p)] = lora->weights(layer, static_cast<Proj>(p));
  return ll;
}

LayerActs layer_acts(const ActivationArena& acts, int i, uint64_t seed) {
  LayerActs a = acts.layer(i);
  for (int p = 0; p < kNumProj; ++p)
    a.lora[static_cast<size_t>(p)].dropout_seed = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(i * kNumProj + p)));
  return a;
}

std::optional<DType> parse_act_dtype(std::string_view c, std::string_view what) {
  if (c == "auto") return std::nullopt;
  if (c == "bf16" || c == "bfloat16") return DType::BF16;
  if (c == "f32" || c == "fp32" || c == "float32") return DType::F32;
  throw Error("{}: \"{}\" is not a dtype; use auto, bf16 or f32", what, c);
}

DType inference_act_dtype(std::string_view choice, std::string_view device, const fs::path& dir) {
  if (auto d = parse_act_dtype(choice, "--dtype")) return *d;
  if (device != "cuda" || !fs::exists(dir / "config.json")) return DType::F32;
  return load_model_config(dir / "config.json").torch_dtype == "bfloat16" ? DType::BF16 : DType::F32;
}

void Model::check_input(std::span<const int32_t> ids, int64_t T, const std::string& what) const {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= cfg_.vocab_size)
      throw Error("{}: token id {} at position {} is outside the vocabulary of {} (vocab_size {})", what, ids[i], i,
                  (dir_ / "config.json").string(), cfg_.vocab_size);
  if (cfg_.sliding_window && T > *cfg_.sliding_window)
    throw Error("{}: {} tokens exceed the sliding_window ({}) of {}; lorafit does not implement sliding-window "
                "attention, so it refuses sequences longer than the window",
                what, T, *cfg_.sliding_window, (dir_ / "config.json").string());
}

void Model::forward(ActivationArena& acts, const LoraParams* lora, bool training, KvCache* cache,
                    std::span<const KvRow> rows, Tensor seg, uint64_t dropout_seed) const {
  run_layers(acts, lora, nullptr, training, cache, rows, seg, dropout_seed);
}

void Model::forward(ActivationArena& acts, const LoraMix& mix, KvCache& cache, std::span<const KvRow> rows) const {
  LF_CHECK(!rows.empty(), "forward with per-row adapters needs KV rows");
  run_layers(acts, nullptr, &mix, false, &cache, rows, Tensor(), 0);
}

void Model::run_layers(ActivationArena& acts, const LoraParams* lora, const LoraMix* mix, bool training,
                       KvCache* cache, std::span<const KvRow> rows, Tensor seg, uint64_t dropout_seed) const {
  const int64_t N = acts.B() * acts.T();
  LF_CHECK(acts.act_dtype() == act_, "forward: a {} arena for a {} model", dtype_name(acts.act_dtype()),
           dtype_name(act_));
  LF_CHECK(!cache || !rows.empty() || (cache->B() == acts.B() && cache->length() + acts.T() <= cache->capacity()),
           "forward: {} tokens after {} cached of {}", acts.T(), cache ? cache->length() : 0,
           cache ? cache->capacity() : 0);
  LF_CHECK(rows.empty() || (cache && static_cast<int64_t>(rows.size()) == acts.B()), "forward: {} KV rows for B={}",
           rows.size(), acts.B());
  for (const KvRow& r : rows)
    LF_CHECK(r.slot >= 0 && r.slot < cache->B() && r.p0 >= 0 && r.p0 + acts.T() <= cache->capacity(),
             "forward: KV row {} at {} + {} of {}", r.slot, r.p0, acts.T(), cache->capacity());
  be_.embedding_forward(acts.residual(0), acts.ids().view({N}), weights_->embed());
  for (int i = 0; i < cfg_.num_layers; ++i) {
    KvLayer kv = cache ? cache->layer(i) : KvLayer{};
    kv.rows = rows;
    layer_forward(i, acts.residual(i + 1), acts.residual(i), layer_acts(acts, i, dropout_seed), layer_lora(lora, i),
                  acts.pos(), seg, training, cache ? &kv : nullptr, mix);
  }
  if (cache && rows.empty()) cache->advance(acts.T());
  be_.rmsnorm_forward(acts.hidden(), acts.final_rstd(), acts.residual(cfg_.num_layers), weights_->final_norm(),
                      static_cast<float>(cfg_.rms_norm_eps));
}

void Model::layer_forward(int i, Tensor x_out, Tensor x_in, const LayerActs& a, const LayerLora& lora, Tensor pos,
                          Tensor seg, bool training, const KvLayer* kv, const LoraMix* mix) const {
  LF_CHECK(x_out.data != x_in.data, "layer_forward: x_out aliases x_in");
  const LayerWeights w = weights_->layer(i);
  const int64_t N = x_in.dim(0);
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  std::array<LoraSaved, kNumProj> saved = a.lora;  // views; the trainer sets dropout seeds there
  auto linear = [&](Proj p, Tensor y, Tensor x, Tensor W, Tensor bias) {
    const auto k = static_cast<size_t>(p);
    if (mix)
      linear_forward(be_, y, x, W, bias, mix->rows(i, p), mix->scratch());
    else
      linear_forward(be_, y, x, W, bias, lora[k], &saved[k], training);
  };

  // attention block: h = x + o(attn(rope(q(n)), rope(k(n)), v(n))), n = rmsnorm(x); Qwen3
  // normalises each head of q and k (q_norm, k_norm over D) before the rotation.
  be_.rmsnorm_forward(a.attn_norm, a.attn_rstd, x_in, w.attn_norm, eps);
  const bool qk_norm = cfg_.qk_norm;
  linear(Proj::Q, rows_of(qk_norm ? a.q_raw : a.q, N), a.attn_norm, w.q, w.q_bias);
  linear(Proj::K, rows_of(qk_norm ? a.k_raw : a.k, N), a.attn_norm, w.k, w.k_bias);
  linear(Proj::V, rows_of(a.v, N), a.attn_norm, w.v, w.v_bias);
  if (qk_norm) {
    const int64_t D = cfg_.head_dim;
    be_.rmsnorm_forward(a.q.view({a.q.numel() / D, D}), a.q_rstd.view({a.q.numel() / D}), a.q_raw.view({a.q.numel() / D, D}), w.q_norm, eps);
    be_.rmsnorm_forward(a.k.view({a.k.numel() / D, D}), a.k_rstd.view({a.k.numel() / D}), a.k_raw.view({a.k.numel() / D, D}), w.k_norm, eps);
  }
  be_.rope_forward(a.q, pos, rope_);
  be_.rope_forward(a.k, pos, rope_);
  if (kv && !kv->rows.empty()) {  // batched generation: each row into its own cache row, at its own length
    for (int64_t r = 0; r < static_cast<int64_t>(kv->rows.size()); ++r) {
      const KvRow& row = kv->rows[static_cast<size_t>(r)];
      const Tensor kc = kv->k.rows(row.slot, row.slot + 1), vc = kv->v.rows(row.slot, row.slot + 1);  // (1, S, Hkv, D)
      be_.kv_cache_write(kc, vc, a.k.rows(r, r + 1), a.v.rows(r, r + 1), row.p0);
      be_.attention_decode(a.attn.rows(r, r + 1), a.q.rows(r, r + 1), kc, vc, row.p0);
    }
  } else if (kv) {  // generation: append this step's keys/values, attend over every cached position
    be_.kv_cache_write(kv->k, kv->v, a.k, a.v, kv->p0);
    be_.attention_decode(a.attn, a.q, kv->k, kv->v, kv->p0);
  } else {
    be_.attention_forward(a.attn, a.lse, a.q, a.k, a.v, seg);
  }
  linear(Proj::O, a.attn_proj, rows_of(a.attn, N), w.o, w.o_bias);
  be_.add(a.resid_mid, x_in, a.attn_proj);

  // MLP block: out = h + down(silu(gate(m)) · up(m)), m = rmsnorm(h)
  be_.rmsnorm_forward(a.mlp_norm, a.mlp_rstd, a.resid_mid, w.mlp_norm, eps);
  linear(Proj::Gate, a.gate, a.mlp_norm, w.gate, Tensor());
  linear(Proj::Up, a.up, a.mlp_norm, w.up, Tensor());
  be_.swiglu_forward(a.mlp_act, a.gate, a.up);
  linear(Proj::Down, a.mlp_out, a.mlp_act, w.down, Tensor());
  be_.add(x_out, a.resid_mid, a.mlp_out);
}

void Model::logits(Tensor out, Tensor rows) const {
  if (rows.dtype != DType::BF16) {
    be_.matmul(out, rows, false, weights_->lm_head(), true, 1.f, 0.f);
    return;
  }
  Scoped z(be_, static_cast<size_t>(out.numel()) * 2);  // (R, V) bf16 logits
  const Tensor z16(z.p, DType::BF16, {out.dim(0), out.dim(1)}, be_.device());
  be_.matmul(z16, rows, false, weights_->lm_head(), true, 1.f, 0.f);
  be_.convert(out, z16);
}

std::vector<double> token_nll(const Model& m, const std::vector<int32_t>& ids) {
  const int64_t n = static_cast<int64_t>(ids.size());
  LF_CHECK(n >= 2, "token_nll needs at least 2 ids");
  ActivationArena acts(m.backend(), m.config(), 1, n, m.config().num_layers, nullptr, false, m.act_dtype());
  acts.set_tokens(ids);
  m.forward(acts);
  return token_nll_from_hidden(m, acts.hidden(), ids);
}

std::vector<double> token_nll_from_hidden(const Model& m, Tensor hidden, const std::vector<int32_t>& ids) {
  const int64_t R = static_cast<int64_t>(ids.size()) - 1;  // row i predicts ids[i + 1]
  LF_CHECK(R >= 1 && hidden.dim(0) == R + 1, "hidden {} for {} ids", hidden.shape_str(), ids.size());
  Backend& be = m.backend();
  Scoped loss(be, R * 4), lse(be, R * 4), targets(be, R * 4);
  be.upload(targets.p, ids.data() + 1, static_cast<size_t>(R) * 4);
  be.lmhead_ce_forward(Tensor(loss.p, DType::F32, {R}, be.device()), Tensor(lse.p, DType::F32, {R}, be.device()),
                       hidden.rows(0, R), m.weights().lm_head(), Tensor(targets.p, DType::I32, {R}, be.device()));
  std::vector<float> host(static_cast<size_t>(R));
  be.sync();
  be.download(host.data(), loss.p, host.size() * 4);
  return {host.begin(), host.end()};
}

}  // namespace lorafit
