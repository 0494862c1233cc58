// GPU monitoring through NVML, loaded at run time (docs/DESIGN.md §11): no header or library is
// needed to build, and a machine without a GPU (or driver) simply reports no devices.
#pragma once
#include <string>
#include <vector>

namespace lorafit::track {

struct GpuReading {
  int index = 0;
  std::string name;
  double util_percent = -1;           // -1: not available
  long long mem_used_bytes = -1, mem_total_bytes = -1;
  double power_w = -1, temp_c = -1;
};

// Process-wide NVML session, initialised on first use; thread-safe.
class Nvml {
 public:
  static Nvml& instance();
  bool available() const { return ok_; }
  std::string driver_version() const { return driver_; }
  std::vector<GpuReading> read() const;  // one entry per device; [] without NVML

 private:
  Nvml();
  bool ok_ = false;
  std::string driver_;
  struct Api;
  Api* api_ = nullptr;  // leaked on purpose: NVML stays loaded for the process lifetime
};

}  // namespace lorafit::track
