// Issue 7's layers (Embedding, LayerNorm, GlobalAvgPool, Conv1d, Dropout2d) and losses
// (BCEWithLogitsLoss, L1Loss, SmoothL1Loss, NLLLoss): MindSpore parameter names and shapes,
// float64 gradient checks, values, and errors that name the layer, the shape or the value.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "framework/autograd/Engine.h"
#include "framework/backend/Backend.h"
#include "framework/nn/layers/Conv1d.h"
#include "framework/nn/layers/Dropout2d.h"
#include "framework/nn/layers/Embedding.h"
#include "framework/nn/layers/GlobalAvgPool.h"
#include "framework/nn/layers/LayerNorm.h"
#include "framework/nn/losses/BCEWithLogitsLoss.h"
#include "framework/nn/losses/L1Loss.h"
#include "framework/nn/losses/NLLLoss.h"
#include "framework/nn/losses/SmoothL1Loss.h"
#include "framework/ops/Arithmetic.h"
#include "framework/ops/Reduce.h"
#include "framework/ops/Softmax.h"
#include "framework/train/Model.h"
#include "framework/train/TrainState.h"
#include "tests/testutil/GradCheck.h"
#include "tests/testutil/Errors.h"

using namespace anvil;
using anvil::testutil::error_of;
using testutil::grad_check;
using testutil::grad_check_params;
using testutil::random_f64;

namespace {

std::vector<std::string> names(const NamedTensors& v) {
  std::vector<std::string> out;
  for (auto& [n, t] : v) out.push_back(n + " " + t.shape().str());
  return out;
}

// A fixed random weighting so every output element matters in a scalar loss.
Tensor weighted_sum(const Tensor& y, std::uint64_t seed) { return ops::sum(ops::mul(y, random_f64(y.shape(), seed))); }

}  // namespace

TEST(NewLayers, ParameterNamesAndShapesFollowMindSpore) {
  nn::Embedding emb(10, 4);
  EXPECT_EQ(names(emb.parameters_and_names()), (std::vector<std::string>{"embedding_table [10,4]"}));
  nn::LayerNorm ln({3, 5});
  EXPECT_EQ(names(ln.parameters_and_names()), (std::vector<std::string>{"gamma [3,5]", "beta [3,5]"}));
  EXPECT_EQ(ln.gamma().to_vector<float>(), std::vector<float>(15, 1.0f));
  nn::Conv1d conv(6, 8, 3, {.group = 2, .has_bias = true});
  EXPECT_EQ(names(conv.parameters_and_names()), (std::vector<std::string>{"weight [8,3,1,3]", "bias [8]"}));
  EXPECT_TRUE(nn::GlobalAvgPool().parameters_and_names().empty());
  EXPECT_TRUE(nn::Dropout2d(0.2, 1).parameters_and_names().empty());
}

// ---------------------------------------------------------------------------------------------
// Embedding
// ---------------------------------------------------------------------------------------------
TEST(NewLayers, EmbeddingGradCheckInFloat64) {
  nn::Embedding emb(6, 3, {.padding_idx = 2});
  emb.to_dtype(DType::kF64);
  // Indices avoid the padding row: it is a constant (no gradient although the forward reads it), so
  // finite differences cannot agree there; its zero gradient is checked in the next test.
  const Tensor idx = Tensor::from_vector<std::int32_t>({0, 3, 5, 5, 1, 3}, Shape{3, 2});
  auto loss = [&] { return weighted_sum(emb.forward(idx), 3); };
  EXPECT_TRUE(grad_check_params(loss, emb.parameters_and_names()));
  EXPECT_EQ(emb.forward(idx).shape(), (Shape{3, 2, 3}));
}

TEST(NewLayers, EmbeddingPaddingRowIsZeroAndGetsNoGradient) {
  nn::Embedding emb(5, 3, {.padding_idx = -1});  // counts from the end: row 4
  ASSERT_EQ(emb.padding_idx(), 4);
  const std::vector<float> t = emb.embedding_table().to_vector<float>();
  for (int j = 0; j < 3; ++j) EXPECT_EQ(t[static_cast<std::size_t>(12 + j)], 0.0f);
  const Tensor idx = Tensor::from_vector<std::int64_t>({4, 1, 4, 1}, Shape{4});
  backward(ops::sum(emb.forward(idx)));
  const std::vector<float> g = emb.embedding_table().grad().to_vector<float>();
  for (int j = 0; j < 3; ++j) {
    EXPECT_EQ(g[static_cast<std::size_t>(3 + j)], 2.0f);   // row 1 used twice
    EXPECT_EQ(g[static_cast<std::size_t>(12 + j)], 0.0f);  // padding row
    EXPECT_EQ(g[static_cast<std::size_t>(0 + j)], 0.0f);   // unused row
  }
  EXPECT_THROW(nn::Embedding(5, 3, {.padding_idx = 5}), Error);
}

