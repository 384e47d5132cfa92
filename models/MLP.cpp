#include "models/MLP.h"

#include "framework/nn/layers/Activations.h"
#include "framework/ops/Activation.h"
#include "framework/ops/ShapeOps.h"

namespace anvil::models {

MLP::MLP(std::int64_t in_features, std::vector<std::int64_t> hidden, std::int64_t num_class, Generator* generator) {
  auto seq = std::make_shared<nn::SequentialCell>();
  std::int64_t in = in_features;
  hidden.push_back(num_class);
  for (std::int64_t out : hidden) {
    auto d = std::make_shared<nn::Dense>(in, out, nn::DenseOptions{.generator = generator});
    layers_.push_back(d);
    seq->append(d);
    in = out;
  }
  register_cell("layers", seq);
}

Tensor MLP::forward(const Tensor& x) {
  Tensor h = x.rank() == 2 ? x : ops::flatten(x);
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    h = layers_[i]->forward(h);
    if (i + 1 < layers_.size()) h = ops::relu(h);
  }
  return h;
}

}  // namespace anvil::models
