// Process-wide execution context: the C++ form of MindSpore's
//   mindspore.set_context(device_target="GPU", device_id=0)
// is
//   anvil::set_context({.device_target = "GPU", .device_id = 0});
//
// The context names the default device: `anvil::default_device()` returns it, `Cell::to()` without an
// argument and `Tensor::to_default_device()` move there. Tensor factories (Tensor::empty/zeros/...) keep
// allocating host memory (data loading and host-side code read it directly); ops run on the backend of
// their inputs' device (backend_for(tensor.device())), so moving the network and each batch is all a
// program does to train on the GPU.
#pragma once

#include <string>

#include "framework/core/Device.h"

namespace anvil {

struct Context {
  /// "CPU" or "GPU" (MindSpore's spelling; "cuda" is accepted as a synonym of "GPU").
  std::string device_target = "CPU";
  /// GPU ordinal; ignored for "CPU".
  int device_id = 0;
};

/// Sets the process-wide context. Throws anvil::Error for an unknown device_target, a negative
/// device_id, or "GPU" when Anvil was built without the CUDA backend. It does not touch the GPU:
/// a missing device is reported by the first operation that needs it.
void set_context(const Context& context);
/// The current context (default: CPU).
Context get_context();
/// The device named by the context: Device::cpu() or Device::cuda(device_id).
Device default_device();
/// True when this build contains the CUDA backend (ANVIL_WITH_CUDA).
bool cuda_compiled_in();

}  // namespace anvil
