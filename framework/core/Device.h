// Device: where a tensor's storage lives.
#pragma once

#include <string>

namespace anvil {

enum class DeviceType { kCPU, kCUDA };

struct Device {
  DeviceType type = DeviceType::kCPU;
  int index = 0;

  static Device cpu() { return {DeviceType::kCPU, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::kCUDA, index}; }
  bool is_cpu() const { return type == DeviceType::kCPU; }
  /// "CPU" or "GPU:0" (MindSpore's device_target spelling).
  std::string str() const { return type == DeviceType::kCPU ? "CPU" : "GPU:" + std::to_string(index); }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

}  // namespace anvil
