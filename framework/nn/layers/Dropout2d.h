// Dropout2d: channel dropout (MindSpore nn.Dropout2d(p), PyTorch nn.Dropout2d). In training each
// channel (n, c) of x [N, C, H, W] is zeroed entirely with probability p and the kept channels are
// scaled by 1/(1-p); identity in inference. A Dropout (it inherits p and the seeded Generator), so
// everything that handles Dropout's random stream — saving and restoring it for an exact resume —
// handles this one too.
#pragma once

#include "framework/nn/layers/Dropout.h"

namespace anvil::nn {

class Dropout2d : public Dropout {
 public:
  /// Throws unless 0 <= p < 1. The generator is seeded from `seed`, or from default_generator()
  /// when seed is negative.
  explicit Dropout2d(double p = 0.5, std::int64_t seed = -1) : Dropout(p, seed) {}
  /// x [N, C, H, W] -> same shape; one draw per channel. Throws naming the layer and the shape when
  /// x is not rank 4.
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Dropout2d"; }
};

}  // namespace anvil::nn
