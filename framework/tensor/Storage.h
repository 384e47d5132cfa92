// Storage: one owned, 64-byte aligned block of device memory shared by tensors that view it.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "framework/core/Device.h"

namespace anvil {

class Storage {
 public:
  using Deleter = std::function<void(void*)>;

  /// Adopts `data` (nbytes long on `device`); `deleter` frees it when the Storage dies.
  Storage(void* data, std::size_t nbytes, Device device, Deleter deleter);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  /// Allocates `nbytes` of uninitialised, 64-byte aligned host memory. Throws anvil::Error when out of memory.
  static std::shared_ptr<Storage> allocate_cpu(std::size_t nbytes);
  /// Allocates `nbytes` on `device`: host memory for the CPU, the device backend's (caching) allocator
  /// otherwise. Throws anvil::Error "Anvil was built without the CUDA backend" for a GPU in a CPU-only build.
  static std::shared_ptr<Storage> allocate(std::size_t nbytes, const Device& device);

  void* data() const { return data_; }
  std::size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_;
  std::size_t nbytes_;
  Device device_;
  Deleter deleter_;
};

}  // namespace anvil
