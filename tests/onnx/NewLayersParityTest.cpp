// ONNX export of issue 7's layers (Embedding -> Gather, LayerNorm -> LayerNormalization at opset 17 or
// its decomposition below, Conv1d -> Reshape + Conv, GlobalAvgPool -> ReduceMean, Dropout2d -> nothing
// in inference): checker + strict shape inference, and ONNX Runtime parity with Anvil's inference
// forward at batch sizes 1 and 7 (traced at batch 2). Skipped when node/npm is missing.
#include <functional>
#include <iostream>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "framework/autograd/GradMode.h"
#include "framework/core/Random.h"
#include "framework/nn/layers/Conv1d.h"
#include "framework/nn/layers/Dense.h"
#include "framework/nn/layers/Dropout2d.h"
#include "framework/nn/layers/Embedding.h"
#include "framework/nn/layers/GlobalAvgPool.h"
#include "framework/nn/layers/LayerNorm.h"
#include "framework/ops/ShapeOps.h"
#include "serialization/onnx/Export.h"
#include "tests/onnx/OnnxTestUtil.h"
#include "tests/testutil/GradCheck.h"
#include "tests/testutil/TempDir.h"

using namespace anvil;

namespace {

Shape with_batch(std::int64_t n, const Shape& sample) {
  std::vector<std::int64_t> d{n};
  for (auto x : sample.dims()) d.push_back(x);
  return Shape(d);
}

// A float input, or int64 token ids in [0, vocab) when vocab > 0.
Tensor sample_input(const Shape& shape, std::uint64_t seed, std::int64_t vocab) {
  if (vocab <= 0) return testutil::random_f32(shape, seed);
  Generator g(seed);
  std::vector<std::int64_t> v(static_cast<std::size_t>(shape.numel()));
  for (auto& x : v) x = static_cast<std::int64_t>(g.randint(static_cast<std::uint64_t>(vocab)));
  return Tensor::from_vector(v, shape);
}

// Non-trivial LayerNorm gamma/beta so the affine part is really compared.
void randomize_layer_norms(nn::Cell& net, std::uint64_t seed) {
  Generator g(seed);
  for (auto& [name, cell] : net.cells_and_names()) {
    if (cell->type_name() != "LayerNorm") continue;
    for (auto& [n, t] : cell->parameters_and_names()) {
      Tensor v = Tensor::empty(t.shape());
      for (std::int64_t i = 0; i < v.numel(); ++i) v.data<float>()[i] = static_cast<float>(g.uniform(0.5, 1.5));
      t.copy_from(v);
    }
  }
}

// Token ids [N, L] -> Embedding -> LayerNorm -> [N, L, E].
class EmbedNorm : public nn::Cell {
 public:
  EmbedNorm() {
    emb_ = register_cell("emb", std::make_shared<nn::Embedding>(12, 6, nn::EmbeddingOptions{.padding_idx = 0}));
    norm_ = register_cell("norm", std::make_shared<nn::LayerNorm>(std::vector<std::int64_t>{6},
                                                                  nn::LayerNormOptions{.epsilon = 1e-5}));
  }
  Tensor forward(const Tensor& x) override { return norm_->forward(emb_->forward(x)); }
  std::string type_name() const override { return "EmbedNorm"; }

 private:
  std::shared_ptr<nn::Embedding> emb_;
  std::shared_ptr<nn::LayerNorm> norm_;
};

// [N, C, L] -> Conv1d -> LayerNorm over (K, L') -> [N, K, 1, L'] -> Dropout2d -> GlobalAvgPool -> Dense.
class ConvPool : public nn::Cell {
 public:
  ConvPool() {
    conv_ = register_cell("conv", std::make_shared<nn::Conv1d>(
                                      3, 4, 3, nn::Conv1dOptions{.stride = 2, .has_bias = true}));
    norm_ = register_cell("norm", std::make_shared<nn::LayerNorm>(std::vector<std::int64_t>{4, 5}));
    drop_ = register_cell("drop", std::make_shared<nn::Dropout2d>(0.5, 3));
    pool_ = register_cell("pool", std::make_shared<nn::GlobalAvgPool>(nn::GlobalAvgPoolOptions{.keep_dims = false}));
    fc_ = register_cell("fc", std::make_shared<nn::Dense>(4, 2));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = norm_->forward(conv_->forward(x));  // [N, 4, 5]
    h = drop_->forward(ops::reshape(h, Shape{h.dim(0), 4, 1, 5}));
    return fc_->forward(pool_->forward(h));
  }
  std::string type_name() const override { return "ConvPool"; }

