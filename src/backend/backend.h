// The backend interface: memory, a capability query, and the ops of the model.
//
// Letters: B batch, T time, N = B·T rows, C hidden, O/I out/in features of a linear, H query
// heads, Hkv kv heads, D head dim, F ffn width, V vocab.
// Contract: ops write their outputs first in the argument list; activation outputs and
// activation gradients are overwritten (=); parameter gradients accumulate (+=).
// Tensors are contiguous row-major views on this backend's device. Activations are F32 or
// BF16 (one dtype per run, docs/precision.md); weights may be F32, BF16 or F16. Arithmetic is
// fp32 either way; with BF16 activations an op rounds where torch's bf16 op rounds (each op's
// BF16 line below, "bf16:"), so a bf16 run follows transformers under torch.autocast(bf16).
// Saved statistics (rstd, lse), losses and everything of the optimizer stay F32.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "formats/quant4.h"
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
  Convert,
  Dequantize4bit,
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
  // One line naming the kernel families this backend runs on this machine (logged at start-up).
  virtual std::string kernel_info() const { return std::string(name()); }
  // Whether `op` runs here with activations of `act` and weights of `weight` dtype.
  virtual bool supports(Op op, DType act, DType weight) const = 0;

  // ---- memory ----
  virtual void* alloc(size_t bytes) = 0;  // zero-filled
  virtual void free(void* p) = 0;
  virtual void upload(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void download(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void sync() = 0;

  // out = in converted to out's dtype (F32 or BF16; in F32, BF16 or F16), rounding to nearest
  // even; same numel. A same-dtype convert is a copy.
  virtual void convert(Tensor out, Tensor in) = 0;

  // out (O,I) F32 or BF16 = the 4-bit weight w (formats/quant4.h) dequantized as bitsandbytes'
  // dequantize_4bit: code4[q]·absmax of its 64-block in fp32 (a nested absmax is first
  // code8[q8]·nested_absmax + offset in fp32), rounded once to out's dtype. The quantized
  // linears of a QLoRA run dequantize each layer into such a scratch before their GEMMs.
  // supports(Op::Dequantize4bit, out dtype, DType::U8).
  virtual void dequantize_4bit(Tensor out, const Quant4View& w) = 0;

  // ---- forward ops ----
  // out (N,C) = table[ids] ; ids (N) I32, table (V,C)
  virtual void embedding_forward(Tensor out, Tensor ids, Tensor table) = 0;
  // out (N,C) = x · rsqrt(mean(x²) + eps) · w ; rstd (N) F32 is saved for the backward (may be empty)
  // bf16: out = bf16(w · bf16(x·rstd)) (Qwen2RMSNorm: normalise in fp32, .to(bf16), × weight)
  virtual void rmsnorm_forward(Tensor out, Tensor rstd, Tensor x, Tensor w, float eps) = 0;
  // out (M,N) = alpha · op(a) · op(b) + beta · out, op(t) = tᵀ when trans. A linear layer is
  // matmul(out, x, false, W, true, 1, 0) with W (O,I) as Hugging Face stores it.
  // bf16 (a is BF16): a bf16 GEMM as autocast runs it: b is used rounded to bf16 (an F32 b such
  // as a LoRA master is rounded on the fly), products exact, sums fp32, and a BF16 out is
  // rounded once: out = bf16(alpha·op(a)·op(b) + beta·out). An F32 out is not rounded.
  virtual void matmul(Tensor out, Tensor a, bool trans_a, Tensor b, bool trans_b, float alpha,
                      float beta) = 0;
  // out (N,O) += bias (O). bf16: out = bf16(out + bias).
  virtual void add_bias(Tensor out, Tensor bias) = 0;
  // x (N,H,D) rotated in place by pos (N) I32: rotate_half pairing (i with i + D/2), angle
  // pos·rope.inv_freq[i] in fp32, cos and sin times rope.attention_scaling (formats/rope.h).
  // bf16: cos/sin (scaled in fp32) rounded to bf16 (the rotary embedding's .to(x.dtype)), then
  // x' = bf16(bf16(x·cos) + bf16(rotate_half(x)·sin)) (three bf16 ops of apply_rotary_pos_emb).
  virtual void rope_forward(Tensor x, Tensor pos, const RopeTable& rope) = 0;
  // Causal GQA attention, scale D^-0.5. q (B,T,H,D), k/v (B,T,Hkv,D), out (B,T,H,D),
  // lse (B,H,T) F32 log-sum-exp of the scaled scores (saved for the backward; may be empty).
  // seg (B,T) I32 or empty: a query attends only to earlier keys with the same seg value
  // (packed samples); padding needs no mask because attention is causal and right-padded.
  virtual void attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor seg) = 0;
  // out (N,F) = silu(gate) · up. bf16: out = bf16(bf16(silu(gate)) · up) (act_fn, then the product)
  virtual void swiglu_forward(Tensor out, Tensor gate, Tensor up) = 0;
  // out = a + b (out may alias a or b); dtypes may differ (e.g. an F32 gradient += a BF16
  // piece); the sum is fp32, rounded once to out's dtype.
  virtual void add(Tensor out, Tensor a, Tensor b) = 0;
  // x *= s (rounded to x's dtype); s == 0 writes zeros (as BLAS beta = 0 ignores the old values).
  virtual void scale(Tensor x, float s) = 0;
  // out = x · mask / (1 − p), mask[i] = keep(seed, i) with probability 1 − p from a
  // counter-based hash, so the backward is the same call on the gradient with the same seed.
  // bf16: out = bf16(x · mask / (1 − p)) (PEFT drops in fp32; the LoRA A GEMM then rounds).
  virtual void dropout(Tensor out, Tensor x, float p, uint64_t seed) = 0;
  // ---- DoRA (PEFT use_dora; the arithmetic around the GEMMs of lora/lora_linear.cpp) ----
  // n (R) F32 = ‖W_r + s·ba_r‖ per row r, W (R,I) F32/BF16/F16, ba (R,I) F32 = B·A for those rows:
  // v = w + s·ba in fp32, squares summed in double, rounded once. bf16_lora (PEFT under autocast,
  // lora_weight a bf16 GEMM output and scaling·lora_weight bf16): v = w + bf16(s·bf16(ba)).
  virtual void dora_norm(Tensor n, Tensor W, Tensor ba, float s, bool bf16_lora) = 0;
  // y (N,O) += DoRA's terms, c = m/n per column (m, n (O) F32), t1 = xd·Wᵀ, t2 = xa·Bᵀ (N,O):
  // F32: y = (y + (c − 1)·t1) + (c·t2)·s, each op rounded in fp32 in this order.
  // BF16 (y, t1, t2 BF16): y = bf16(y + ((c − 1)·t1 + (c·t2)·s)), the inner ops in fp32.
  virtual void dora_combine(Tensor y, Tensor t1, Tensor t2, Tensor m, Tensor n, float s) = 0;
  // DoRA backward's elementwise step for dy (N,O), c = m/n; dm (O) F32 accumulates (+=):
  // F32 (a, b F32): on entry a = xd·Wᵀ + s·xa·Bᵀ; dm += Σ_rows dy·a / n (double sum); on exit
  //   a = c·dy (the branch's gradient, before s) and b = (c − 1)·dy (the W term's).
  // BF16 (dy, a, b BF16): on entry a = t1 = xd·Wᵀ, b = t2 = xa·Bᵀ; with g = dy, gs = g·s (fp32):
  //   dm += (fp32(Σ_rows g·t1) + fp32(Σ_rows gs·t2)) / n; on exit a = bf16(g·(c − 1)), b = bf16(gs·c).
  virtual void dora_backward_scale(Tensor dm, Tensor a, Tensor b, Tensor dy, Tensor m, Tensor n, float s) = 0;

  // Fused lm-head + cross-entropy in vocabulary chunks (never the (N,V) fp32 logits):
  // loss (N) F32 = lse_n − x_n·w[target_n] for target_n ≠ −100, 0 otherwise; lse (N) F32.
  // x (N,C), w (V,C), targets (N) I32.
  // bf16: the logits are rounded to bf16 (the bf16 lm_head output), then .float() and the
  // cross-entropy in fp32, as transformers' ForCausalLMLoss.
  virtual void lmhead_ce_forward(Tensor loss, Tensor lse, Tensor x, Tensor w, Tensor targets) = 0;

  // ---- KV cache (generation) ----
  // k_cache/v_cache (B,S,Hkv,D), S = capacity: rows [p0, p0+T) of each batch row = k/v (B,T,Hkv,D).
  // The cache has the activation dtype (a BF16 cache for a bf16 run).
  virtual void kv_cache_write(Tensor k_cache, Tensor v_cache, Tensor k, Tensor v, int64_t p0) = 0;
  // Causal GQA attention of T new queries at positions p0..p0+T−1 over the cache: q (B,T,H,D),
  // k_cache/v_cache (B,S,Hkv,D) with S ≥ p0+T, out (B,T,H,D); query t attends keys s ≤ p0+t.
  // The arithmetic of attention_forward per query, so a decode step equals the full forward's
  // row for the same q/k/v exactly (bf16 too: the same rounding of P as attention_forward).
  virtual void attention_decode(Tensor out, Tensor q, Tensor k_cache, Tensor v_cache, int64_t p0) = 0;

  // ---- backward ops ----
  // bf16: g = bf16(dout·w) (the weight product's backward), dx = bf16(fp32 backward of the norm).
  virtual void rmsnorm_backward(Tensor dx, Tensor dout, Tensor x, Tensor w, Tensor rstd) = 0;
  // dbias (O) += Σ_n dout (N,O)
  virtual void bias_grad(Tensor dbias, Tensor dout) = 0;
  // dx (N,H,D) rotated back in place (rotation by −angle, times attention_scaling). bf16: with
  // bf16 cos/sin, dx1' = bf16(bf16(dx1·cos) + bf16(dx2·sin)), dx2' = bf16(bf16(dx2·cos) − bf16(dx1·sin)).
  virtual void rope_backward(Tensor dx, Tensor pos, const RopeTable& rope) = 0;
  // bf16: the fp32 backward of the bf16 inputs (P recomputed from lse), dq/dk/dv rounded once.
  virtual void attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k,
                                  Tensor v, Tensor out, Tensor lse, Tensor seg) = 0;
  // bf16: a = bf16(silu(gate)); dup = bf16(dout·a); dgate = bf16(bf16(dout·up) · silu'(gate)).
  virtual void swiglu_backward(Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up) = 0;
  // dx (N,C) = Σ_v dloss_n · (softmax(x_n·wᵀ)_v − [v = target_n]) · w_v ; dloss (N) F32
  // bf16: softmax of the bf16-rounded logits; dlogits rounded to bf16 (the .float() cast's
  // backward) before the GEMM with w; dx summed in fp32 and rounded once.
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
