// Caching device allocator and pinned staging buffers for host <-> device copies.
//
// Device blocks are rounded up to a size bucket (512 B steps below 1 MiB, 1 MiB steps above) and, when a
// Storage dies, go back to a per-device free list of that bucket instead of cudaFree; the next request
// of the same bucket reuses them, so a training loop whose shapes repeat calls cudaMalloc only during
// its first step. When cudaMalloc runs out of memory the cache is released and the call retried once.
// Cached blocks are released by empty_cache() and at process exit.
//
// Stream-ordering assumption: a freed block may be handed out again while kernels that used it are still
// queued. That is safe because all of a device's work from one thread runs on that thread's single stream
// (CudaContext.h), in order. Programs that use one device from several threads at once must synchronise
// (e.g. Tensor::to(cpu)) before dropping tensors another thread may still be computing with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "framework/tensor/DeviceMemory.h"
#include "framework/tensor/Storage.h"

namespace anvil::cuda {

struct AllocatorStats {
  std::uint64_t cuda_malloc_calls = 0;  // real cudaMalloc calls since start (or reset_stats)
  std::uint64_t cache_hits = 0;         // requests served from the free lists
  std::uint64_t cuda_free_calls = 0;
  std::size_t bytes_in_use = 0;         // handed out and not yet returned
  std::size_t bytes_cached = 0;         // held in free lists
};

/// Size bucket a request of `nbytes` is rounded up to.
std::size_t bucket_size(std::size_t nbytes);

/// Allocates `nbytes` on CUDA device `device` through the cache; the Storage's deleter returns the block.
std::shared_ptr<Storage> allocate_device(std::size_t nbytes, int device);
AllocatorStats allocator_stats();
void reset_allocator_stats();
/// cudaFree of every cached (unused) block on every device.
void empty_cache();

/// Host <-> device and device <-> device copy through this thread's stream, staged through a reused
/// pinned host buffer; returns when the data is in `dst`. Copies out of device memory first wait for the
/// device (work of every thread), so a tensor read on one thread sees what other threads computed.
void copy_bytes(void* dst, const Device& dst_device, const void* src, const Device& src_device, std::size_t nbytes);

/// The DeviceMemory the tensor layer uses for Device::cuda tensors.
DeviceMemory& cuda_device_memory();

}  // namespace anvil::cuda
