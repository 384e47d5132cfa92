// Caching device allocator and pinned staging buffers for host <-> device copies.
//
// Device blocks are rounded up to a size bucket (512 B steps below 1 MiB, 1 MiB steps above) and, when a
// Storage dies, go back to a per-device free list of that bucket instead of cudaFree; the next request
// of the same bucket reuses them, so a training loop whose shapes repeat calls cudaMalloc only during
// its first step. When cudaMalloc runs out of memory the cache is released and the call retried once.
// Cached blocks are released by empty_cache() and at process exit.
//
// Stream ordering: a block is cached with the stream of the thread that freed it (each thread has one
// stream per device, CudaContext.h). The same stream reuses it at once (its later work is queued after
// the block's last uses); another thread's stream first waits, through an event recorded on the freeing
// stream, so a DataLoader thread never overwrites a block the training thread's queued kernels still
// read. A block freed by a thread that has no stream waits for the whole device before reuse.
// Limit: ordering follows the thread that frees a block, so a program that shares one device tensor
// between threads must synchronise (e.g. Tensor::to(cpu), cuda::synchronize) before the other thread
// drops the last reference while work queued by this thread may still read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "framework/tensor/DeviceMemory.h"
#include "framework/tensor/Storage.h"

struct CUstream_st;

namespace anvil::cuda {

struct AllocatorStats {
  std::uint64_t cuda_malloc_calls = 0;  // real cudaMalloc calls since start (or reset_stats)
  std::uint64_t cache_hits = 0;         // requests served from the free lists
  std::uint64_t cuda_free_calls = 0;
  std::uint64_t cross_stream_waits = 0;  // reuses that had to wait for another thread's stream
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

/// Copies between host and device memory through this thread's stream, staged through a reused pinned
/// host buffer, and returns when the data is in `dst`; a copy out of device memory first waits for the
/// device (work of every thread), so a tensor read on one thread sees what other threads computed.
/// A copy within one GPU is queued on this thread's stream and returns at once: it is ordered after this
/// thread's work on the device, and tensors another thread computes must be synchronised by that thread
/// before they are handed over (the DataLoader does). A copy between two GPUs waits for the source GPU.
void copy_bytes(void* dst, const Device& dst_device, const void* src, const Device& src_device, std::size_t nbytes);

/// Called by a thread's handles just before its stream is destroyed (after synchronising it): blocks
/// that stream freed no longer need a wait.
/// (cudaStream_t is CUstream_st*; declared so that this header needs no CUDA include path.)
void forget_stream(CUstream_st* stream);

/// The DeviceMemory the tensor layer uses for Device::cuda tensors.
DeviceMemory& cuda_device_memory();

}  // namespace anvil::cuda