TEST(NewLayers, EmbeddingErrorsNameTheLayerIndexAndVocabSize) {
  nn::Embedding emb(10, 4);
  std::string msg = error_of([&] { emb.forward(Tensor::from_vector<std::int32_t>({1, 12, 3}, Shape{3})); });
  EXPECT_NE(msg.find("Embedding(10, 4)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("index 12"), std::string::npos) << msg;
  EXPECT_NE(msg.find("vocab_size 10"), std::string::npos) << msg;
  msg = error_of([&] { emb.forward(Tensor::zeros(Shape{3})); });
  EXPECT_NE(msg.find("int32 or int64"), std::string::npos) << msg;
  EXPECT_THROW(nn::Embedding(0, 4), Error);
}

// ---------------------------------------------------------------------------------------------
// LayerNorm
// ---------------------------------------------------------------------------------------------
TEST(NewLayers, LayerNormGradCheckInFloat64) {
  nn::LayerNorm ln({4}, {.epsilon = 1e-5});
  ln.to_dtype(DType::kF64);
  // Non-trivial gamma/beta so their gradients and the input's are all exercised.
  ln.gamma().copy_from(random_f64({4}, 40, 0.5, 1.5));
  ln.beta().copy_from(random_f64({4}, 41));
  const Tensor x = random_f64({2, 3, 4}, 42);
  EXPECT_TRUE(grad_check_params([&] { return weighted_sum(ln.forward(x), 43); }, ln.parameters_and_names()));
  EXPECT_TRUE(grad_check([&](const auto& v) { return ln.forward(v[0]); }, {x}));
  nn::LayerNorm ln2({3, 4});
  ln2.to_dtype(DType::kF64);
  EXPECT_TRUE(grad_check([&](const auto& v) { return ln2.forward(v[0]); }, {x}));
}

TEST(NewLayers, LayerNormNormalizesEachRowAndNamesBadShapes) {
  nn::LayerNorm ln({4});
  const Tensor y = ln.forward(Tensor::from_vector<float>({1, 2, 3, 4, 10, 10, 20, 20}, Shape{2, 4}));
  const std::vector<float> v = y.to_vector<float>();
  for (int r = 0; r < 2; ++r) {
    double m = 0, s = 0;
    for (int j = 0; j < 4; ++j) m += v[static_cast<std::size_t>(r * 4 + j)];
    for (int j = 0; j < 4; ++j) s += std::pow(v[static_cast<std::size_t>(r * 4 + j)] - m / 4, 2);
    EXPECT_NEAR(m / 4, 0.0, 1e-6);
    EXPECT_NEAR(s / 4, 1.0, 1e-5);
  }
  const std::string msg = error_of([&] { ln.forward(Tensor::zeros(Shape{2, 5})); });
  EXPECT_NE(msg.find("LayerNorm([4])"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2,5]"), std::string::npos) << msg;
  EXPECT_THROW(nn::LayerNorm({}), Error);
  EXPECT_THROW(nn::LayerNorm({4}, {.epsilon = 0.0}), Error);
}

// ---------------------------------------------------------------------------------------------
// GlobalAvgPool
// ---------------------------------------------------------------------------------------------
TEST(NewLayers, GlobalAvgPoolValuesShapesAndGradient) {
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 10, 20, 30, 40}, Shape{1, 2, 2, 2});
  nn::GlobalAvgPool keep;
  const Tensor y = keep.forward(x);
  EXPECT_EQ(y.shape(), (Shape{1, 2, 1, 1}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{2.5f, 25.0f}));
  nn::GlobalAvgPool flat({.keep_dims = false});
  EXPECT_EQ(flat.forward(x).shape(), (Shape{1, 2}));
  EXPECT_TRUE(grad_check([&](const auto& v) { return flat.forward(v[0]); }, {random_f64({2, 3, 4, 5}, 50)}));
  const std::string msg = error_of([&] { keep.forward(Tensor::zeros(Shape{2, 3, 4})); });
  EXPECT_NE(msg.find("GlobalAvgPool"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2,3,4]"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------------------
// Conv1d
// ---------------------------------------------------------------------------------------------
TEST(NewLayers, Conv1dGradCheckEveryPadModeStrideDilationGroup) {
  struct Case {
    nn::Conv1dOptions o;
    std::int64_t in, out, k;
  };
  std::vector<Case> cases;
  cases.push_back({{.has_bias = true}, 3, 4, 3});
  cases.push_back({{.stride = 2}, 2, 3, 3});
  cases.push_back({{.pad_mode = "valid", .has_bias = true}, 2, 2, 2});
  cases.push_back({{.pad_mode = "pad", .padding = 2, .dilation = 2, .has_bias = true}, 2, 3, 3});
  cases.push_back({{.group = 2, .has_bias = true}, 4, 6, 3});
  for (const Case& c : cases) {
    nn::Conv1d conv(c.in, c.out, c.k, c.o);
    conv.to_dtype(DType::kF64);
    const Tensor x = random_f64({2, c.in, 7}, 60);
    SCOPED_TRACE(conv.extra_repr());
    EXPECT_TRUE(grad_check_params([&] { return weighted_sum(conv.forward(x), 61); }, conv.parameters_and_names()));
    EXPECT_TRUE(grad_check([&](const auto& v) { return conv.forward(v[0]); }, {x}));
  }
}

TEST(NewLayers, Conv1dOutputLengthsAndHandComputedValues) {
  EXPECT_EQ(nn::Conv1d(1, 2, 3, {.stride = 2}).forward(Tensor::zeros(Shape{1, 1, 7})).shape(), (Shape{1, 2, 4}));
  EXPECT_EQ(nn::Conv1d(1, 2, 5, {.pad_mode = "valid"}).forward(Tensor::zeros(Shape{3, 1, 32})).shape(),
            (Shape{3, 2, 28}));
  EXPECT_EQ(nn::Conv1d(1, 2, 3, {.pad_mode = "pad", .padding = 2}).forward(Tensor::zeros(Shape{1, 1, 5})).shape(),
            (Shape{1, 2, 7}));
  // y[l] = Σ_k w[k] x[l + k - 1] with zero padding ("same", kernel 3) plus bias.
  nn::Conv1d conv(1, 1, 3, {.has_bias = true});
  conv.weight().copy_from(Tensor::from_vector<float>({1, 2, 3}, Shape{1, 1, 1, 3}));
  conv.bias().copy_from(Tensor::from_vector<float>({0.5f}, Shape{1}));
  const Tensor y = conv.forward(Tensor::from_vector<float>({1, 10, 100, 1000}, Shape{1, 1, 4}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{0 + 2 + 30 + 0.5f, 1 + 20 + 300 + 0.5f, 10 + 200 + 3000 + 0.5f,
                                                      100 + 2000 + 0 + 0.5f}));
}

TEST(NewLayers, Conv1dErrorsNameTheShapes) {
  nn::Conv1d conv(3, 8, 3);
  std::string msg = error_of([&] { conv.forward(Tensor::zeros(Shape{2, 4, 10})); });
  EXPECT_NE(msg.find("Conv1d"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2,4,10]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[8,3,1,3]"), std::string::npos) << msg;
  msg = error_of([&] { conv.forward(Tensor::zeros(Shape{2, 3, 1, 10})); });
  EXPECT_NE(msg.find("[2,3,1,10]"), std::string::npos) << msg;
  nn::Conv1d valid(3, 8, 5, {.pad_mode = "valid"});
  msg = error_of([&] { valid.forward(Tensor::zeros(Shape{1, 3, 4})); });
  EXPECT_NE(msg.find("length 4"), std::string::npos) << msg;
  EXPECT_THROW(nn::Conv1d(3, 8, 3, {.pad_mode = "bogus"}), Error);
  EXPECT_THROW(nn::Conv1d(3, 8, 3, {.group = 2}), Error);
  EXPECT_THROW(nn::Conv1d(3, 8, 3, {.padding = 1}), Error);
}

// ---------------------------------------------------------------------------------------------
// Dropout2d
// ---------------------------------------------------------------------------------------------
TEST(NewLayers, Dropout2dIsSeededZeroesChannelsAndIsIdentityInInference) {
  nn::Dropout2d a(0.5, 42), b(0.5, 42);
  const Tensor x = Tensor::ones(Shape{4, 32, 2, 2});
  const std::vector<float> ya = a.forward(x).to_vector<float>(), yb = b.forward(x).to_vector<float>();
  EXPECT_EQ(ya, yb);
  int zeros = 0;
  for (std::size_t ch = 0; ch < 128; ++ch) {
    for (std::size_t i = 1; i < 4; ++i) ASSERT_EQ(ya[ch * 4 + i], ya[ch * 4]);
    EXPECT_TRUE(ya[ch * 4] == 0.0f || ya[ch * 4] == 2.0f);
    zeros += ya[ch * 4] == 0.0f;
  }
  EXPECT_NEAR(zeros, 64, 20);
  EXPECT_NE(a.forward(x).to_vector<float>(), ya);  // the generator moved on
  a.set_train(false);
  EXPECT_EQ(a.forward(x).to_vector<float>(), x.to_vector<float>());
  const std::string msg = error_of([&] { b.forward(Tensor::ones(Shape{4, 32})); });
  EXPECT_NE(msg.find("Dropout2d"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4,32]"), std::string::npos) << msg;
  EXPECT_THROW(nn::Dropout2d(1.0), Error);
}

TEST(NewLayers, Dropout2dRandomStreamIsPartOfTheTrainState) {
  // Exact resume saves every Dropout's generator; Dropout2d is a Dropout, so its stream is listed too.
  auto drop = std::make_shared<nn::Dropout2d>(0.2, 3);
  auto net = std::make_shared<nn::SequentialCell>(
      std::vector<std::shared_ptr<nn::Cell>>{drop, std::make_shared<nn::GlobalAvgPool>()});
  Model model(net);
  const auto streams = rng_streams(model);
  ASSERT_EQ(streams.size(), 2u);
  EXPECT_EQ(streams[1].first, "cell.0");
  EXPECT_EQ(streams[1].second, &drop->generator());
}

TEST(NewLayers, Dropout2dGradCheckWithFixedSeed) {
  EXPECT_TRUE(grad_check(
      [](const auto& v) {
        nn::Dropout2d d(0.3, 9);  // a fresh layer per evaluation: the same channel mask every time
        return d.forward(v[0]);
      },
      {random_f64({2, 5, 3, 2}, 70)}));
}

// ---------------------------------------------------------------------------------------------
// loss cells
// ---------------------------------------------------------------------------------------------
TEST(NewLosses, GradCheckThroughTheCells) {
  const Tensor probs = random_f64({5, 3}, 80, 0.0, 1.0);
  nn::BCEWithLogitsLoss bce;
  EXPECT_TRUE(grad_check([&](const auto& v) { return bce(v[0], probs); }, {random_f64({5, 3}, 81, -4, 4)}));
  nn::BCEWithLogitsLoss bce_w({.reduction = "sum", .weight = Tensor::from_vector<float>({1, 2, 3}, Shape{3}),
                               .pos_weight = Tensor::from_vector<float>({0.5f, 1, 4}, Shape{3})});
  EXPECT_TRUE(grad_check([&](const auto& v) { return bce_w(v[0], probs); }, {random_f64({5, 3}, 82, -4, 4)}));
  nn::L1Loss l1;
  EXPECT_TRUE(grad_check([&](const auto& v) { return l1(v[0], v[1]); }, {random_f64({5, 3}, 83), random_f64({5, 3}, 84)}));
  nn::SmoothL1Loss sl1({.beta = 0.3});
  EXPECT_TRUE(grad_check([&](const auto& v) { return sl1(v[0], v[1]); }, {random_f64({5, 3}, 85), random_f64({5, 3}, 86)}));
  nn::NLLLoss nll;
  const Tensor labels = Tensor::from_vector<std::int32_t>({0, 2, 1, 1, 0}, Shape{5});
  EXPECT_TRUE(grad_check([&](const auto& v) { return nll(ops::log_softmax(v[0]), labels); }, {random_f64({5, 3}, 87)}));
}

TEST(NewLosses, DefaultsFollowMindSporeAndErrorsNameShapes) {
  nn::SmoothL1Loss sl1;  // MindSpore: beta 1.0, reduction "none"
  const Tensor d = Tensor::from_vector<float>({0.5f, 2.0f}, Shape{2});
  const Tensor z = Tensor::zeros(Shape{2});
  EXPECT_EQ(sl1(d, z).to_vector<float>(), (std::vector<float>{0.125f, 1.5f}));
  nn::L1Loss l1;
  EXPECT_FLOAT_EQ(static_cast<float>(l1(d, z).item()), 1.25f);
  nn::NLLLoss nll;
  const Tensor lp = Tensor::from_vector<float>({-1, -2, -3, -4}, Shape{2, 2});
  EXPECT_FLOAT_EQ(static_cast<float>(nll(lp, Tensor::from_vector<std::int32_t>({1, 0}, Shape{2})).item()), 2.5f);
  std::string msg = error_of([&] { nll(lp, Tensor::from_vector<std::int32_t>({1, 2}, Shape{2})); });
  EXPECT_NE(msg.find("is 2"), std::string::npos) << msg;
  nn::BCEWithLogitsLoss bce;
  msg = error_of([&] { bce(Tensor::zeros(Shape{2, 3}), Tensor::zeros(Shape{3, 2})); });
  EXPECT_NE(msg.find("[2,3]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[3,2]"), std::string::npos) << msg;
  EXPECT_THROW(nn::SmoothL1Loss({.beta = -1.0}), Error);
  EXPECT_THROW(nn::BCEWithLogitsLoss({.reduction = "avg"}), Error);
  EXPECT_THROW(nn::NLLLoss({.weight = Tensor::ones(Shape{2, 2})}), Error);
}
