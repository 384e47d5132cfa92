#include "framework/core/Context.h"

#include <mutex>

#include "framework/core/Error.h"

namespace anvil {
namespace {

std::mutex& context_mutex() {
  static std::mutex m;
  return m;
}

Context& context_slot() {
  static Context c;
  return c;
}

}  // namespace

bool cuda_compiled_in() {
#if defined(ANVIL_WITH_CUDA) && ANVIL_WITH_CUDA
  return true;
#else
  return false;
#endif
}

void set_context(const Context& context) {
  Context c = context;
  if (c.device_target == "cuda" || c.device_target == "CUDA" || c.device_target == "gpu") c.device_target = "GPU";
  if (c.device_target == "cpu") c.device_target = "CPU";
  ANVIL_CHECK(c.device_target == "CPU" || c.device_target == "GPU",
              "unknown device_target '{}' (expected \"CPU\" or \"GPU\")", context.device_target);
  ANVIL_CHECK(c.device_id >= 0, "device_id must be >= 0, got {}", c.device_id);
  ANVIL_CHECK(c.device_target == "CPU" || cuda_compiled_in(),
              "device_target \"GPU\" requested, but Anvil was built without the CUDA backend");
  std::lock_guard<std::mutex> lock(context_mutex());
  context_slot() = c;
}

Context get_context() {
  std::lock_guard<std::mutex> lock(context_mutex());
  return context_slot();
}

Device default_device() {
  const Context c = get_context();
  return c.device_target == "GPU" ? Device::cuda(c.device_id) : Device::cpu();
}

}  // namespace anvil
