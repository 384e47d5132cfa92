#include "framework/nn/layers/GlobalAvgPool.h"

#include "framework/ops/Reduce.h"

namespace anvil::nn {

Tensor GlobalAvgPool::forward(const Tensor& x) {
  ANVIL_CHECK(x.defined() && x.rank() == 4 && x.dim(2) > 0 && x.dim(3) > 0,
              "GlobalAvgPool: input must be [N,C,H,W] with H, W > 0, got {}", x.defined() ? x.desc() : "undefined");
  // A mean over (H, W): the reduce kernels cover it on every backend, forward and backward.
  return ops::mean(x, {2, 3}, o_.keep_dims);
}

std::string GlobalAvgPool::extra_repr() const { return fmt::format("keep_dims={}", o_.keep_dims); }

}  // namespace anvil::nn
