#include "framework/nn/layers/Dropout2d.h"

#include "framework/ops/Dropout.h"

namespace anvil::nn {

Tensor Dropout2d::forward(const Tensor& x) {
  ANVIL_CHECK(x.defined() && x.rank() == 4, "Dropout2d(p={}): input must be [N,C,H,W], got {}", p(),
              x.defined() ? x.desc() : "undefined");
  return ops::dropout2d(x, p(), generator(), training());
}

}  // namespace anvil::nn
