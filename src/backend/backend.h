// The backend interface: memory, a capability query, and the ops of the model.
//
// Letters: B batch, T time, N = B·T rows, C hidden, O/I out/in features of a linear, H query
// heads, Hkv kv heads, D head dim, F ffn width, V vocab.
// Contract: ops write their outputs first in the argument list; activation outputs and
// activation gradients are overwritten (=); parameter gradients accumulate (+=).
// Tensors are contiguous row-major views on this backend's device. Activations are F32 on
// the CPU backend (BF16 on CUDA); weights may be F32, BF16 or F16 on either.
#pragma once
#include <cstdint>
#include <memory>
#include <string_view>

#include "formats/rope.h"
#include "tensor/tensor.h"

namespace lorafit {

enum class Op {
  Embedding,
  RmsNormForward,
  RmsNormBackward,
  Matmul,
  AddBias,
  BiasGrad,
  RopeForward,
  RopeBackward,
  AttentionForward,
  AttentionBackward,
  SwigluForward,
  SwigluBackward,
  Add,
  Scale,
  Dropout,
  LmHeadCeForward,
  LmHeadCeBackward,
  AdamW,
  SumSquares,
  KvCacheWrite,
  AttentionDecode,
};

struct AdamWParams {
  // double, as torch keeps them (Python floats): 1 − 0.999f is not 1 − 0.999 to fp32 precision
  double lr = 1e-4, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  int64_t step = 1;  // 1-based, for bias correction
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual Device device() const = 0;
  // Whether `op` runs here with activations of `act` and weights of `weight` dtype.
  virtual bool supports(Op op, DType act, DType weight) const = 0;

  // ---- memory ----
  virtual void* alloc(size_t bytes) = 0;  // zero-filled
  virtual void free(void* p) = 0;
  virtual void upload(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void download(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void sync() = 0;

  // ---- forward ops ----
  // out (N,C) = table[ids] ; ids (N) I32, table (V,C)
  virtual void embedding_forward(Tensor out, Tensor ids, Tensor table) = 0;
  // out (N,C) = x · rsqrt(mean(x²) + eps) · w ; rstd (N) F32 is saved for the backward (may be empty)
  virtual void rmsnorm_forward(Tensor out, Tensor rstd, Tensor x, Tensor w, float eps) = 0;
  // out (M,N) = alpha · op(a) · op(b) + beta · out, op(t) = tᵀ when trans. A linear layer is
  // matmul(out, x, false, W, true, 1, 0) with W (O,I) as Hugging Face stores it.
  virtual void matmul(Tensor out, Tensor a, bool trans_a, Tensor b, bool trans_b, float alpha,
                      float beta) = 0;
  // out (N,O) += bias (O)
  virtual void add_bias(Tensor out, Tensor bias) = 0;
  // x (N,H,D) rotated in place by pos (N) I32: rotate_half pairing (i with i + D/2), angle
  // pos·rope.inv_freq[i] in fp32, cos and sin times rope.attention_scaling (formats/rope.h).
  virtual void rope_forward(Tensor x, Tensor pos, const RopeTable& rope) = 0;
  // Causal GQA attention, scale D^-0.5. q (B,T,H,D), k/v (B,T,Hkv,D), out (B,T,H,D),
  // lse (B,H,T) F32 log-sum-exp of the scaled scores (saved for the backward; may be empty).
  // seg (B,T) I32 or empty: a query attends only to earlier keys with the same seg value
  // (packed samples); padding needs no mask because attention is causal and right-padded.
  virtual void attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor seg) = 0;
  // out (N,F) = silu(gate) · up
  virtual void swiglu_forward(Tensor out, Tensor gate, Tensor up) = 0;
  // out = a + b (out may alias a or b)
  virtual void add(Tensor out, Tensor a, Tensor b) = 0;
  // x *= s
  virtual void scale(Tensor x, float s) = 0;
  // out = x · mask / (1 − p), mask[i] = keep(seed, i) with probability 1 − p from a
  // counter-based hash, so the backward is the same call on the gradient with the same seed.
  virtual void dropout(Tensor out, Tensor x, float p, uint64_t seed) = 0;
  // Fused lm-head + cross-entropy in vocabulary chunks (never the (N,V) fp32 logits):
  // loss (N) F32 = lse_n − x_n·w[target_n] for target_n ≠ −100, 0 otherwise; lse (N) F32.
  // x (N,C), w (V,C), targets (N) I32.
  virtual void lmhead_ce_forward(Tensor loss, Tensor lse, Tensor x, Tensor w, Tensor targets) = 0;

  // ---- KV cache (generation) ----
  // k_cache/v_cache (B,S,Hkv,D), S = capacity: rows [p0, p0+T) of each batch row = k/v (B,T,Hkv,D).
  virtual void kv_cache_write(Tensor k_cache, Tensor v_cache, Tensor k, Tensor v, int64_t p0) = 0;
  // Causal GQA attention of T new queries at positions p0..p0+T−1 over the cache: q (B,T,H,D),
  // k_cache/v_cache (B,S,Hkv,D) with S ≥ p0+T, out (B,T,H,D); query t attends keys s ≤ p0+t.
  // The arithmetic of attention_forward per query, so a decode step equals the full forward's
  // row for the same q/k/v exactly.
  virtual void attention_decode(Tensor out, Tensor q, Tensor k_cache, Tensor v_cache, int64_t p0) = 0;

  // ---- backward ops ----
  virtual void rmsnorm_backward(Tensor dx, Tensor dout, Tensor x, Tensor w, Tensor rstd) = 0;
  // dbias (O) += Σ_n dout (N,O)
  virtual void bias_grad(Tensor dbias, Tensor dout) = 0;
  // dx (N,H,D) rotated back in place (rotation by −angle, times attention_scaling)
  virtual void rope_backward(Tensor dx, Tensor pos, const RopeTable& rope) = 0;
  virtual void attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k,
                                  Tensor v, Tensor out, Tensor lse, Tensor seg) = 0;
  virtual void swiglu_backward(Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up) = 0;
  // dx (N,C) = Σ_v dloss_n · (softmax(x_n·wᵀ)_v − [v = target_n]) · w_v ; dloss (N) F32
  virtual void lmhead_ce_backward(Tensor dx, Tensor dloss, Tensor x, Tensor w, Tensor targets,
                                  Tensor lse) = 0;

  // ---- optimizer over flat F32 buffers ----
  // torch AdamW: p -= lr·wd·p; m,v updated; p -= lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps)
  virtual void adamw(Tensor p, Tensor g, Tensor m, Tensor v, const AdamWParams& hp) = 0;
  // Σ x² in double (for the global gradient norm)
  virtual double sum_squares(Tensor x) = 0;
};

// "cpu" or "cuda"; throws Error when the backend is not built or no device is present.
std::unique_ptr<Backend> make_backend(std::string_view name);

}  // namespace lorafit
