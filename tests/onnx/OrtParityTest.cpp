// ONNX Runtime parity: every exported model and each layer type on its own, run by ONNX Runtime (npm
// onnxruntime-node, one node process per test binary) and compared with Anvil's forward in inference
// mode at batch sizes 1 and 7 (the graph is traced at batch 2, so the dynamic batch is exercised):
//   max |onnxruntime − anvil| <= 1e-4 · max |anvil|.
// Skipped with a message when node or npm is missing; measured errors are printed as "[parity] ...".
#include <functional>
#include <iostream>

#include <gtest/gtest.h>

#include "framework/autograd/GradMode.h"
#include "framework/nn/layers/Activations.h"
#include "framework/nn/layers/BatchNorm2d.h"
#include "framework/nn/layers/Conv2d.h"
#include "framework/nn/layers/Dense.h"
#include "framework/nn/layers/Dropout.h"
#include "framework/nn/layers/Pooling.h"
#include "framework/ops/Activation.h"
#include "framework/ops/Arithmetic.h"
#include "framework/ops/Linear.h"
#include "framework/ops/Reduce.h"
#include "framework/ops/ShapeOps.h"
#include "framework/ops/Softmax.h"
#include "framework/train/Model.h"
#include "models/LeNet5.h"
#include "models/MLP.h"
#include "models/ResNet.h"
#include "serialization/onnx/Export.h"
#include "tests/onnx/OnnxTestUtil.h"
#include "tests/testutil/GradCheck.h"
#include "tests/testutil/TempDir.h"

using namespace anvil;

namespace {

using CellPtr = std::shared_ptr<nn::Cell>;

// Non-trivial BatchNorm parameters and moving statistics, so inference-form BatchNorm is really tested.
void randomize_batch_norms(nn::Cell& net, std::uint64_t seed) {
  Generator g(seed);
  for (auto& [name, cell] : net.cells_and_names()) {
    if (cell->type_name() != "BatchNorm2d") continue;
    for (auto& [n, t] : cell->state_dict()) {
      const bool var = n == "moving_variance", gamma = n == "gamma";
      const double lo = var ? 0.5 : gamma ? 0.5 : -0.5, hi = var ? 2.0 : gamma ? 1.5 : 0.5;
      Tensor v = Tensor::empty(t.shape());
      for (std::int64_t i = 0; i < v.numel(); ++i) v.data<float>()[i] = static_cast<float>(g.uniform(lo, hi));
      t.copy_from(v);
    }
  }
}

Shape with_batch(std::int64_t n, const Shape& sample) {
  std::vector<std::int64_t> d{n};
  for (auto x : sample.dims()) d.push_back(x);
  return Shape(d);
}

// Exports `net` (traced at batch 2), checks the file, then compares ONNX Runtime with `reference`
// (Anvil's inference-mode output) at batch sizes 1 and 7.
void expect_parity(nn::Cell& net, const std::string& name, const Shape& sample, const testutil::TempDir& dir,
                   std::vector<std::string>& paths, const std::function<Tensor(const Tensor&)>& reference = nullptr,
                   ExportOptions options = ExportOptions{.durable = false}) {
  SCOPED_TRACE(name);
  ExportInfo info;
  ASSERT_NO_THROW(info = export_network(net, {testutil::random_f32(with_batch(2, sample), 3)}, dir.file(name), "ONNX",
                                        options));
  ASSERT_TRUE(testutil::onnx_check(info.path));
  paths.push_back(info.path);
  for (std::int64_t batch : {1, 7}) {
    Tensor x = testutil::random_f32(with_batch(batch, sample), 100 + static_cast<std::uint64_t>(batch));
    Tensor expect;
    if (reference) {
      expect = reference(x);
    } else {
      net.set_train(false);
      NoGradGuard ng;
      expect = net.forward(x);
    }
    std::vector<Tensor> got;
    ASSERT_NO_THROW(got = testutil::shared_ort()->run(info.path, {x}));
    ASSERT_EQ(got.size(), 1u);
    ASSERT_EQ(got[0].shape(), expect.shape()) << "batch " << batch;
    auto r = testutil::compare(expect, got[0]);
    std::cout << fmt::format("[parity] {:<30} batch {}  max_abs_err {:.3g}  output_scale {:.3g}  rel {:.3g}\n", name,
                             batch, r.max_abs_err, r.scale, r.scale > 0 ? r.max_abs_err / r.scale : r.max_abs_err);
    EXPECT_TRUE(r.ok()) << name << " batch " << batch << ": max abs error " << r.max_abs_err << " vs output scale "
                        << r.scale;
  }
}

// ---- composite cells of the operator zoo ----

// relu(conv(x) + x): the residual add.
class Residual : public nn::Cell {
 public:
  explicit Residual(std::int64_t c) { conv_ = register_cell("conv", std::make_shared<nn::Conv2d>(c, c, 3)); }
  Tensor forward(const Tensor& x) override { return ops::relu(ops::add(conv_->forward(x), x)); }
  std::string type_name() const override { return "Residual"; }

