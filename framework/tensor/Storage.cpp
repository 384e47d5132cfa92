#include "framework/tensor/Storage.h"

#include <cstdlib>

#include "framework/core/Error.h"
#include "framework/tensor/DeviceMemory.h"

namespace anvil {

Storage::Storage(void* data, std::size_t nbytes, Device device, Deleter deleter)
    : data_(data), nbytes_(nbytes), device_(device), deleter_(std::move(deleter)) {}

Storage::~Storage() {
  if (deleter_ && data_) deleter_(data_);
}

std::shared_ptr<Storage> Storage::allocate_cpu(std::size_t nbytes) {
  const std::size_t rounded = (nbytes + 63) / 64 * 64;
  void* p = rounded ? std::aligned_alloc(64, rounded) : nullptr;
  ANVIL_CHECK(p != nullptr || rounded == 0, "out of host memory allocating {} bytes", nbytes);
  return std::make_shared<Storage>(p, nbytes, Device::cpu(), [](void* q) { std::free(q); });
}

std::shared_ptr<Storage> Storage::allocate(std::size_t nbytes, const Device& device) {
  if (device.is_cpu()) return allocate_cpu(nbytes);
  return device_memory(device).allocate(nbytes, device);
}

#if defined(ANVIL_WITH_CUDA) && ANVIL_WITH_CUDA
namespace cuda {
DeviceMemory& cuda_device_memory();  // framework/backend/cuda/CudaAllocator.cpp
}
#endif

DeviceMemory& device_memory(const Device& device) {
  ANVIL_CHECK(!device.is_cpu(), "device_memory: {} is host memory", device.str());
#if defined(ANVIL_WITH_CUDA) && ANVIL_WITH_CUDA
  return cuda::cuda_device_memory();
#else
  ANVIL_THROW("cannot use device {}: Anvil was built without the CUDA backend", device.str());
#endif
}

}  // namespace anvil
