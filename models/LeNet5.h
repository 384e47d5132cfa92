// LeNet-5 exactly as MindSpore's model zoo defines it (mindspore-ai/serving example/lenet/.../lenet.py),
// so MindSpore LeNet checkpoints load with nothing missing:
//   conv1 Conv2d(1→6, 5, valid, no bias) → ReLU → MaxPool 2/2 → conv2 Conv2d(6→16, 5, valid, no bias)
//   → ReLU → MaxPool 2/2 → Flatten(400) → fc1 Dense(400→120) → ReLU → fc2 Dense(120→84) → ReLU → fc3 Dense(84→10).
// Input [N, num_channel, 32, 32]; output logits [N, num_class].
#pragma once

#include <memory>

#include "framework/nn/Cell.h"
#include "framework/nn/layers/Conv2d.h"
#include "framework/nn/layers/Dense.h"

namespace anvil::models {

class LeNet5 : public nn::Cell {
 public:
  /// Parameters: conv1.weight, conv2.weight, fc1.{weight,bias}, fc2.{weight,bias}, fc3.{weight,bias}.
  /// Initialized with MindSpore's layer defaults from `generator` (default_generator() when null).
  explicit LeNet5(std::int64_t num_class = 10, std::int64_t num_channel = 1, Generator* generator = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "LeNet5"; }

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::Dense> fc1_, fc2_, fc3_;
};

}  // namespace anvil::models
