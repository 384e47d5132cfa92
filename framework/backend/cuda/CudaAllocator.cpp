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

// A cached block and the stream of the thread that freed it: work queued there may still use it.
struct FreeBlock {
  void* p = nullptr;
  cudaStream_t stream = nullptr;  // null: no pending work is known (see `unknown`)
  bool unknown = false;           // freed by a thread without a stream for the device: wait for the device
};

class CachingAllocator {
 public:
  void* allocate(std::size_t bucket, int device) {
    cudaStream_t s = handles(device).stream();  // also makes `device` current
    bool wait_for_device = false;
    void* reused = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& list = free_[{device, bucket}];
      if (!list.empty()) {
        // Prefer a block last used in this stream's order (or by no pending work): no wait needed.
        std::size_t k = list.size() - 1;
        for (std::size_t i = list.size(); i-- > 0;)
          if (list[i].stream == s || (!list[i].stream && !list[i].unknown)) {
            k = i;
            break;
          }
        const FreeBlock b = list[k];
        // Under the lock: the freeing thread's stream cannot be destroyed meanwhile (forget_stream). On
        // failure the block stays cached.
        wait_for_device = order_after_release(b, s);
        list.erase(list.begin() + static_cast<std::ptrdiff_t>(k));
        ++stats_.cache_hits;
        stats_.bytes_cached -= bucket;
        stats_.bytes_in_use += bucket;
        reused = b.p;
      }
    }
    if (reused) {
      // A block whose last user is unknown: wait for the whole device, outside the lock.
      if (wait_for_device) ANVIL_CUDA_CHECK(cudaDeviceSynchronize());
      return reused;
    }
    void* p = nullptr;
    cudaError_t st = cudaMalloc(&p, bucket);
    if (st == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      release_cached();
      ANVIL_CUDA_CHECK(cudaSetDevice(device));  // release_cached visited every device
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
    const cudaStream_t s = stream_if_created(device);
    std::lock_guard<std::mutex> lock(mu_);
    free_[{device, bucket}].push_back(FreeBlock{p, s, s == nullptr});
    stats_.bytes_in_use -= bucket;
    stats_.bytes_cached += bucket;
  }

  // The stream is being destroyed after a synchronisation: its blocks have no pending work any more.
  void forget_stream(cudaStream_t s) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [key, list] : free_)
      for (FreeBlock& b : list)
        if (b.stream == s) b.stream = nullptr;
  }

  void release_cached() {
    std::map<std::pair<int, std::size_t>, std::vector<FreeBlock>> drained;
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
      for (const FreeBlock& b : list) cudaFree(b.p);  // at exit the runtime may be unloading: errors are ignored
    }
    (void)cudaGetLastError();
  }

  AllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  void reset_stats() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.cuda_malloc_calls = stats_.cache_hits = stats_.cuda_free_calls = stats_.cross_stream_waits = 0;
  }

 private:
  // Makes work queued on stream `s` after now wait for whatever used block `b` before it was freed.
  // Returns true when the caller must wait for the whole device (the block's last user is unknown).
  bool order_after_release(const FreeBlock& b, cudaStream_t s) {
    if (b.stream == s || (!b.stream && !b.unknown)) return false;
    ++stats_.cross_stream_waits;
    if (b.unknown) return true;
    // Everything queued on the freeing stream so far includes the block's last uses.
    cudaEvent_t ev = nullptr;
    ANVIL_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    const cudaError_t rec = cudaEventRecord(ev, b.stream);
    const cudaError_t wait = rec == cudaSuccess ? cudaStreamWaitEvent(s, ev, 0) : rec;
    cudaEventDestroy(ev);  // released once the event completes
    ANVIL_CUDA_CHECK(wait);
    return false;
  }

  std::mutex mu_;
  std::map<std::pair<int, std::size_t>, std::vector<FreeBlock>> free_;
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
  if (!dst_device.is_cpu() && !src_device.is_cpu()) {
    if (dst_device.index == src_device.index) {
      // Same device: queued on this thread's stream, after this thread's work; no wait (clones of
      // gradients and activations stay asynchronous).
      ANVIL_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, handles(dst_device.index).stream()));
      return;
    }
    // Across GPUs: wait for the source device's work (any thread), then copy on the destination's stream.
    ANVIL_CUDA_CHECK(cudaSetDevice(src_device.index));
    ANVIL_CUDA_CHECK(cudaDeviceSynchronize());
    cudaStream_t stream = handles(dst_device.index).stream();
    ANVIL_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device.index, src, src_device.index, nbytes, stream));
    ANVIL_CUDA_CHECK(cudaStreamSynchronize(stream));
    return;
  }
  const int dev = dst_device.is_cpu() ? src_device.index : dst_device.index;
  cudaStream_t stream = handles(dev).stream();
  // Reads of device memory may follow work queued by another thread on its own stream (e.g. an async
  // checkpoint writer copying parameters the training thread updates): wait for the whole device first.
  // In single-threaded training this costs what the stream synchronisation below costs anyway.
  if (!src_device.is_cpu()) ANVIL_CUDA_CHECK(cudaDeviceSynchronize());
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

void forget_stream(cudaStream_t stream) { allocator().forget_stream(stream); }

DeviceMemory& cuda_device_memory() {
  static CudaDeviceMemory m;
  return m;
}

}  // namespace anvil::cuda
