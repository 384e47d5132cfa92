// A tour of the sequence/regularization layers: Embedding -> LayerNorm -> Conv1d -> Dropout2d ->
// GlobalAvgPool -> Dense, trained with BCEWithLogitsLoss and Adam on synthetic token sequences.
//
//   layers_tour [--steps 80] [--batch-size 32] [--lr 0.01] [--seed 1]
//
// Task: a sequence of 16 tokens from a vocabulary of 20 is positive when more than half of its
// tokens come from the lower half of the vocabulary. The loss printed every 10 steps goes down.
#include <cstdint>
#include <exception>
#include <iostream>
#include <memory>
#include <vector>

#include "examples/Flags.h"
#include "framework/autograd/Engine.h"
#include "framework/core/Random.h"
#include "framework/nn/layers/Conv1d.h"
#include "framework/nn/layers/Dense.h"
#include "framework/nn/layers/Dropout2d.h"
#include "framework/nn/layers/Embedding.h"
#include "framework/nn/layers/GlobalAvgPool.h"
#include "framework/nn/layers/LayerNorm.h"
#include "framework/nn/losses/BCEWithLogitsLoss.h"
#include "framework/ops/Activation.h"
#include "framework/ops/Linear.h"
#include "framework/ops/ShapeOps.h"
#include "framework/optim/Adam.h"

namespace {

using namespace anvil;

constexpr std::int64_t kVocab = 20, kLen = 16, kEmbed = 8, kChannels = 16;

class TourNet : public nn::Cell {
 public:
  explicit TourNet(Generator& gen) {
    embedding = register_cell("embedding", std::make_shared<nn::Embedding>(
                                               kVocab, kEmbed, nn::EmbeddingOptions{.padding_idx = 0, .generator = &gen}));
    norm = register_cell("norm", std::make_shared<nn::LayerNorm>(std::vector<std::int64_t>{kEmbed}));
    conv = register_cell("conv", std::make_shared<nn::Conv1d>(
                                     kEmbed, kChannels, 3, nn::Conv1dOptions{.has_bias = true, .generator = &gen}));
    drop = register_cell("drop", std::make_shared<nn::Dropout2d>(0.1, 7));
    pool = register_cell("pool", std::make_shared<nn::GlobalAvgPool>(nn::GlobalAvgPoolOptions{.keep_dims = false}));
    head = register_cell("head", std::make_shared<nn::Dense>(kChannels, 1, nn::DenseOptions{.generator = &gen}));
  }

  // tokens [N, L] int32 -> logits [N, 1]
  Tensor forward(const Tensor& tokens) override {
    const std::int64_t n = tokens.dim(0);
    Tensor h = norm->forward(embedding->forward(tokens));  // [N, L, E]
    // Conv1d wants channels first, [N, E, L]. Anvil has no permute op yet: hᵀ · I with a batched
    // matmul transposes the last two dims (and is differentiable).
    h = ops::matmul(h, identity(n), /*trans_a=*/true);     // [N, E, L]
    h = ops::relu(conv->forward(h));                       // [N, K, L]
    h = drop->forward(ops::reshape(h, Shape{n, kChannels, 1, kLen}));  // [N, K, 1, L], whole channels dropped
    return head->forward(pool->forward(h));                // [N, K] -> [N, 1]
  }
  std::string type_name() const override { return "TourNet"; }

  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::LayerNorm> norm;
  std::shared_ptr<nn::Conv1d> conv;
  std::shared_ptr<nn::Dropout2d> drop;
  std::shared_ptr<nn::GlobalAvgPool> pool;
  std::shared_ptr<nn::Dense> head;

 private:
  // [N, L, L] identity matrices (cached per batch size).
  Tensor identity(std::int64_t n) {
    if (!eye_.defined() || eye_.dim(0) != n) {
      eye_ = Tensor::zeros(Shape{n, kLen, kLen});
      float* p = eye_.data<float>();
      for (std::int64_t b = 0; b < n; ++b)
        for (std::int64_t i = 0; i < kLen; ++i) p[(b * kLen + i) * kLen + i] = 1.0f;
    }
    return eye_;
  }
  Tensor eye_;
};

// A batch of random token sequences [N, L] and their labels [N, 1].
void make_batch(std::int64_t n, Generator& gen, Tensor& tokens, Tensor& labels) {
  std::vector<std::int32_t> t(static_cast<std::size_t>(n * kLen));
  std::vector<float> y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    int low = 0;
    for (std::int64_t j = 0; j < kLen; ++j) {
      const auto tok = static_cast<std::int32_t>(1 + gen.randint(kVocab - 1));  // 0 is the padding token
      t[static_cast<std::size_t>(i * kLen + j)] = tok;
      low += tok <= kVocab / 2;
    }
    y[static_cast<std::size_t>(i)] = low > kLen / 2 ? 1.0f : 0.0f;
  }
  tokens = Tensor::from_vector(t, Shape{n, kLen});
  labels = Tensor::from_vector(y, Shape{n, 1});
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 80;
  std::int64_t batch_size = 32;
  double lr = 0.01;
  std::uint64_t seed = 1;
  examples::Flags flags(argv[0]);
  flags.add("--steps", steps);
  flags.add("--batch-size", batch_size);
  flags.add("--lr", lr);
  flags.add("--seed", seed);
  flags.parse(argc, argv);
  if (steps < 1 || batch_size < 1) flags.usage("steps and batch size must be >= 1", 2);
  try {
    Generator gen(seed), data(seed + 1);
    auto net = std::make_shared<TourNet>(gen);
    nn::BCEWithLogitsLoss loss_fn;
    Adam opt(net->trainable_params(), lr);
    std::cout << "parameters:";
    for (const auto& [name, p] : net->parameters_and_names()) std::cout << ' ' << name << p.shape().str();
    std::cout << '\n';
    double window = 0.0;
    for (int step = 1; step <= steps; ++step) {
      Tensor tokens, labels;
      make_batch(batch_size, data, tokens, labels);
      Tensor loss = loss_fn(net->forward(tokens), labels);
      opt.zero_grad();
      backward(loss);
      opt.step();
      window += loss.item();
      if (step % 10 == 0) {
        std::cout << "step " << step << "  loss " << window / 10.0 << '\n';
        window = 0.0;
      }
    }
    // Accuracy on fresh data, in inference mode (Dropout2d is the identity there).
    net->set_train(false);
    Tensor tokens, labels;
    make_batch(512, data, tokens, labels);
    const std::vector<float> logits = net->forward(tokens).to_vector<float>(), y = labels.to_vector<float>();
    int correct = 0;
    for (std::size_t i = 0; i < y.size(); ++i) correct += (logits[i] > 0.0f) == (y[i] > 0.5f);
    std::cout << "accuracy on 512 fresh sequences: " << 100.0 * correct / static_cast<double>(y.size()) << " %\n";
  } catch (const std::exception& e) {
    std::cerr << "layers_tour: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
