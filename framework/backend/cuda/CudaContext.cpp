#include "framework/backend/cuda/CudaContext.h"

#include <map>
#include <memory>

#include "framework/backend/cuda/CudaCheck.h"

namespace anvil::cuda {

int device_count(std::string* reason) {
  int n = 0;
  const cudaError_t st = cudaGetDeviceCount(&n);
  if (st != cudaSuccess) {
    (void)cudaGetLastError();
    if (reason) {
      *reason = "cudaGetDeviceCount: ";
      *reason += cudaGetErrorString(st);
    }
    return 0;
  }
  if (n == 0 && reason) *reason = "cudaGetDeviceCount returned 0 devices";
  return n;
}

DeviceHandles::DeviceHandles(int device) : device_(device) {
  ANVIL_CUDA_CHECK(cudaSetDevice(device));
  ANVIL_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  try {
    ANVIL_CUDNN_CHECK(cudnnCreate(&cudnn_));
    ANVIL_CUDNN_CHECK(cudnnSetStream(cudnn_, stream_));
    ANVIL_CUBLAS_CHECK(cublasCreate(&cublas_));
    ANVIL_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    ANVIL_CUBLAS_CHECK(cublasSetPointerMode(cublas_, CUBLAS_POINTER_MODE_HOST));
  } catch (...) {
    if (cublas_) cublasDestroy(cublas_);
    if (cudnn_) cudnnDestroy(cudnn_);
    cudaStreamDestroy(stream_);
    throw;
  }
}

DeviceHandles::DeviceHandles(DeviceHandles&& o) noexcept
    : device_(o.device_), stream_(o.stream_), cudnn_(o.cudnn_), cublas_(o.cublas_) {
  o.stream_ = nullptr;
  o.cudnn_ = nullptr;
  o.cublas_ = nullptr;
}

DeviceHandles::~DeviceHandles() {
  // Errors are ignored here: destructors must not throw, and at process exit the runtime may be gone.
  if (cublas_) cublasDestroy(cublas_);
  if (cudnn_) cudnnDestroy(cudnn_);
  if (stream_) {
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }
}

DeviceHandles& handles(int device) {
  thread_local std::map<int, std::unique_ptr<DeviceHandles>> per_thread;
  auto it = per_thread.find(device);
  if (it == per_thread.end()) it = per_thread.emplace(device, std::make_unique<DeviceHandles>(device)).first;
  else ANVIL_CUDA_CHECK(cudaSetDevice(device));
  return *it->second;
}

}  // namespace anvil::cuda
