// The CUDA backend: the CPU backend's ops on an NVIDIA GPU (compute capability 8.0+).
// Activations F32 or BF16 in memory with fp32 arithmetic; weights F32, BF16 or F16; LoRA
// masters, gradients of parameters and optimizer state F32. GEMMs go through cuBLAS
// (cublasGemmEx, CUBLAS_COMPUTE_32F: fp32 accumulation, bf16 tensor cores for bf16 inputs,
// no TF32 for fp32 inputs so the F32 path keeps fp32 rounding bounds); the rest are the
// kernels of cuda_kernels.h. Everything runs on the default stream; every CUDA and cuBLAS
// call is checked and a failure throws Error naming the call.
#pragma once
#include <array>
#include <cstddef>
#include <memory>

#include "backend/backend.h"
#include "backend/cuda/cuda_kernels.h"

namespace lorafit {

class CudaBackend final : public Backend {
 public:
  CudaBackend();  // throws Error when no usable device is present
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string_view name() const override { return "cuda"; }
  Device device() const override { return Device::CUDA; }
  bool supports(Op op, DType act, DType weight) const override;

  void* alloc(size_t bytes) override;
  void free(void* p) override;
  void upload(void* dst, const void* host_src, size_t bytes) override;
  void download(void* host_dst, const void* src, size_t bytes) override;
  void sync() override;
  void convert(Tensor out, Tensor in) override;
  void dequantize_4bit(Tensor out, const Quant4View& w) override;

  void embedding_forward(Tensor out, Tensor ids, Tensor table) override;
  void rmsnorm_forward(Tensor out, Tensor rstd, Tensor x, Tensor w, float eps) override;
  void matmul(Tensor out, Tensor a, bool trans_a, Tensor b, bool trans_b, float alpha, float beta) override;
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
  void attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out,
                          Tensor lse, Tensor seg) override;
  void swiglu_backward(Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up) override;
  void lmhead_ce_backward(Tensor dx, Tensor dloss, Tensor x, Tensor w, Tensor targets, Tensor lse) override;

  void adamw(Tensor p, Tensor g, Tensor m, Tensor v, const AdamWParams& hp) override;
  double sum_squares(Tensor x) override;

 private:
  // Device scratch that grows on demand and lives as long as the backend. One slot per use,
  // so two live scratch buffers of one op never share memory.
  enum Slot { kConvA, kConvB, kOutF32, kLogits, kDlogits, kDxAcc, kCeState, kSmall, kSlots };
  void* scratch(Slot slot, size_t bytes);
  // Row-major out (M,N) = alpha·op(a)·op(b) + beta·out with explicit leading dimensions;
  // a and b of type `in`, out of type `ot` (F32, or `in`), fp32 accumulation.
  void gemm(void* out, cuda::ET ot, int64_t ldc, const void* a, int64_t lda, bool ta, const void* b, int64_t ldb,
            bool tb, cuda::ET in, int64_t M, int64_t N, int64_t K, float alpha, float beta);
  // Throws Error naming the first out-of-range element of v (device I32, n elements).
  int64_t first_out_of_range(const int32_t* v, int64_t n, int32_t hi, bool allow_ignore);
  const void* lmhead_prepare(const Tensor& x, const Tensor& w, const int32_t* tg, int64_t N, cuda::ET* ct);
  void lmhead_chunk_logits(float* logits, const void* xin, cuda::ET ct, const Tensor& w, int64_t v0, int64_t nc,
                           int64_t N, int64_t C, const void** wchunk);

  void* cublas_ = nullptr;  // cublasHandle_t (kept opaque so this header needs no cuBLAS include)
  int device_ = 0;
  std::array<void*, kSlots> scratch_{};
  std::array<size_t, kSlots> scratch_bytes_{};
};

}  // namespace lorafit