 private:
  std::shared_ptr<nn::Conv1d> conv_;
  std::shared_ptr<nn::LayerNorm> norm_;
  std::shared_ptr<nn::Dropout2d> drop_;
  std::shared_ptr<nn::GlobalAvgPool> pool_;
  std::shared_ptr<nn::Dense> fc_;
};

}  // namespace

TEST(OrtParity, Issue7LayersAtOpset13And17) {
  ANVIL_SKIP_WITHOUT_ORT();
  testutil::TempDir dir;
  std::vector<std::string> paths;
  set_seed(17);
  struct Case {
    std::string name;
    std::shared_ptr<nn::Cell> net;
    Shape sample;
    std::int64_t vocab = 0;
  };
  std::vector<Case> cases{
      {"embed_norm", std::make_shared<EmbedNorm>(), {5}, 12},
      {"conv1d_norm_pool", std::make_shared<ConvPool>(), {3, 9}},
      {"conv1d_pad_dilation_group",
       std::make_shared<nn::Conv1d>(4, 6, 3, nn::Conv1dOptions{.pad_mode = "pad", .padding = 2, .dilation = 2,
                                                               .group = 2, .has_bias = true}),
       {4, 8}},
      {"conv1d_valid", std::make_shared<nn::Conv1d>(2, 3, 4, nn::Conv1dOptions{.pad_mode = "valid"}), {2, 9}},
      {"global_avg_pool_keep_dims", std::make_shared<nn::GlobalAvgPool>(), {3, 4, 5}},
  };
  for (auto& c : cases) {
    randomize_layer_norms(*c.net, 5);
    for (std::int64_t opset : {13, 17}) {
      const std::string name = c.name + "_opset" + std::to_string(opset);
      SCOPED_TRACE(name);
      ExportInfo info;
      ASSERT_NO_THROW(info = export_network(*c.net, {sample_input(with_batch(2, c.sample), 3, c.vocab)}, dir.file(name),
                                            "ONNX", ExportOptions{.opset_version = opset, .durable = false}));
      ASSERT_TRUE(testutil::onnx_check(info.path));
      paths.push_back(info.path);
      std::set<std::string> op_types;
      const onnx::ModelProto model = testutil::load_onnx(info.path);
      for (const auto& node : model.graph().node()) op_types.insert(node.op_type());
      const bool has_layer_norm = c.name == "embed_norm" || c.name == "conv1d_norm_pool";
      EXPECT_EQ(op_types.count("LayerNormalization"), has_layer_norm && opset >= 17 ? 1u : 0u);
      EXPECT_EQ(op_types.count("Gather"), c.vocab > 0 ? 1u : 0u);
      EXPECT_EQ(op_types.count("Dropout"), 0u);  // Dropout2d is the identity in inference
      for (std::int64_t batch : {1, 7}) {
        const Tensor x = sample_input(with_batch(batch, c.sample), 100 + static_cast<std::uint64_t>(batch), c.vocab);
        c.net->set_train(false);
        Tensor expect;
        {
          NoGradGuard ng;
          expect = c.net->forward(x);
        }
        std::vector<Tensor> got;
        ASSERT_NO_THROW(got = testutil::shared_ort()->run(info.path, {x}));
        ASSERT_EQ(got.size(), 1u);
        ASSERT_EQ(got[0].shape(), expect.shape()) << "batch " << batch;
        const auto r = testutil::compare(expect, got[0]);
        std::cout << fmt::format("[parity] {:<40} batch {}  max_abs_err {:.3g}  output_scale {:.3g}\n", name, batch,
                                 r.max_abs_err, r.scale);
        EXPECT_TRUE(r.ok()) << name << " batch " << batch << ": max abs error " << r.max_abs_err << " vs output scale "
                            << r.scale;
      }
    }
  }
  EXPECT_TRUE(testutil::python_full_check(paths));
}
