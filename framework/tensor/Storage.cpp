#include "framework/tensor/Storage.h"

#include <cstdlib>

#include "framework/core/Error.h"

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

}  // namespace anvil
