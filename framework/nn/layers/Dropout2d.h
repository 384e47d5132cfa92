// Dropout2d: channel dropout (MindSpore nn.Dropout2d(p), PyTorch nn.Dropout2d). In training each
// channel (n, c) of x [N, C, H, W] is zeroed entirely with probability p and the kept channels are
// scaled by 1/(1-p); identity in inference. Owns a seeded Generator (like Dropout) whose state can
// be saved and restored.
#pragma once

#include "framework/core/Random.h"
#include "framework/nn/Cell.h"

namespace anvil::nn {

class Dropout2d : public Cell {
 public:
  /// Throws unless 0 <= p < 1. The generator is seeded from `seed`, or from default_generator()
  /// when seed is negative.
  explicit Dropout2d(double p = 0.5, std::int64_t seed = -1);
  /// x [N, C, H, W] -> same shape. Throws naming the layer and the shape when x is not rank 4.
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Dropout2d"; }
  std::string extra_repr() const override;
  Generator& generator() { return gen_; }

 private:
  double p_;
  Generator gen_;
};

}  // namespace anvil::nn
