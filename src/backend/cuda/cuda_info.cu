// Placeholder translation unit so that -DLORAFIT_CUDA=ON compiles and links against the
// CUDA toolkit before the CUDA backend exists (issue: CUDA backend).
#include <cuda_runtime.h>

namespace lorafit::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

}  // namespace lorafit::cuda
