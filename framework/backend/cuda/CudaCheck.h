// The one boundary where CUDA runtime, cuDNN and cuBLAS status codes become anvil::Error.
//
// Every call into those libraries is wrapped: ANVIL_CUDA_CHECK(cudaMalloc(&p, n)) throws
//   anvil::Error("cudaMalloc(&p, n) failed: out of memory (cudaErrorMemoryAllocation) at CudaAllocator.cpp:42")
// naming the call as written, the library's status text and the source position.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

namespace anvil::cuda {

[[noreturn]] void throw_cuda_error(const char* call, cudaError_t status, const char* file, int line);
[[noreturn]] void throw_cudnn_error(const char* call, cudnnStatus_t status, const char* file, int line);
[[noreturn]] void throw_cublas_error(const char* call, cublasStatus_t status, const char* file, int line);
/// Name of a cuBLAS status ("CUBLAS_STATUS_NOT_INITIALIZED").
const char* cublas_status_name(cublasStatus_t status);

}  // namespace anvil::cuda

#define ANVIL_CUDA_CHECK(call)                                                              \
  do {                                                                                      \
    const cudaError_t anvil_status_ = (call);                                               \
    if (anvil_status_ != cudaSuccess) {                                                     \
      (void)cudaGetLastError(); /* clear the sticky-free error so later calls start clean */ \
      ::anvil::cuda::throw_cuda_error(#call, anvil_status_, __FILE__, __LINE__);            \
    }                                                                                       \
  } while (0)

#define ANVIL_CUDNN_CHECK(call)                                                  \
  do {                                                                           \
    const cudnnStatus_t anvil_status_ = (call);                                  \
    if (anvil_status_ != CUDNN_STATUS_SUCCESS)                                   \
      ::anvil::cuda::throw_cudnn_error(#call, anvil_status_, __FILE__, __LINE__); \
  } while (0)

#define ANVIL_CUBLAS_CHECK(call)                                                  \
  do {                                                                            \
    const cublasStatus_t anvil_status_ = (call);                                  \
    if (anvil_status_ != CUBLAS_STATUS_SUCCESS)                                   \
      ::anvil::cuda::throw_cublas_error(#call, anvil_status_, __FILE__, __LINE__); \
  } while (0)
