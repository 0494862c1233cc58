// NVML entry points declared by hand (their C ABI has been stable since CUDA 5; the _v2
// names are what nvml.h maps the plain names to).
#include "track/nvml.h"

#include <mutex>

#include "util/sysinfo.h"

namespace lorafit::track {

namespace {
using nvmlReturn_t = int;  // 0 = NVML_SUCCESS
using nvmlDevice_t = void*;
struct nvmlUtilization_t {
  unsigned int gpu, memory;
};
struct nvmlMemory_t {
  unsigned long long total, free, used;
};
constexpr int kTemperatureGpu = 0;  // NVML_TEMPERATURE_GPU
}  // namespace

struct Nvml::Api {
  sys::DynamicLibrary lib{"libnvidia-ml.so.1"};
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*count)(unsigned int*) = nullptr;
  nvmlReturn_t (*handle)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*name)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*util)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
  nvmlReturn_t (*mem)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  nvmlReturn_t (*power)(nvmlDevice_t, unsigned int*) = nullptr;  // milliwatts
  nvmlReturn_t (*temp)(nvmlDevice_t, int, unsigned int*) = nullptr;
  nvmlReturn_t (*driver)(char*, unsigned int) = nullptr;
  std::mutex mu;  // NVML is thread-safe, but keep readings serialised and cheap to reason about

  template <class F>
  bool bind(F& f, const char* sym) {
    f = reinterpret_cast<F>(lib.symbol(sym));
    return f != nullptr;
  }
};

Nvml& Nvml::instance() {
  static Nvml n;
  return n;
}

Nvml::Nvml() {
  auto* a = new Api;
  api_ = a;
  if (!a->lib.loaded()) return;
  bool ok = a->bind(a->init, "nvmlInit_v2") && a->bind(a->count, "nvmlDeviceGetCount_v2") &&
            a->bind(a->handle, "nvmlDeviceGetHandleByIndex_v2") && a->bind(a->name, "nvmlDeviceGetName") &&
            a->bind(a->util, "nvmlDeviceGetUtilizationRates") && a->bind(a->mem, "nvmlDeviceGetMemoryInfo") &&
            a->bind(a->power, "nvmlDeviceGetPowerUsage") && a->bind(a->temp, "nvmlDeviceGetTemperature") &&
            a->bind(a->driver, "nvmlSystemGetDriverVersion");
  if (!ok || a->init() != 0) return;
  char buf[96] = {};
  if (a->driver(buf, sizeof buf - 1) == 0) driver_ = buf;
  ok_ = true;
}

std::vector<GpuReading> Nvml::read() const {
  std::vector<GpuReading> out;
  if (!ok_) return out;
  std::lock_guard lock(api_->mu);
  unsigned int n = 0;
  if (api_->count(&n) != 0) return out;
  for (unsigned int i = 0; i < n; ++i) {
    nvmlDevice_t dev = nullptr;
    if (api_->handle(i, &dev) != 0) continue;
    GpuReading r;
    r.index = static_cast<int>(i);
    char name[96] = {};
    if (api_->name(dev, name, sizeof name - 1) == 0) r.name = name;
    nvmlUtilization_t u{};
    if (api_->util(dev, &u) == 0) r.util_percent = u.gpu;
    nvmlMemory_t m{};
    if (api_->mem(dev, &m) == 0) {
      r.mem_used_bytes = static_cast<long long>(m.used);
      r.mem_total_bytes = static_cast<long long>(m.total);
    }
    unsigned int mw = 0, t = 0;
    if (api_->power(dev, &mw) == 0) r.power_w = mw / 1000.0;
    if (api_->temp(dev, kTemperatureGpu, &t) == 0) r.temp_c = t;
    out.push_back(r);
  }
  return out;
}

}  // namespace lorafit::track
