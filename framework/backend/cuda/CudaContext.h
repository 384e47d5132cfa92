// Per-(device, thread) CUDA state: one stream, one cuDNN handle and one cuBLAS handle, each created on
// first use and destroyed when the thread ends. All Anvil work for a device issued from one thread runs
// on that thread's stream, in order; host-visible results (Tensor::to(cpu), item()) synchronise it.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

#include "framework/backend/cuda/Cuda.h"

namespace anvil::cuda {

// device_count() is declared in Cuda.h.

/// RAII owner of the handles of one (device, thread). Non-copyable, movable.
class DeviceHandles {
 public:
  explicit DeviceHandles(int device);
  ~DeviceHandles();
  DeviceHandles(const DeviceHandles&) = delete;
  DeviceHandles& operator=(const DeviceHandles&) = delete;
  DeviceHandles(DeviceHandles&& o) noexcept;
  DeviceHandles& operator=(DeviceHandles&&) = delete;

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  /// Created on first use (threads that only copy data, such as DataLoader workers, never pay for them).
  cudnnHandle_t cudnn();
  cublasHandle_t cublas();

 private:
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
};

/// Makes `device` current on this thread (cudaSetDevice, checked) and returns this thread's handles
/// for it, creating them once.
DeviceHandles& handles(int device);
/// This thread's stream for `device`, or null when the thread has none (never used the device, or its
/// handles are already destroyed at thread exit). Creates nothing.
cudaStream_t stream_if_created(int device);

}  // namespace anvil::cuda
