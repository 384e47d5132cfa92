// Dropout (MindSpore 2.x nn.Dropout(p)): zeroes elements with probability p in training, scaling
// the rest by 1/(1-p); identity in inference. Owns a seeded Generator whose state can be saved.
#pragma once

#include "framework/core/Random.h"
#include "framework/nn/Cell.h"

namespace anvil::nn {

class Dropout : public Cell {
 public:
  /// Throws unless 0 <= p < 1. The generator is seeded from `seed`, or from default_generator()
  /// when seed is negative.
  explicit Dropout(double p = 0.5, std::int64_t seed = -1);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  Generator& generator() { return gen_; }
  double p() const { return p_; }

 private:
  double p_;
  Generator gen_;
};

}  // namespace anvil::nn
