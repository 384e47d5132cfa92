#include "framework/backend/cuda/CudaContext.h"

#include <map>
#include <memory>

#include "framework/backend/cuda/CudaAllocator.h"
#include "framework/backend/cuda/CudaCheck.h"
#include "framework/core/Error.h"

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
}

cudnnHandle_t DeviceHandles::cudnn() {
  if (!cudnn_) {
    cudnnHandle_t h = nullptr;
    ANVIL_CUDNN_CHECK(cudnnCreate(&h));
    try {
      ANVIL_CUDNN_CHECK(cudnnSetStream(h, stream_));
    } catch (...) {
      cudnnDestroy(h);
      throw;
    }
    cudnn_ = h;
  }
  return cudnn_;
}

cublasHandle_t DeviceHandles::cublas() {
  if (!cublas_) {
    cublasHandle_t h = nullptr;
    ANVIL_CUBLAS_CHECK(cublasCreate(&h));
    try {
      ANVIL_CUBLAS_CHECK(cublasSetStream(h, stream_));
      ANVIL_CUBLAS_CHECK(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
    } catch (...) {
      cublasDestroy(h);
      throw;
    }
    cublas_ = h;
  }
  return cublas_;
}

DeviceHandles::DeviceHandles(DeviceHandles&& o) noexcept
    : device_(o.device_), stream_(o.stream_), cudnn_(o.cudnn_), cublas_(o.cublas_) {
  o.stream_ = nullptr;
  o.cudnn_ = nullptr;
  o.cublas_ = nullptr;
}

DeviceHandles::~DeviceHandles() {
  // Errors are ignored here: destructors must not throw, and at process exit the runtime may be gone.
  if (cudaSetDevice(device_) != cudaSuccess) (void)cudaGetLastError();  // the handles' own device
  if (cublas_) cublasDestroy(cublas_);
  if (cudnn_) cudnnDestroy(cudnn_);
  if (stream_) {
    cudaStreamSynchronize(stream_);
    forget_stream(stream_);
    cudaStreamDestroy(stream_);
  }
}

namespace {

// This thread's handles, one per device. Reached through a plain pointer so that code running while
// thread-local objects are destroyed (a Storage deleter, say) can tell that they are gone.
struct PerThreadHandles {
  std::map<int, std::unique_ptr<DeviceHandles>> by_device;
  ~PerThreadHandles();
};
thread_local PerThreadHandles* t_handles = nullptr;
thread_local bool t_handles_gone = false;  // trivially destructible: readable during thread exit
PerThreadHandles::~PerThreadHandles() {
  by_device.clear();
  t_handles = nullptr;
  t_handles_gone = true;
}

}  // namespace

DeviceHandles& handles(int device) {
  ANVIL_CHECK(!t_handles_gone, "CUDA work for device {} issued while this thread's CUDA handles are being "
              "destroyed (thread exit)", device);
  thread_local PerThreadHandles per_thread;
  t_handles = &per_thread;
  auto it = per_thread.by_device.find(device);
  if (it == per_thread.by_device.end())
    it = per_thread.by_device.emplace(device, std::make_unique<DeviceHandles>(device)).first;
  else
    ANVIL_CUDA_CHECK(cudaSetDevice(device));
  return *it->second;
}

cudaStream_t stream_if_created(int device) {
  if (!t_handles) return nullptr;
  const auto it = t_handles->by_device.find(device);
  return it == t_handles->by_device.end() ? nullptr : it->second->stream();
}

}  // namespace anvil::cuda
