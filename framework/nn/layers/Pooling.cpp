#include "framework/nn/layers/Pooling.h"

#include "framework/ops/Conv.h"
#include "framework/ops/Pool.h"

namespace anvil::nn {

Pool2dCell::Pool2dCell(PoolKind kind, std::int64_t kernel_size, const PoolOptions& o)
    : kind_(kind), k_(kernel_size), stride_(o.stride == 0 ? kernel_size : o.stride), pad_mode_(o.pad_mode) {
  ANVIL_CHECK(k_ > 0 && stride_ > 0, "kernel_size {} and stride {} must be positive", k_, stride_);
  ANVIL_CHECK(pad_mode_ == "valid" || pad_mode_ == "same", "unknown pad_mode '{}' (expected \"valid\" or \"same\")",
              pad_mode_);
}

Tensor Pool2dCell::forward(const Tensor& x) {
  ANVIL_CHECK(x.rank() == 4, "{}: input must be [N,C,H,W], got {}", type_name(), x.shape().str());
  Pool2dParams p;
  p.kind = kind_;
  p.kernel_h = p.kernel_w = k_;
  p.stride_h = p.stride_w = stride_;
  p.count_include_pad = false;
  ops::resolve_padding(pad_mode_, x.dim(2), k_, stride_, 1, 0, p.pad_top, p.pad_bottom);
  ops::resolve_padding(pad_mode_, x.dim(3), k_, stride_, 1, 0, p.pad_left, p.pad_right);
  return ops::pool2d(x, p);
}

std::string Pool2dCell::extra_repr() const {
  return fmt::format("kernel_size={}, stride={}, pad_mode={}", k_, stride_, pad_mode_);
}

}  // namespace anvil::nn
