#include "framework/backend/onednn/BufferCache.h"

#include <cstdlib>
#include <utility>

#include "framework/core/Error.h"
#include "framework/tensor/Storage.h"

namespace anvil::onednn_detail {
namespace {

constexpr std::size_t kAlignment = 64;
constexpr std::size_t kPage = 4096;

void* aligned_block(std::size_t rounded) {
  void* p = std::aligned_alloc(kAlignment, rounded);
  ANVIL_CHECK(p != nullptr, "out of host memory allocating {} bytes", rounded);
  return p;
}

}  // namespace

BufferCache::~BufferCache() {
  for (auto& [size, blocks] : free_)
    for (void* p : blocks) std::free(p);
}

std::size_t BufferCache::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cached_;
}

void* BufferCache::take(std::size_t rounded) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(rounded);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      cached_ -= rounded;
      return p;
    }
  }
  return aligned_block(rounded);
}

void BufferCache::give(void* p, std::size_t rounded) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_ + rounded <= max_cached_) {
      free_[rounded].push_back(p);
      cached_ += rounded;
      return;
    }
  }
  std::free(p);
}

Tensor BufferCache::empty(const Shape& shape, DType dtype) {
  const std::size_t nbytes = static_cast<std::size_t>(shape.numel()) * dtype_size(dtype);
  if (nbytes < kMinBytes) return Tensor::empty(shape, dtype);
  const std::size_t rounded = (nbytes + kPage - 1) / kPage * kPage;
  void* p = take(rounded);
  auto impl = std::make_shared<TensorImpl>();
  try {
    impl->storage = std::make_shared<Storage>(
        p, nbytes, Device::cpu(), [cache = shared_from_this(), rounded](void* q) { cache->give(q, rounded); });
  } catch (...) {
    give(p, rounded);
    throw;
  }
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

}  // namespace anvil::onednn_detail
