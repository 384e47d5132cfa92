// export_network: file structure, names, options, errors and mode handling (no ONNX Runtime needed).
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "framework/nn/layers/Activations.h"
#include "framework/nn/layers/BatchNorm2d.h"
#include "framework/nn/layers/Conv1d.h"
#include "framework/nn/layers/Conv2d.h"
#include "framework/nn/layers/Dense.h"
#include "framework/nn/layers/Dropout.h"
#include "framework/nn/layers/Dropout2d.h"
#include "framework/nn/layers/Embedding.h"
#include "framework/nn/layers/GlobalAvgPool.h"
#include "framework/nn/layers/LayerNorm.h"
#include "framework/nn/layers/Pooling.h"
#include "framework/nn/losses/LossCell.h"
#include "framework/ops/Activation.h"
#include "models/LeNet5.h"
#include "models/MLP.h"
#include "models/ResNet.h"
#include "serialization/onnx/Export.h"
#include "tests/onnx/OnnxTestUtil.h"
#include "tests/testutil/GradCheck.h"
#include "tests/testutil/TempDir.h"
#include "tests/testutil/Errors.h"

using namespace anvil;
using anvil::testutil::error_of;
namespace fs = std::filesystem;

namespace {

// A network with a child of the given cell, after a Dense.
class Holder : public nn::Cell {
 public:
  explicit Holder(std::shared_ptr<nn::Cell> c) {
    fc_ = register_cell("fc", std::make_shared<nn::Dense>(4, 4));
    head_ = register_cell("head", std::move(c));
  }
  Tensor forward(const Tensor& x) override { return head_->forward(fc_->forward(x)); }
  std::string type_name() const override { return "Holder"; }

 private:
  std::shared_ptr<nn::Cell> fc_, head_;
};

// A leaf cell outside framework/nn (its forward uses only traced ops).
class Swish : public nn::Cell {
 public:
  Tensor forward(const Tensor& x) override { return ops::sigmoid(x); }
  std::string type_name() const override { return "Swish"; }
};

ExportOptions fast() { return ExportOptions{.durable = false}; }

}  // namespace

