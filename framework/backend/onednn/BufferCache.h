// BufferCache: recycles the large host buffers of the tensors the oneDNN backend returns.
// Internal to the oneDNN backend.
//
// Why: a training step allocates and frees the same set of activation-sized buffers every step.
// glibc serves large blocks with fresh pages (mmap, or heap memory it trimmed back to the kernel),
// so every first touch page-faults: on LeNet-5 (batch 64) that was ~1200 faults and ~1 ms per step,
// more than all of its convolutions. Buffers of at least kMinBytes go back to a free list keyed by
// their (page-rounded) size instead, up to `max_cached_bytes`; smaller ones use malloc directly.
//
// Thread-safe: tensors may die on any thread (a DataLoader worker, a callback). A tensor keeps the
// cache alive through its deleter, so it may outlive the backend that made it.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "framework/tensor/Tensor.h"

namespace anvil::onednn_detail {

class BufferCache : public std::enable_shared_from_this<BufferCache> {
 public:
  static constexpr std::size_t kMinBytes = std::size_t{64} << 10;

  /// Create through std::make_shared (tensors' deleters hold shared ownership).
  explicit BufferCache(std::size_t max_cached_bytes) : max_cached_(max_cached_bytes) {}
  ~BufferCache();
  BufferCache(const BufferCache&) = delete;
  BufferCache& operator=(const BufferCache&) = delete;

  /// An uninitialised contiguous CPU tensor, 64-byte aligned like Tensor::empty.
  /// Throws anvil::Error when out of memory.
  Tensor empty(const Shape& shape, DType dtype = DType::kF32);
  /// Bytes currently held in free lists.
  std::size_t cached_bytes() const;

 private:
  void* take(std::size_t rounded);
  void give(void* p, std::size_t rounded);

  const std::size_t max_cached_;
  mutable std::mutex mu_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;  // rounded size -> blocks
  std::size_t cached_ = 0;
};

}  // namespace anvil::onednn_detail