 private:
  std::shared_ptr<nn::Conv2d> conv_;
};

// Dense then softmax or log-softmax over the classes.
class SoftmaxHead : public nn::Cell {
 public:
  SoftmaxHead(std::int64_t in, std::int64_t out, bool log) : log_(log) {
    fc_ = register_cell("fc", std::make_shared<nn::Dense>(in, out));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = fc_->forward(x);
    return log_ ? ops::log_softmax(h) : ops::softmax(h);
  }
  std::string type_name() const override { return "SoftmaxHead"; }

 private:
  bool log_;
  std::shared_ptr<nn::Dense> fc_;
};

// The remaining eltwise and binary ops, and a constant created inside forward.
class MathOps : public nn::Cell {
 public:
  explicit MathOps(std::int64_t f) { fc_ = register_cell("fc", std::make_shared<nn::Dense>(f, f)); }
  Tensor forward(const Tensor& x) override {
    Tensor h = fc_->forward(x);                                                 // [N, F]
    Tensor a = ops::exp(ops::scale(ops::abs(h), -1.0));                         // exp(-|h|)
    Tensor b = ops::sqrt(ops::affine(ops::square(h), 1.0, 1.0));                // sqrt(h² + 1)
    Tensor c = ops::log(ops::affine(ops::sigmoid(h), 1.0, 1.0));                // log(σ(h) + 1)
    Tensor d = ops::affine(h, 0.5, 0.25);                                       // h/2 + 1/4
    Tensor k = Tensor::full(Shape{1, h.dim(1)}, 0.75);                          // a constant
    Tensor m = ops::binary(BinaryKind::kMax, a, c);
    Tensor n = ops::binary(BinaryKind::kMin, d, k);
    return ops::add(ops::sub(ops::mul(a, b), ops::div(n, b)), m);
  }
  std::string type_name() const override { return "MathOps"; }

 private:
  std::shared_ptr<nn::Dense> fc_;
};

// Non-flatten reshape, matmul with a transpose, sum and mean reductions with and without keepdim.
class ReduceReshape : public nn::Cell {
 public:
  explicit ReduceReshape(std::int64_t c) { conv_ = register_cell("conv", std::make_shared<nn::Conv2d>(c, c, 3)); }
  Tensor forward(const Tensor& x) override {
    Tensor h = conv_->forward(x);                                         // [N, C, H, W]
    Tensor g = ops::reshape(h, Shape{h.dim(0), h.dim(1), -1});            // [N, C, HW]
    Tensor gram = ops::matmul(g, g, false, true);                         // [N, C, C]
    Tensor s = ops::sum(gram, {2});                                       // [N, C]
    Tensor m = ops::mean(h, {2, 3}, true);                                // [N, C, 1, 1]
    return ops::add(ops::scale(s, 0.01), ops::reshape(m, Shape{h.dim(0), h.dim(1)}));
  }
  std::string type_name() const override { return "ReduceReshape"; }

 private:
  std::shared_ptr<nn::Conv2d> conv_;
};

CellPtr seq(std::vector<CellPtr> cells) { return std::make_shared<nn::SequentialCell>(std::move(cells)); }

CellPtr conv(std::int64_t in, std::int64_t out, std::int64_t k, nn::Conv2dOptions o) {
  return std::make_shared<nn::Conv2d>(in, out, k, o);
}

}  // namespace

