#include "framework/backend/cuda/CudaCheck.h"

#include <string>

#include "framework/core/Error.h"

namespace anvil::cuda {
namespace {

std::string base_name(const char* file) {
  std::string f(file);
  const auto slash = f.find_last_of('/');
  return slash == std::string::npos ? f : f.substr(slash + 1);
}

[[noreturn]] void raise(const char* call, const std::string& text, const char* file, int line) {
  std::string msg = call;
  msg += " failed: ";
  msg += text;
  msg += " at ";
  msg += base_name(file);
  msg += ":";
  msg += std::to_string(line);
  throw Error(msg);
}

}  // namespace

void throw_cuda_error(const char* call, cudaError_t status, const char* file, int line) {
  std::string text = cudaGetErrorString(status);
  text += " (";
  text += cudaGetErrorName(status);
  text += ")";
  raise(call, text, file, line);
}

void throw_cudnn_error(const char* call, cudnnStatus_t status, const char* file, int line) {
  std::string text = cudnnGetErrorString(status);
  text += " (cudnnStatus ";
  text += std::to_string(static_cast<int>(status));
  text += ")";
  raise(call, text, file, line);
}

const char* cublas_status_name(cublasStatus_t status) { return cublasGetStatusName(status); }

void throw_cublas_error(const char* call, cublasStatus_t status, const char* file, int line) {
  std::string text = cublasGetStatusName(status);
  text += ": ";
  text += cublasGetStatusString(status);
  raise(call, text, file, line);
}

}  // namespace anvil::cuda
