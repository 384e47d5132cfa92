// GradMode: whether ops record the graph on this thread (thread_local; on by default).
#pragma once

namespace anvil::autograd {

/// True when differentiable ops record Nodes on this thread.
bool grad_enabled();
void set_grad_enabled(bool enabled);

/// RAII: disables recording on this thread for its lifetime (restores the previous mode).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace anvil::autograd

namespace anvil {
using autograd::NoGradGuard;
}