TEST(OrtParity, MLP) {
  ANVIL_SKIP_WITHOUT_ORT();
  testutil::TempDir dir;
  std::vector<std::string> paths;
  Generator g(1);
  auto net = std::make_shared<models::MLP>(784, std::vector<std::int64_t>{512}, 10, &g);
  Model model(net);
  expect_parity(*net, "mlp_784_512_10", Shape{1, 28, 28}, dir, paths, [&](const Tensor& x) { return model.predict(x); });
  EXPECT_TRUE(testutil::python_full_check(paths));
  // The comparison has teeth: after one weight changes, the exported file no longer matches.
  Tensor x = testutil::random_f32({3, 1, 28, 28}, 8);
  Tensor w = net->parameters_and_names()[3].second;  // layers.1.bias
  w.data<float>()[0] += 0.5f;
  auto r = testutil::compare(model.predict(x), testutil::shared_ort()->run(paths[0], {x})[0]);
  EXPECT_FALSE(r.ok()) << r.max_abs_err;
}

TEST(OrtParity, LeNet5) {
  ANVIL_SKIP_WITHOUT_ORT();
  testutil::TempDir dir;
  std::vector<std::string> paths;
  Generator g(2);
  auto net = std::make_shared<models::LeNet5>(10, 1, &g);
  Model model(net);
  auto predict = [&](const Tensor& x) { return model.predict(x); };
  expect_parity(*net, "lenet5", Shape{1, 32, 32}, dir, paths, predict);
  // The same through external data.
  ExportOptions ext{.external_data = ExternalData::kAlways, .durable = false};
  expect_parity(*net, "lenet5_external_data", Shape{1, 32, 32}, dir, paths, predict, ext);
  // And with every opset we write.
  for (std::int64_t v : {14, 15, 16, 17})
    expect_parity(*net, "lenet5_opset" + std::to_string(v), Shape{1, 32, 32}, dir, paths, predict,
                  ExportOptions{.opset_version = v, .durable = false});
  EXPECT_TRUE(testutil::python_full_check(paths));
}

TEST(OrtParity, ResNet18) {
  ANVIL_SKIP_WITHOUT_ORT();
  testutil::TempDir dir;
  std::vector<std::string> paths;
  Generator g(3);
  // Fashion-MNIST form: 1×28×28, 3×3 stem.
  auto small = models::resnet18({.in_channels = 1, .num_classes = 10, .small_input = true, .generator = &g});
  randomize_batch_norms(*small, 4);
  Model m1(small);
  expect_parity(*small, "resnet18_1x28x28_small_stem", Shape{1, 28, 28}, dir, paths,
                [&](const Tensor& x) { return m1.predict(x); });
  // The zoo's 7×7/2 stem with the padded max-pool.
  auto zoo = models::resnet18({.in_channels = 3, .num_classes = 10, .generator = &g});
  randomize_batch_norms(*zoo, 5);
  Model m2(zoo);
  expect_parity(*zoo, "resnet18_3x64x64", Shape{3, 64, 64}, dir, paths, [&](const Tensor& x) { return m2.predict(x); });
  EXPECT_TRUE(testutil::python_full_check(paths));
}

TEST(OrtParity, ResNet50Narrow) {
  ANVIL_SKIP_WITHOUT_ORT();
  testutil::TempDir dir;
  std::vector<std::string> paths;
  Generator g(6);
  // Bottleneck blocks, "same" padding and the "same" max-pool (odd size: asymmetric padding).
  auto net = models::resnet50({.in_channels = 3, .num_classes = 7, .base_width = 8, .generator = &g});
  randomize_batch_norms(*net, 7);
  expect_parity(*net, "resnet50_w8_3x45x45", Shape{3, 45, 45}, dir, paths);
  EXPECT_EQ(paths.size(), 1u);
}

