// The CPU backend's BF16-activation ops (backend.h "bf16:" lines; docs/precision.md). Each
// CpuBackend op whose activations are BF16 forwards here first thing. The plain ones widen
// their BF16 operands to fp32, run the fp32 op of the same backend and round the outputs
// once; the ops where torch rounds in between (RMSNorm, RoPE, SwiGLU, attention's P, the
// lm-head logits) have their own loops here. fp32 runs never reach this file, so they stay
// bit-identical. The GEMMs are native bf16 (CpuBackend::matmul → cpu::gemm: bf16 operands, fp32
// accumulation); a faster kernel replaces a function here one by one.
#pragma once
#include <initializer_list>

#include "backend/backend.h"

namespace lorafit {
class CpuBackend;
}

namespace lorafit::cpu_bf16 {

// Whether any of the tensors is BF16 (the op then runs here).
inline bool any(std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (!t->empty() && t->dtype == DType::BF16) return true;
  return false;
}

void convert(Tensor out, Tensor in);
// Throws Error for a target outside [0, V) that is not the ignore index −100 (shared with
// the fp32 lm-head ops in backend_backward.cpp).
void check_lmhead_targets(const int32_t* t, int64_t N, int64_t V);
void embedding_forward(CpuBackend& be, Tensor out, Tensor ids, Tensor table);
void rmsnorm_forward(CpuBackend& be, Tensor out, Tensor rstd, Tensor x, Tensor w, float eps);
// An F32 a with a BF16 out: the fp32 GEMM, its result rounded once. (A BF16 a runs the native
// bf16 GEMM of CpuBackend::matmul: cpu/gemm.h.)
void matmul_f32_rounded(CpuBackend& be, Tensor out, Tensor a, bool trans_a, Tensor b, bool trans_b, float alpha,
                        float beta);
void add_bias(CpuBackend& be, Tensor out, Tensor bias);
void rope(Tensor x, Tensor pos, const RopeTable& rope, int sign);  // sign −1: the backward
void attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor seg);
void attention_decode(Tensor out, Tensor q, Tensor k_cache, Tensor v_cache, int64_t p0);
void swiglu_forward(Tensor out, Tensor gate, Tensor up);
void add(CpuBackend& be, Tensor out, Tensor a, Tensor b);
void scale(Tensor x, float s);
void dropout(CpuBackend& be, Tensor out, Tensor x, float p, uint64_t seed);
void lmhead_ce_forward(CpuBackend& be, Tensor loss, Tensor lse, Tensor x, Tensor w, Tensor targets);
void kv_cache_write(Tensor k_cache, Tensor v_cache, Tensor k, Tensor v, int64_t p0);
void rmsnorm_backward(CpuBackend& be, Tensor dx, Tensor dout, Tensor x, Tensor w, Tensor rstd);
void bias_grad(CpuBackend& be, Tensor dbias, Tensor dout);
void attention_backward(CpuBackend& be, Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v,
                        Tensor out, Tensor lse, Tensor seg);
void swiglu_backward(Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up);
void lmhead_ce_backward(CpuBackend& be, Tensor dx, Tensor dloss, Tensor x, Tensor w, Tensor targets, Tensor lse);

}  // namespace lorafit::cpu_bf16
