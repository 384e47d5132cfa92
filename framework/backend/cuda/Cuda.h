// Public entry points of the CUDA backend that need no CUDA headers (tests, benchmarks, tools).
// Only present in builds with ANVIL_WITH_CUDA=1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace anvil {
class Backend;
}

namespace anvil::cuda {

/// Number of usable CUDA devices; 0 when there is no driver or no device (never throws).
/// `reason` receives the runtime's message when the count is 0.
int device_count(std::string* reason = nullptr);
/// cudaGetDeviceCount through the error boundary: throws anvil::Error naming the call when it fails.
int device_count_checked();
/// cudaSetDevice through the error boundary: throws anvil::Error naming the call for a missing device.
void set_device_checked(int device);

struct CudaOptions {
  /// Let cuBLAS and cuDNN use TF32 tensor cores for float32 (about 1e-3 relative error). Off by default.
  bool allow_tf32 = false;
  /// Pick only deterministic cuDNN convolution algorithms (bitwise-reproducible runs).
  bool deterministic = false;
  /// Choose convolution algorithms by timing them (cudnnFind*, first use of each shape) instead of
  /// cuDNN's heuristics (cudnnGet*_v7).
  bool benchmark = false;
};
/// Process-wide options read by every CUDA backend at each call. Changing them clears the algorithm caches.
void set_cuda_options(const CudaOptions& options);
CudaOptions cuda_options();

/// The shared CUDA backend of device `index` (backend_for(Device::cuda(index)) returns it).
Backend& cuda_backend(int index = 0);

/// Statistics of the caching device allocator (framework/backend/cuda/CudaAllocator.h).
struct CudaMemoryStats {
  std::uint64_t cuda_malloc_calls = 0;
  std::uint64_t cache_hits = 0;
  std::size_t bytes_in_use = 0;
  std::size_t bytes_cached = 0;
};
CudaMemoryStats memory_stats();
void reset_memory_stats();
/// Returns every cached, unused device block to the driver.
void empty_cache();
/// Number of convolution algorithm choices cached by the backend of `index` (one per shape and direction).
std::size_t conv_algorithm_cache_size(int index = 0);

/// Per-op GPU time measured with CUDA events (ms, summed per op name) while profiling is on.
void set_profiling(bool on);
/// Waits for the recorded events and returns the totals since the last reset.
std::map<std::string, double> profile_ms();
void reset_profile();

/// Blocks until all work queued by this thread on `index` is done.
void synchronize(int index = 0);

}  // namespace anvil::cuda
