#include "backend/backend.h"

#include "backend/cpu/cpu_backend.h"
#include "util/error.h"
#ifdef LORAFIT_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace lorafit {

std::unique_ptr<Backend> make_backend(std::string_view name) {
  if (name == "cpu") return std::make_unique<CpuBackend>();
  if (name == "cuda") {
#ifdef LORAFIT_HAVE_CUDA
    return std::make_unique<CudaBackend>();  // throws "no CUDA device: ..." without a usable GPU
#else
    throw Error("--device cuda: this lorafit was built without CUDA (configure with -DLORAFIT_CUDA=ON); use --device cpu");
#endif
  }
  throw Error("unknown device '{}': expected cpu or cuda", name);
}

}  // namespace lorafit
