#include "models/LeNet5.h"

#include "framework/ops/Activation.h"
#include "framework/ops/Pool.h"
#include "framework/ops/ShapeOps.h"

namespace anvil::models {

LeNet5::LeNet5(std::int64_t num_class, std::int64_t num_channel, Generator* generator) {
  nn::Conv2dOptions conv{.pad_mode = "valid", .generator = generator};
  nn::DenseOptions dense{.generator = generator};
  conv1_ = register_cell("conv1", std::make_shared<nn::Conv2d>(num_channel, 6, 5, conv));
  conv2_ = register_cell("conv2", std::make_shared<nn::Conv2d>(6, 16, 5, conv));
  fc1_ = register_cell("fc1", std::make_shared<nn::Dense>(16 * 5 * 5, 120, dense));
  fc2_ = register_cell("fc2", std::make_shared<nn::Dense>(120, 84, dense));
  fc3_ = register_cell("fc3", std::make_shared<nn::Dense>(84, num_class, dense));
}

Tensor LeNet5::forward(const Tensor& x) {
  ANVIL_CHECK(x.rank() == 4 && x.dim(2) == 32 && x.dim(3) == 32, "LeNet5 expects input [N,C,32,32], got {}",
              x.shape().str());
  Pool2dParams pool;  // 2x2, stride 2, no padding
  Tensor h = ops::pool2d(ops::relu(conv1_->forward(x)), pool);  // [N,6,14,14]
  h = ops::pool2d(ops::relu(conv2_->forward(h)), pool);         // [N,16,5,5]
  h = ops::flatten(h);                                          // [N,400]
  h = ops::relu(fc1_->forward(h));                              // [N,120]
  h = ops::relu(fc2_->forward(h));                              // [N,84]
  return fc3_->forward(h);                                      // [N,num_class]
}

}  // namespace anvil::models