TEST(OrtParity, OperatorZoo) {
  ANVIL_SKIP_WITHOUT_ORT();
  testutil::TempDir dir;
  std::vector<std::string> paths;
  set_seed(11);
  struct Case {
    std::string name;
    CellPtr net;
    Shape sample;
  };
  using O = nn::Conv2dOptions;
  std::vector<Case> cases{
      {"dense", std::make_shared<nn::Dense>(12, 5), {12}},
      {"dense_no_bias", std::make_shared<nn::Dense>(12, 5, nn::DenseOptions{.has_bias = false}), {12}},
      {"conv_same_s1_k3", conv(3, 4, 3, O{}), {3, 9, 9}},
      {"conv_same_s2_k3_odd", conv(3, 4, 3, O{.stride = 2}), {3, 9, 9}},
      {"conv_same_s2_k4_asym", conv(3, 4, 4, O{.stride = 2}), {3, 10, 11}},
      {"conv_same_s2_k1", conv(3, 4, 1, O{.stride = 2}), {3, 9, 9}},
      {"conv_valid_s2_k3", conv(3, 4, 3, O{.stride = 2, .pad_mode = "valid"}), {3, 10, 9}},
      {"conv_pad2_k5", conv(3, 4, 5, O{.pad_mode = "pad", .padding = 2}), {3, 8, 8}},
      {"conv_pad1_s3_bias", conv(3, 4, 3, O{.stride = 3, .pad_mode = "pad", .padding = 1, .has_bias = true}),
       {3, 10, 10}},
      {"conv_same_dilation2", conv(3, 4, 3, O{.dilation = 2}), {3, 9, 9}},
      {"conv_valid_dilation3", conv(3, 4, 3, O{.pad_mode = "valid", .dilation = 3}), {3, 12, 12}},
      {"conv_group2_bias", conv(4, 6, 3, O{.group = 2, .has_bias = true}), {4, 7, 7}},
      {"conv_depthwise", conv(4, 4, 3, O{.stride = 2, .group = 4}), {4, 8, 8}},
      {"maxpool_k2_valid", std::make_shared<nn::MaxPool2d>(2), {3, 8, 9}},
      {"maxpool_k3_s2_same", std::make_shared<nn::MaxPool2d>(3, nn::PoolOptions{.stride = 2, .pad_mode = "same"}),
       {3, 9, 10}},
      {"maxpool_k3_s1_valid", std::make_shared<nn::MaxPool2d>(3, nn::PoolOptions{.stride = 1}), {3, 6, 6}},
      {"avgpool_k2_valid", std::make_shared<nn::AvgPool2d>(2), {3, 8, 8}},
      {"avgpool_k3_s1_same_nopadcount",
       std::make_shared<nn::AvgPool2d>(3, nn::PoolOptions{.stride = 1, .pad_mode = "same"}), {3, 7, 7}},
      {"avgpool_k3_s2_same", std::make_shared<nn::AvgPool2d>(3, nn::PoolOptions{.stride = 2, .pad_mode = "same"}),
       {3, 8, 9}},
      {"batchnorm_4d", seq({conv(3, 4, 3, O{}), std::make_shared<nn::BatchNorm2d>(4)}), {3, 6, 6}},
      {"batchnorm_2d_after_dense",
       seq({std::make_shared<nn::Dense>(8, 6), std::make_shared<nn::BatchNorm2d>(6, nn::BatchNormOptions{.eps = 1e-3})}),
       {8}},
      {"relu", seq({std::make_shared<nn::Dense>(8, 8), std::make_shared<nn::ReLU>()}), {8}},
      {"leaky_relu", seq({std::make_shared<nn::Dense>(8, 8), std::make_shared<nn::LeakyReLU>(0.2)}), {8}},
      {"sigmoid", seq({std::make_shared<nn::Dense>(8, 8), std::make_shared<nn::Sigmoid>()}), {8}},
      {"tanh", seq({std::make_shared<nn::Dense>(8, 8), std::make_shared<nn::Tanh>()}), {8}},
      {"gelu", seq({std::make_shared<nn::Dense>(8, 8), std::make_shared<nn::GELU>()}), {8}},
      {"flatten", seq({conv(2, 3, 3, O{}), std::make_shared<nn::Flatten>(), std::make_shared<nn::Dense>(48, 4)}),
       {2, 4, 4}},
      {"dropout_inference",
       seq({std::make_shared<nn::Dense>(8, 8), std::make_shared<nn::Dropout>(0.5), std::make_shared<nn::Dense>(8, 3)}),
       {8}},
      {"residual_add", std::make_shared<Residual>(3), {3, 6, 6}},
      {"softmax", std::make_shared<SoftmaxHead>(8, 5, false), {8}},
      {"log_softmax", std::make_shared<SoftmaxHead>(8, 5, true), {8}},
      {"math_ops", std::make_shared<MathOps>(6), {6}},
      {"reshape_matmul_reduce", std::make_shared<ReduceReshape>(3), {3, 5, 5}},
  };
  for (auto& c : cases) {
    randomize_batch_norms(*c.net, 21);
    expect_parity(*c.net, "zoo_" + c.name, c.sample, dir, paths);
  }
  EXPECT_TRUE(testutil::python_full_check(paths));
}
