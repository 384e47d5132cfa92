// DeviceMemory: how the tensor layer allocates and copies memory that is not host memory.
//
// The tensor layer knows no device API. A device backend (framework/backend/cuda) implements this
// interface; `device_memory(device)` returns it for a non-CPU device and throws anvil::Error
// "Anvil was built without the CUDA backend" when the build has none.
#pragma once

#include <cstddef>
#include <memory>

#include "framework/core/Device.h"

namespace anvil {

class Storage;

class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  /// `nbytes` of uninitialised memory on `device` (may come from a cache).
  virtual std::shared_ptr<Storage> allocate(std::size_t nbytes, const Device& device) = 0;
  /// Copies nbytes between any two of host / device memory; returns when the data is in `dst`
  /// (host destinations are complete and readable).
  virtual void copy(void* dst, const Device& dst_device, const void* src, const Device& src_device,
                    std::size_t nbytes) = 0;
};

/// The device memory implementation for a non-CPU `device`. Throws when not compiled in.
DeviceMemory& device_memory(const Device& device);

}  // namespace anvil
