// Cell::summary / Model::summary: rows, output shapes, parameter counts, and no side effects.
#include <gtest/gtest.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "framework/core/Error.h"
#include "framework/nn/Cell.h"
#include "framework/nn/layers/Activations.h"
#include "framework/nn/layers/BatchNorm2d.h"
#include "framework/nn/layers/Conv2d.h"
#include "framework/nn/layers/Dense.h"
#include "framework/train/Model.h"
#include "models/LeNet5.h"
#include "tests/testutil/Errors.h"

using namespace anvil;
using anvil::testutil::has;

namespace {

// The table row whose first column is `path` (empty when absent).
std::string row(const std::string& table, const std::string& path) {
  std::istringstream in(table);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(path + " ", 0) == 0) return line;
  return "";
}
std::int64_t total_params(const nn::Cell& c) {
  std::int64_t n = 0;
  for (const auto& [name, t] : c.parameters_and_names()) n += t.numel();
  return n;
}

}  // namespace

TEST(Summary, LeNetRowsShapesAndTotals) {
  Generator gen(1);
  auto net = std::make_shared<models::LeNet5>(10, 1, &gen);
  const std::int64_t total = total_params(*net);
  const std::string s = net->summary(Tensor::zeros(Shape{2, 1, 32, 32}));
  EXPECT_TRUE(has(s, "Total params: " + std::to_string(total) + "\n")) << s;
  EXPECT_TRUE(has(s, "Trainable params: " + std::to_string(total) + "\n")) << s;
  EXPECT_TRUE(has(s, "Non-trainable params: 0\n")) << s;
  EXPECT_TRUE(has(row(s, "(root)"), "LeNet5")) << s;
  EXPECT_TRUE(has(row(s, "(root)"), "[2,10]")) << s;
  // conv1: 6*1*5*5 weights (+ bias when the layer has one), output [2,6,28,28].
  const auto conv1 = net->child("conv1").parameters_and_names();
  std::int64_t conv1_params = 0;
  for (const auto& [n, t] : conv1) conv1_params += t.numel();
  EXPECT_TRUE(has(row(s, "conv1"), "Conv2d")) << s;
  EXPECT_TRUE(has(row(s, "conv1"), "[2,6,28,28]")) << s;
  EXPECT_TRUE(has(row(s, "conv1"), " " + std::to_string(conv1_params))) << s;
  EXPECT_TRUE(has(row(s, "conv2"), "[2,16,10,10]")) << s;
  EXPECT_TRUE(has(row(s, "fc1"), "Dense")) << s;
  EXPECT_TRUE(has(row(s, "fc1"), "[2,120]")) << s;
  EXPECT_TRUE(has(row(s, "fc1"), std::to_string(400 * 120 + 120))) << s;
  EXPECT_TRUE(has(row(s, "fc3"), "[2,10]")) << s;

  // Without a sample: same rows and totals, shapes "-".
  const std::string plain = net->summary();
  EXPECT_TRUE(has(plain, "Total params: " + std::to_string(total) + "\n")) << plain;
  EXPECT_TRUE(has(row(plain, "conv2"), " - ")) << plain;

  // Model forwards to the network.
  Model model(net);
  EXPECT_EQ(model.summary(Tensor::zeros(Shape{2, 1, 32, 32})), s);
  EXPECT_EQ(model.summary(), plain);
}

TEST(Summary, SequentialChildrenBuffersAndNoSideEffects) {
  auto seq = std::make_shared<nn::SequentialCell>();
  seq->append(std::make_shared<nn::Conv2d>(3, 4, 3, nn::Conv2dOptions{.pad_mode = "valid"}));
  seq->append(std::make_shared<nn::BatchNorm2d>(4));
  seq->append(std::make_shared<nn::ReLU>());
  seq->append(std::make_shared<nn::Flatten>());
  seq->append(std::make_shared<nn::Dense>(4 * 3 * 3, 5));
  seq->set_train(true);
  seq->child("1").set_train(false);  // mixed modes must come back exactly
  const auto before = seq->state_dict();
  std::vector<std::vector<float>> values;
  for (const auto& [n, t] : before) values.push_back(t.to_vector<float>());

  Tensor x = Tensor::full(Shape{2, 3, 5, 5}, 0.5);
  const std::string s = seq->summary(x);
  EXPECT_TRUE(has(row(s, "2"), "ReLU")) << s;
  EXPECT_TRUE(has(row(s, "2"), "[2,4,3,3]")) << s;  // a parameterless child of a SequentialCell
  EXPECT_TRUE(has(row(s, "3"), "[2,36]")) << s;
  EXPECT_TRUE(has(row(s, "4"), "[2,5]")) << s;
  EXPECT_TRUE(has(row(s, "(root)"), "[2,5]")) << s;
  const std::int64_t buffers = 4 + 4;  // BatchNorm moving_mean + moving_variance
  EXPECT_TRUE(has(s, "Buffers: " + std::to_string(buffers))) << s;

  EXPECT_TRUE(seq->training());
  EXPECT_FALSE(seq->child("1").training());
  EXPECT_TRUE(seq->child("2").training());
  const auto after = seq->state_dict();
  ASSERT_EQ(after.size(), values.size());
  for (std::size_t i = 0; i < after.size(); ++i) EXPECT_EQ(after[i].second.to_vector<float>(), values[i]) << after[i].first;

  // A wrong input shape: the forward's error, modes restored.
  EXPECT_THROW((void)seq->summary(Tensor::zeros(Shape{2, 7, 5, 5})), Error);
  EXPECT_TRUE(seq->child("2").training());
  EXPECT_FALSE(seq->child("1").training());
}
