#include "framework/backend/cuda/CudaAllocator.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "framework/backend/cuda/CudaCheck.h"
#include "framework/backend/cuda/CudaContext.h"
#include "framework/core/Error.h"

namespace anvil::cuda {
namespace {

constexpr std::size_t kSmallStep = 512;
constexpr std::size_t kLargeStep = std::size_t{1} << 20;
constexpr std::size_t kStagingChunk = std::size_t{64} << 20;  // largest pinned staging buffer

class CachingAllocator {
 public:
  void* allocate(std::size_t bucket, int device) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& list = free_[{device, bucket}];
      if (!list.empty()) {
        void* p = list.back();
        list.pop_back();
        ++stats_.cache_hits;
        stats_.bytes_cached -= bucket;
        stats_.bytes_in_use += bucket;
        return p;
      }
    }
    ANVIL_CUDA_CHECK(cudaSetDevice(device));
    void* p = nullptr;
    cudaError_t st = cudaMalloc(&p, bucket);
    if (st == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      release_cached();
      st = cudaMalloc(&p, bucket);
    }
    ANVIL_CUDA_CHECK(st);
    std::lock_guard<std::mutex> lock(mu_);
    if (!exit_hook_registered_) {
      // Registered after the runtime initialised, so it runs before the runtime's own teardown.
      exit_hook_registered_ = true;
      std::atexit([] { empty_cache(); });
    }
    ++stats_.cuda_malloc_calls;
    stats_.bytes_in_use += bucket;
    return p;
  }

  void release(void* p, std::size_t bucket, int device) {
    std::lock_guard<std::mutex> lock(mu_);
    free_[{device, bucket}].push_back(p);
    stats_.bytes_in_use -= bucket;
    stats_.bytes_cached += bucket;
  }

  void release_cached() {
    std::map<std::pair<int, std::size_t>, std::vector<void*>> drained;
    {
      std::lock_guard<std::mutex> lock(mu_);
      drained.swap(free_);
      for (const auto& [key, list] : drained) {
        stats_.bytes_cached -= key.second * list.size();
        stats_.cuda_free_calls += list.size();
      }
    }
    for (const auto& [key, list] : drained) {
      if (cudaSetDevice(key.first) != cudaSuccess) {
        (void)cudaGetLastError();
        continue;
      }
      cudaDeviceSynchronize();  // blocks may still be read by queued work
      for (void* p : list) cudaFree(p);  // at exit the runtime may be unloading: errors are ignored
    }
    (void)cudaGetLastError();
  }

  AllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  void reset_stats() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.cuda_malloc_calls = stats_.cache_hits = stats_.cuda_free_calls = 0;
  }

 private:
  std::mutex mu_;
  std::map<std::pair<int, std::size_t>, std::vector<void*>> free_;
  AllocatorStats stats_;
  bool exit_hook_registered_ = false;
};

// Never destroyed: Storages that outlive static destruction still return their blocks safely.
CachingAllocator& allocator() {
  static auto* a = new CachingAllocator();
  return *a;
}

// One pinned staging buffer per thread, grown on demand up to kStagingChunk.
class PinnedStaging {
 public:
  PinnedStaging() = default;
  PinnedStaging(const PinnedStaging&) = delete;
  PinnedStaging& operator=(const PinnedStaging&) = delete;
  ~PinnedStaging() {
    if (data_) cudaFreeHost(data_);
  }
  void* get(std::size_t nbytes) {
    if (nbytes > size_) {
      if (data_) ANVIL_CUDA_CHECK(cudaFreeHost(data_));
      data_ = nullptr;
      size_ = 0;
      std::size_t s = 1 << 20;
      while (s < nbytes) s *= 2;
      ANVIL_CUDA_CHECK(cudaMallocHost(&data_, s));
      size_ = s;
    }
    return data_;
  }

 private:
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

PinnedStaging& staging() {
  thread_local PinnedStaging s;
  return s;
}

class CudaDeviceMemory final : public DeviceMemory {
 public:
  std::shared_ptr<Storage> allocate(std::size_t nbytes, const Device& device) override {
    ANVIL_CHECK(device.type == DeviceType::kCUDA, "cannot allocate CUDA memory for device {}", device.str());
    return allocate_device(nbytes, device.index);
  }
  void copy(void* dst, const Device& dst_device, const void* src, const Device& src_device,
            std::size_t nbytes) override {
    copy_bytes(dst, dst_device, src, src_device, nbytes);
  }
};

}  // namespace

std::size_t bucket_size(std::size_t nbytes) {
  if (nbytes == 0) return kSmallStep;
  if (nbytes < kLargeStep) return (nbytes + kSmallStep - 1) / kSmallStep * kSmallStep;
  return (nbytes + kLargeStep - 1) / kLargeStep * kLargeStep;
}

std::shared_ptr<Storage> allocate_device(std::size_t nbytes, int device) {
  ANVIL_CHECK(device >= 0, "invalid CUDA device index {}", device);
  const std::size_t bucket = bucket_size(nbytes);
  void* p = allocator().allocate(bucket, device);
  return std::make_shared<Storage>(p, nbytes, Device::cuda(device),
                                   [bucket, device](void* q) { allocator().release(q, bucket, device); });
}

AllocatorStats allocator_stats() { return allocator().stats(); }
void reset_allocator_stats() { allocator().reset_stats(); }
void empty_cache() { allocator().release_cached(); }

void copy_bytes(void* dst, const Device& dst_device, const void* src, const Device& src_device, std::size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memmove(dst, src, nbytes);
    return;
  }
  const int dev = dst_device.is_cpu() ? src_device.index : dst_device.index;
  cudaStream_t stream = handles(dev).stream();
  // Reads of device memory may follow work queued by another thread on its own stream (e.g. an async
  // checkpoint writer copying parameters the training thread updates): wait for the whole device first.
  // In single-threaded training this costs what the stream synchronisation below costs anyway.
  if (!src_device.is_cpu()) ANVIL_CUDA_CHECK(cudaDeviceSynchronize());
  if (!dst_device.is_cpu() && !src_device.is_cpu()) {
    if (dst_device.index == src_device.index)
      ANVIL_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, stream));
    else
      ANVIL_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device.index, src, src_device.index, nbytes, stream));
    ANVIL_CUDA_CHECK(cudaStreamSynchronize(stream));
    return;
  }
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
  for (std::size_t done = 0; done < nbytes;) {
    const std::size_t n = std::min(kStagingChunk, nbytes - done);
    void* pinned = staging().get(n);
    if (dst_device.is_cpu()) {  // device -> pinned -> host; ordered after queued kernels on this stream
      ANVIL_CUDA_CHECK(cudaMemcpyAsync(pinned, s + done, n, cudaMemcpyDeviceToHost, stream));
      ANVIL_CUDA_CHECK(cudaStreamSynchronize(stream));
      std::memcpy(d + done, pinned, n);
    } else {  // host -> pinned -> device
      std::memcpy(pinned, s + done, n);
      ANVIL_CUDA_CHECK(cudaMemcpyAsync(d + done, pinned, n, cudaMemcpyHostToDevice, stream));
      ANVIL_CUDA_CHECK(cudaStreamSynchronize(stream));  // before the staging buffer is reused
    }
    done += n;
  }
}

DeviceMemory& cuda_device_memory() {
  static CudaDeviceMemory m;
  return m;
}

}  // namespace anvil::cuda