TEST(OnnxExport, UnsupportedFormatsNameTheSupportedOnes) {
  testutil::TempDir dir;
  models::MLP net(4, {3}, 2);
  for (const char* f : {"MINDIR", "AIR", "GEIR", "mindir", "TFLITE"}) {
    const std::string msg = error_of([&] { export_network(net, {Tensor::zeros({1, 4})}, dir.file("m"), f); });
    EXPECT_NE(msg.find("unsupported format"), std::string::npos) << msg;
    EXPECT_NE(msg.find("supported: ONNX"), std::string::npos) << msg;
    EXPECT_NE(msg.find(f), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(dir.file("m.onnx")));
  EXPECT_EQ(supported_export_formats(), std::vector<std::string>{"ONNX"});
  // The format name is case-insensitive.
  EXPECT_TRUE(testutil::onnx_check(export_network(net, {Tensor::zeros({1, 4})}, dir.file("m"), "onnx", fast()).path));
}

TEST(OnnxExport, AppendsOnnxExtensionLikeMindSpore) {
  testutil::TempDir dir;
  models::MLP net(4, {3}, 2);
  auto info = export_network(net, {Tensor::zeros({1, 4})}, dir.file("net"), "ONNX", fast());
  EXPECT_EQ(info.path, dir.file("net.onnx"));
  EXPECT_TRUE(testutil::onnx_check(info.path));
  info = export_network(net, {Tensor::zeros({1, 4})}, dir.file("other.onnx"), "ONNX", fast());
  EXPECT_EQ(info.path, dir.file("other.onnx"));
  EXPECT_TRUE(testutil::onnx_check(info.path));
  EXPECT_FALSE(fs::exists(dir.file("other.onnx.onnx")));
  EXPECT_EQ(onnx_path("a.b"), "a.b.onnx");
  EXPECT_EQ(info.file_bytes, fs::file_size(info.path));
}

TEST(OnnxExport, LeNetModelProtoHeaderNamesAndStreamedWeights) {
  testutil::TempDir dir;
  Generator g(3);
  models::LeNet5 net(10, 1, &g);
  auto info = export_network(net, {Tensor::zeros({2, 1, 32, 32})}, dir.file("lenet"), "ONNX", fast());
  ASSERT_TRUE(testutil::onnx_check(info.path));
  onnx::ModelProto m = testutil::load_onnx(info.path);
  EXPECT_EQ(m.ir_version(), 8);
  ASSERT_EQ(m.opset_import_size(), 1);
  EXPECT_EQ(m.opset_import(0).domain(), "");
  EXPECT_EQ(m.opset_import(0).version(), 13);
  EXPECT_EQ(m.producer_name(), "anvil");
  const auto& gr = m.graph();
  // Dynamic batch on input and output.
  ASSERT_EQ(gr.input_size(), 1);
  EXPECT_EQ(gr.input(0).name(), "input");
  const auto& in_shape = gr.input(0).type().tensor_type().shape();
  ASSERT_EQ(in_shape.dim_size(), 4);
  EXPECT_EQ(in_shape.dim(0).dim_param(), "N");
  EXPECT_EQ(in_shape.dim(1).dim_value(), 1);
  EXPECT_EQ(in_shape.dim(3).dim_value(), 32);
  ASSERT_EQ(gr.output_size(), 1);
  EXPECT_EQ(gr.output(0).name(), "output");
  EXPECT_EQ(gr.output(0).type().tensor_type().shape().dim(0).dim_param(), "N");
  EXPECT_EQ(gr.output(0).type().tensor_type().shape().dim(1).dim_value(), 10);
  // Node sequence.
  std::vector<std::string> types;
  for (const auto& n : gr.node()) types.push_back(n.op_type());
  EXPECT_EQ(types, (std::vector<std::string>{"Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten", "Gemm",
                                             "Relu", "Gemm", "Relu", "Gemm"}));
  // Initializers: exactly the parameters, same names, same bytes as the parameters' memory.
  auto params = net.parameters_and_names();
  ASSERT_EQ(gr.initializer_size(), static_cast<int>(params.size()));
  EXPECT_EQ(info.num_initializers, static_cast<std::int64_t>(params.size()));
  for (int i = 0; i < gr.initializer_size(); ++i) {
    const auto& t = gr.initializer(i);
    EXPECT_EQ(t.name(), params[static_cast<std::size_t>(i)].first);
    const Tensor& p = params[static_cast<std::size_t>(i)].second;
    ASSERT_EQ(t.dims_size(), static_cast<int>(p.rank())) << t.name();
    for (int d = 0; d < t.dims_size(); ++d) EXPECT_EQ(t.dims(d), p.dim(d)) << t.name();
    EXPECT_EQ(t.data_type(), onnx::TensorProto::FLOAT);
    ASSERT_EQ(t.raw_data().size(), p.nbytes()) << t.name();
    EXPECT_EQ(std::memcmp(t.raw_data().data(), p.data_ptr(), p.nbytes()), 0) << t.name();
  }
  EXPECT_EQ(info.initializer_bytes, 61684u * 4u);
}

TEST(OnnxExport, ResNetInitializersAreTheStateDictIncludingMovingStatistics) {
  testutil::TempDir dir;
  auto net = models::resnet18({.in_channels = 1, .num_classes = 5, .small_input = true, .base_width = 4});
  auto info = export_network(*net, {Tensor::zeros({1, 1, 16, 16})}, dir.file("r18"), "ONNX", fast());
  ASSERT_TRUE(testutil::onnx_check(info.path));
  onnx::ModelProto m = testutil::load_onnx(info.path);
  std::set<std::string> names, expect;
  for (const auto& t : m.graph().initializer()) names.insert(t.name());
  for (const auto& [n, t] : net->state_dict()) expect.insert(n);
  EXPECT_EQ(names, expect);
  for (const char* n : {"conv1.weight", "bn1.gamma", "bn1.moving_mean", "bn1.moving_variance",
                        "layer1.0.conv1.weight", "layer1.0.bn1d.gamma", "layer2.0.down_sample_layer.0.weight",
                        "layer2.0.down_sample_layer.1.moving_variance", "end_point.weight", "end_point.bias"})
    EXPECT_TRUE(names.count(n)) << n;
  int bn = 0, add = 0;
  for (const auto& node : m.graph().node()) {
    if (node.op_type() == "BatchNormalization") {
      ++bn;
      ASSERT_EQ(node.input_size(), 5);
      EXPECT_EQ(node.output_size(), 1);  // inference form: no running statistics outputs
      EXPECT_TRUE(node.input(3).find("moving_mean") != std::string::npos) << node.input(3);
      for (const auto& a : node.attribute()) {
        if (a.name() == "training_mode") {
          EXPECT_EQ(a.i(), 0);
        }
      }
    }
    if (node.op_type() == "Add") ++add;
  }
  EXPECT_EQ(bn, 1 + 8 * 2 + 3);  // stem, two per block, three down-sampling layers
  EXPECT_EQ(add, 8);             // one residual add per block
}

TEST(OnnxExport, OpsetStaticBatchNamesAndDocString) {
  testutil::TempDir dir;
  models::MLP net(6, {5}, 3);
  for (std::int64_t v : {13, 14, 15, 16, 17}) {
    auto o = fast();
    o.opset_version = v;
    auto info = export_network(net, {Tensor::zeros({2, 6})}, dir.file("v" + std::to_string(v)), "ONNX", o);
    EXPECT_TRUE(testutil::onnx_check(info.path));
    EXPECT_EQ(testutil::load_onnx(info.path).opset_import(0).version(), v);
  }
  for (std::int64_t v : {11, 12, 18}) {
    auto o = fast();
    o.opset_version = v;
    const auto msg = error_of([&] { export_network(net, {Tensor::zeros({2, 6})}, dir.file("bad"), "ONNX", o); });
    EXPECT_NE(msg.find("opset_version"), std::string::npos) << msg;
  }
  ExportOptions o{.dynamic_batch = false, .input_names = {"pixels"}, .output_name = "logits", .durable = false,
                  .doc_string = "test model"};
  auto info = export_network(net, {Tensor::zeros({2, 6})}, dir.file("static"), "ONNX", o);
  ASSERT_TRUE(testutil::onnx_check(info.path));
  auto m = testutil::load_onnx(info.path);
  EXPECT_EQ(m.doc_string(), "test model");
  EXPECT_EQ(m.graph().input(0).name(), "pixels");
  EXPECT_EQ(m.graph().input(0).type().tensor_type().shape().dim(0).dim_value(), 2);
  EXPECT_EQ(m.graph().output(0).name(), "logits");
  EXPECT_EQ(m.graph().output(0).type().tensor_type().shape().dim(0).dim_value(), 2);
  // An input name equal to a parameter's is rejected.
  o.input_names = {"layers.0.weight"};
  EXPECT_THROW(export_network(net, {Tensor::zeros({2, 6})}, dir.file("clash"), "ONNX", o), Error);
}

TEST(OnnxExport, RestoresEveryCellsTrainModeAndRecordsNoGradient) {
  testutil::TempDir dir;
  auto net = models::resnet18({.num_classes = 3, .small_input = true, .base_width = 2});
  net->set_train(true);
  net->child("layer2").set_train(false);  // mixed modes survive
  auto before = net->cells_and_names();
  std::vector<bool> modes;
  for (auto& [n, c] : before) modes.push_back(c->training());
  Tensor mm = net->child("bn1").buffers_and_names()[0].second.clone();
  auto info = export_network(*net, {testutil::random_f32({2, 3, 8, 8}, 1)}, dir.file("r"), "ONNX", fast());
  EXPECT_TRUE(testutil::onnx_check(info.path));
  auto after = net->cells_and_names();
  for (std::size_t i = 0; i < after.size(); ++i) EXPECT_EQ(after[i].second->training(), modes[i]) << after[i].first;
  // Inference mode during the trace: BatchNorm's moving statistics were not updated.
  auto now = net->child("bn1").buffers_and_names()[0].second;
  EXPECT_EQ(now.to_vector<float>(), mm.to_vector<float>());
  for (auto& [n, p] : net->parameters_and_names()) EXPECT_FALSE(p.grad().defined()) << n;
  // Also restored when the export fails (wrong input shape).
  EXPECT_THROW(export_network(*net, {Tensor::zeros({2, 5, 8, 8})}, dir.file("x"), "ONNX", fast()), Error);
  after = net->cells_and_names();
  for (std::size_t i = 0; i < after.size(); ++i) EXPECT_EQ(after[i].second->training(), modes[i]) << after[i].first;
}

TEST(OnnxExport, UnsupportedCellsFailNamingPathAndType) {
  testutil::TempDir dir;
  {
    Holder net(std::make_shared<nn::MSELoss>());
    const auto msg = error_of([&] { export_network(net, {Tensor::zeros({1, 4})}, dir.file("a"), "ONNX", fast()); });
    EXPECT_NE(msg.find("export_network"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'head'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'MSELoss'"), std::string::npos) << msg;
  }
  {
    Holder net(std::make_shared<nn::SoftmaxCrossEntropyWithLogits>());
    const auto msg = error_of([&] { export_network(net, {Tensor::zeros({1, 4})}, dir.file("a"), "ONNX", fast()); });
    EXPECT_NE(msg.find("'head'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("SoftmaxCrossEntropyWithLogits"), std::string::npos) << msg;
  }
  {
    Holder net(std::make_shared<Swish>());
    const auto msg = error_of([&] { export_network(net, {Tensor::zeros({1, 4})}, dir.file("a"), "ONNX", fast()); });
    EXPECT_NE(msg.find("cell 'head' of type 'Swish'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("custom_cell_types"), std::string::npos) << msg;
    // Trusted on request: its ops are traced like any other.
    auto o = fast();
    o.custom_cell_types = {"Swish"};
    auto info = export_network(net, {Tensor::zeros({1, 4})}, dir.file("a"), "ONNX", o);
    EXPECT_TRUE(testutil::onnx_check(info.path));
  }
  {
    // The root itself as a leaf.
    Swish net;
    const auto msg = error_of([&] { export_network(net, {Tensor::zeros({1, 4})}, dir.file("a"), "ONNX", fast()); });
    EXPECT_NE(msg.find("cell '(root)' of type 'Swish'"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(dir.file("b.onnx")));
}

TEST(OnnxExport, EveryFrameworkLayerExportsAlone) {
  // Each leaf type of framework/nn, as the root of a network.
  testutil::TempDir dir;
  struct Case {
    std::shared_ptr<nn::Cell> cell;
    Shape input;
    DType dtype = DType::kF32;  // integer for Embedding's indices (all zeros)
  };
  std::vector<Case> cases{
      {std::make_shared<nn::Dense>(4, 3), {2, 4}},
      {std::make_shared<nn::Conv2d>(2, 3, 3), {2, 2, 5, 5}},
      {std::make_shared<nn::BatchNorm2d>(2), {2, 2, 3, 3}},
      {std::make_shared<nn::MaxPool2d>(2), {2, 2, 4, 4}},
      {std::make_shared<nn::AvgPool2d>(2), {2, 2, 4, 4}},
      {std::make_shared<nn::ReLU>(), {2, 3}},
      {std::make_shared<nn::LeakyReLU>(0.1), {2, 3}},
      {std::make_shared<nn::Sigmoid>(), {2, 3}},
      {std::make_shared<nn::Tanh>(), {2, 3}},
      {std::make_shared<nn::GELU>(), {2, 3}},
      {std::make_shared<nn::Flatten>(), {2, 2, 2}},
      {std::make_shared<nn::Dropout>(0.5), {2, 3}},
      {std::make_shared<nn::SequentialCell>(), {2, 3}},
      {std::make_shared<nn::Conv1d>(2, 3, 3), {2, 2, 7}},
      {std::make_shared<nn::Dropout2d>(0.5), {2, 3, 2, 2}},
      {std::make_shared<nn::Embedding>(5, 3), {2, 4}, DType::kI64},
      {std::make_shared<nn::GlobalAvgPool>(), {2, 3, 4, 4}},
      {std::make_shared<nn::LayerNorm>(std::vector<std::int64_t>{4}), {2, 3, 4}},
  };
  std::set<std::string> covered;
  for (auto& c : cases) {
    SCOPED_TRACE(c.cell->type_name());
    covered.insert(c.cell->type_name());
    const Tensor x = c.dtype == DType::kF32 ? testutil::random_f32(c.input, 2) : Tensor::zeros(c.input, c.dtype);
    auto info = export_network(*c.cell, {x}, dir.file(c.cell->type_name()), "ONNX", fast());
    EXPECT_TRUE(testutil::onnx_check(info.path));
  }
  const auto types = onnx_exportable_cell_types();
  EXPECT_EQ(covered, std::set<std::string>(types.begin(), types.end()));
}

TEST(OnnxExport, ExternalDataOnRequest) {
  testutil::TempDir dir;
  Generator g(5);
  models::LeNet5 net(10, 1, &g);
  ExportOptions o = fast();
  o.external_data = ExternalData::kAlways;
  o.external_min_bytes = 1024;
  auto info = export_network(net, {Tensor::zeros({1, 1, 32, 32})}, dir.file("ext"), "ONNX", o);
  ASSERT_EQ(info.data_path, dir.file("ext.onnx.data"));
  ASSERT_TRUE(fs::exists(info.data_path));
  EXPECT_LT(fs::file_size(info.path), 8192u);  // the weights are elsewhere
  ASSERT_TRUE(testutil::onnx_check(info.path));
  auto m = testutil::load_onnx(info.path);
  std::ifstream data(info.data_path, std::ios::binary);
  auto params = net.parameters_and_names();
  int external = 0;
  for (int i = 0; i < m.graph().initializer_size(); ++i) {
    const auto& t = m.graph().initializer(i);
    const Tensor& p = params[static_cast<std::size_t>(i)].second;
    if (p.nbytes() < 1024) {
      EXPECT_EQ(t.data_location(), onnx::TensorProto::DEFAULT) << t.name();
      continue;
    }
    ++external;
    ASSERT_EQ(t.data_location(), onnx::TensorProto::EXTERNAL) << t.name();
    std::map<std::string, std::string> kv;
    for (const auto& e : t.external_data()) kv[e.key()] = e.value();
    EXPECT_EQ(kv["location"], "ext.onnx.data");
    EXPECT_EQ(std::stoull(kv["offset"]) % 4096, 0u);
    EXPECT_EQ(std::stoull(kv["length"]), p.nbytes());
    std::vector<char> bytes(p.nbytes());
    data.seekg(static_cast<std::streamoff>(std::stoull(kv["offset"])));
    data.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    EXPECT_EQ(std::memcmp(bytes.data(), p.data_ptr(), p.nbytes()), 0) << t.name();
  }
  EXPECT_EQ(external, 4);  // conv1.weight (600 B) and the biases stay inline
}

TEST(OnnxExport, FloatingPointSixtyFourNetworks) {
  testutil::TempDir dir;
  models::MLP net(4, {3}, 2);
  net.to_dtype(DType::kF64);
  auto info = export_network(net, {Tensor::zeros({1, 4}, DType::kF64)}, dir.file("f64"), "ONNX", fast());
  ASSERT_TRUE(testutil::onnx_check(info.path));
  auto m = testutil::load_onnx(info.path);
  EXPECT_EQ(m.graph().input(0).type().tensor_type().elem_type(), onnx::TensorProto::DOUBLE);
  EXPECT_EQ(m.graph().initializer(0).data_type(), onnx::TensorProto::DOUBLE);
  // A float32 input for float64 weights fails in the traced forward, with the network named.
  const auto msg = error_of([&] { export_network(net, {Tensor::zeros({1, 4})}, dir.file("mix"), "ONNX", fast()); });
  EXPECT_NE(msg.find("export_network: the forward of network 'MLP' failed"), std::string::npos) << msg;
}

TEST(OnnxExport, ArgumentErrors) {
  testutil::TempDir dir;
  models::MLP net(4, {3}, 2);
  EXPECT_THROW(export_network(net, {}, dir.file("a"), "ONNX"), Error);
  EXPECT_THROW(export_network(net, {Tensor::zeros({1, 4}), Tensor::zeros({1, 4})}, dir.file("a"), "ONNX"), Error);
  EXPECT_THROW(export_network(net, {Tensor()}, dir.file("a"), "ONNX"), Error);
  EXPECT_THROW(export_network(net, {Tensor::zeros({1, 4})}, "", "ONNX"), Error);
  // A directory that does not exist: an I/O error naming the path.
  const auto msg = error_of([&] { export_network(net, {Tensor::zeros({1, 4})}, dir.file("no/such/dir/m"), "ONNX"); });
  EXPECT_NE(msg.find("no/such/dir"), std::string::npos) << msg;
}

TEST(OnnxExport, PythonOnnxFullCheckWhenInstalled) {
  if (!testutil::have_python_onnx()) GTEST_SKIP() << "python3-onnx is not installed (apt-get install python3-onnx)";
  testutil::TempDir dir;
  Generator g(9);
  models::LeNet5 lenet(10, 1, &g);
  models::MLP mlp(784, {32}, 10, &g);
  auto r18 = models::resnet18({.in_channels = 1, .small_input = true, .base_width = 4, .generator = &g});
  std::vector<std::string> paths{
      export_network(lenet, {Tensor::zeros({1, 1, 32, 32})}, dir.file("lenet"), "ONNX", fast()).path,
      export_network(mlp, {Tensor::zeros({3, 1, 28, 28})}, dir.file("mlp"), "ONNX", fast()).path,
      export_network(*r18, {Tensor::zeros({2, 1, 28, 28})}, dir.file("r18"), "ONNX", fast()).path};
  ExportOptions ext = fast();
  ext.external_data = ExternalData::kAlways;
  paths.push_back(export_network(lenet, {Tensor::zeros({1, 1, 32, 32})}, dir.file("lenet_ext"), "ONNX", ext).path);
  EXPECT_TRUE(testutil::python_full_check(paths));
}
