// MLP: Flatten → Dense(in→hidden) → ReLU → ... → Dense(→num_class). The default 784-512-10 is the classic
// OneFlow/MNIST tutorial network. Parameters: "0.weight", "0.bias", "1.weight", ... one Dense per index
// (hidden layers then the output layer), inside child "layers".
#pragma once

#include <memory>
#include <vector>

#include "framework/nn/Cell.h"
#include "framework/nn/layers/Dense.h"

namespace anvil::models {

class MLP : public nn::Cell {
 public:
  /// Throws when a size is not positive. Input [N, ...] is flattened to [N, in_features].
  explicit MLP(std::int64_t in_features = 784, std::vector<std::int64_t> hidden = {512}, std::int64_t num_class = 10,
               Generator* generator = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "MLP"; }

 private:
  std::vector<std::shared_ptr<nn::Dense>> layers_;
};

}  // namespace anvil::models
