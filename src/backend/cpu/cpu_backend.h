// The CPU backend: the specification every other backend is checked against. Plain loops
// (double accumulators where a sum is long) plus oneDNN for GEMM (cpu/gemm.h); computes in
// fp32, reads F32/BF16/F16 weights; BF16 activations go through backend_bf16.h (rounded where
// torch rounds). Each op forwards to a templated kernel in cpu/kernels_*.h,
// which the gradient checks also instantiate with double, or to its vectorized twin in
// cpu/simd.h (Highway, runtime dispatch), which the simd test checks against the plain loop.
#pragma once
#include "backend/backend.h"

namespace lorafit {

class CpuBackend final : public Backend {
 public:
  std::string_view name() const override { return "cpu"; }
  Device device() const override { return Device::CPU; }
  bool supports(Op op, DType act, DType weight) const override;
  // "cpu kernels: matmul oneDNN 2.6.3 (max ISA ...): f32 brg:..., bf16 brg:...; vector loops Highway AVX3; bf16 dot ..."
  std::string kernel_info() const override;

  void* alloc(size_t bytes) override;
  void free(void* p) override;
  void upload(void* dst, const void* host_src, size_t bytes) override;
  void download(void* host_dst, const void* src, size_t bytes) override;
  void sync() override {}
  void convert(Tensor out, Tensor in) override;
  void dequantize_4bit(Tensor out, const Quant4View& w) override;

  void embedding_forward(Tensor out, Tensor ids, Tensor table) override;
  void rmsnorm_forward(Tensor out, Tensor rstd, Tensor x, Tensor w, float eps) override;
  void matmul(Tensor out, Tensor a, bool trans_a, Tensor b, bool trans_b, float alpha,
              float beta) override;
  void add_bias(Tensor out, Tensor bias) override;
  void rope_forward(Tensor x, Tensor pos, const RopeTable& rope) override;
  void attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor seg) override;
  void swiglu_forward(Tensor out, Tensor gate, Tensor up) override;
  void add(Tensor out, Tensor a, Tensor b) override;
  void scale(Tensor x, float s) override;
  void dropout(Tensor out, Tensor x, float p, uint64_t seed) override;
  void lmhead_ce_forward(Tensor loss, Tensor lse, Tensor x, Tensor w, Tensor targets) override;
  void dora_norm(Tensor n, Tensor W, Tensor ba, float s, bool bf16_lora) override;
  void dora_combine(Tensor y, Tensor t1, Tensor t2, Tensor m, Tensor n, float s) override;
  void dora_backward_scale(Tensor dm, Tensor a, Tensor b, Tensor dy, Tensor m, Tensor n, float s) override;

  void kv_cache_write(Tensor k_cache, Tensor v_cache, Tensor k, Tensor v, int64_t p0) override;
  void attention_decode(Tensor out, Tensor q, Tensor k_cache, Tensor v_cache, int64_t p0) override;

  void rmsnorm_backward(Tensor dx, Tensor dout, Tensor x, Tensor w, Tensor rstd) override;
  void bias_grad(Tensor dbias, Tensor dout) override;
  void rope_backward(Tensor dx, Tensor pos, const RopeTable& rope) override;
  void attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v,
                          Tensor out, Tensor lse, Tensor seg) override;
  void swiglu_backward(Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up) override;
  void lmhead_ce_backward(Tensor dx, Tensor dloss, Tensor x, Tensor w, Tensor targets,
                          Tensor lse) override;

  void adamw(Tensor p, Tensor g, Tensor m, Tensor v, const AdamWParams& hp) override;
  double sum_squares(Tensor x) override;
};

}  // namespace lorafit
