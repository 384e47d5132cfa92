#include "framework/backend/Backend.h"

#include <cstdlib>
#include <cstring>

#include "framework/backend/onednn/OneDnnBackend.h"
#include "framework/backend/reference/ReferenceBackend.h"
#if defined(ANVIL_WITH_CUDA) && ANVIL_WITH_CUDA
#include "framework/backend/cuda/Cuda.h"
#endif

namespace anvil {
namespace {

thread_local Backend* t_current = nullptr;

Backend*& default_slot() {
  static Backend* d = nullptr;
  return d;
}

}  // namespace

std::int64_t conv_out_size(std::int64_t in, std::int64_t k, std::int64_t stride, std::int64_t pad_a,
                           std::int64_t pad_b, std::int64_t dilation) {
  ANVIL_CHECK(stride > 0 && dilation > 0 && k > 0, "kernel {}, stride {} and dilation {} must be positive", k,
              stride, dilation);
  const std::int64_t span = dilation * (k - 1) + 1;
  ANVIL_CHECK(in + pad_a + pad_b >= span, "input size {} with padding {}+{} is smaller than the kernel extent {}",
              in, pad_a, pad_b, span);
  return (in + pad_a + pad_b - span) / stride + 1;
}

Backend& reference_backend() {
  static ReferenceBackend b;
  return b;
}

Backend& onednn_backend() {
  static OneDnnBackend b;
  return b;
}

void set_default_backend(Backend& backend) { default_slot() = &backend; }

Backend& backend_for(const Device& device) {
  if (device.type == DeviceType::kCUDA) {
#if defined(ANVIL_WITH_CUDA) && ANVIL_WITH_CUDA
    return cuda::cuda_backend(device.index);
#else
    ANVIL_THROW("no backend is available for device {}: Anvil was built without the CUDA backend", device.str());
#endif
  }
  ANVIL_CHECK(device.is_cpu(), "no backend is available for device {} in this build", device.str());
  if (t_current) return *t_current;
  Backend*& d = default_slot();
  if (!d) {
    const char* env = std::getenv("ANVIL_BACKEND");
    d = (env && std::strcmp(env, "reference") == 0) ? &reference_backend() : &onednn_backend();
  }
  return *d;
}

Backend& backend_for_inputs(std::initializer_list<const Tensor*> inputs) {
  for (const Tensor* t : inputs)
    if (t->defined() && !t->device().is_cpu()) return backend_for(t->device());
  return backend_for(Device::cpu());
}

BackendScope::BackendScope(Backend& backend) : previous_(t_current) { t_current = &backend; }
BackendScope::~BackendScope() { t_current = previous_; }

}  // namespace anvil
