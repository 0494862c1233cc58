#include "backend/backend.h"

#include "backend/cpu/cpu_backend.h"
#include "util/error.h"

namespace lorafit {

std::unique_ptr<Backend> make_backend(std::string_view name) {
  if (name == "cpu") return std::make_unique<CpuBackend>();
  if (name == "cuda")
    throw Error("--device cuda: the CUDA backend is not implemented yet; use --device cpu");
  throw Error("unknown device '{}': expected cpu or cuda", name);
}

}  // namespace lorafit
