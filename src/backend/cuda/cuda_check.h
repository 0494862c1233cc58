// Checked CUDA / cuBLAS calls and the tensor checks shared by the CudaBackend .cpp files.
// A failed CUDA call is an Error (the message names the call, where, and CUDA's words);
// a tensor of the wrong dtype, device or shape is our bug (LF_CHECK), as on the CPU backend.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "backend/cuda/cuda_kernels.h"
#include "tensor/tensor.h"
#include "util/error.h"

namespace lorafit::cuda {

inline void check_cuda(cudaError_t e, const char* call, const char* file, int line) {
  if (e != cudaSuccess)
    throw Error("CUDA error in {} ({}:{}): {}: {}", call, file, line, cudaGetErrorName(e), cudaGetErrorString(e));
}
inline void check_cublas(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw Error("cuBLAS error in {} ({}:{}): {}: {}", call, file, line, cublasGetStatusName(s),
                cublasGetStatusString(s));
}

// The activation element type of a CUDA tensor (F32 or BF16).
inline ET act_type(const Tensor& t, const char* what) {
  LF_CHECK(t.data != nullptr && t.device == Device::CUDA && (t.dtype == DType::F32 || t.dtype == DType::BF16),
           "{}: expected a CUDA F32 or BF16 tensor, got {} {} on {}", what, dtype_name(t.dtype), t.shape_str(),
           t.device == Device::CUDA ? "cuda" : "cpu");
  return t.dtype == DType::F32 ? ET::F32 : ET::BF16;
}
// The element type of a CUDA weight (F32, BF16 or F16).
inline ET weight_type(const Tensor& t, const char* what) {
  LF_CHECK(t.data != nullptr && t.device == Device::CUDA &&
               (t.dtype == DType::F32 || t.dtype == DType::BF16 || t.dtype == DType::F16),
           "{}: expected a CUDA F32, BF16 or F16 weight, got {} {}", what, dtype_name(t.dtype), t.shape_str());
  return t.dtype == DType::F32 ? ET::F32 : t.dtype == DType::BF16 ? ET::BF16 : ET::F16;
}
inline void check_dev(const Tensor& t, DType want, const char* what) {
  LF_CHECK(t.data != nullptr && t.device == Device::CUDA && t.dtype == want, "{}: expected a CUDA {} tensor, got {} {}",
           what, dtype_name(want), dtype_name(t.dtype), t.shape_str());
}
inline size_t et_size(ET t) { return t == ET::F32 ? 4 : 2; }
inline DType et_dtype(ET t) { return t == ET::F32 ? DType::F32 : t == ET::BF16 ? DType::BF16 : DType::F16; }

}  // namespace lorafit::cuda

#define LF_CUDA(call) ::lorafit::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define LF_CUBLAS(call) ::lorafit::cuda::check_cublas((call), #call, __FILE__, __LINE__)
