// Backend ops added for issue 7 (layer norm, embedding gather / scatter-add): the reference backend's
// values, its errors, and the oneDNN backend's conformance with it on random inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <tuple>
#include <string>
#include <vector>

#include "framework/backend/Backend.h"
#include "framework/backend/onednn/OneDnnBackend.h"
#include "framework/backend/reference/ReferenceBackend.h"
#include "framework/core/Random.h"
#include "tests/testutil/Errors.h"

using anvil::testutil::error_of;

namespace anvil {
namespace {

Tensor uniform(const Shape& shape, Generator& gen, double lo = -1.0, double hi = 1.0, DType dtype = DType::kF32) {
  std::vector<double> v(static_cast<std::size_t>(shape.numel()));
  for (double& x : v) x = gen.uniform(lo, hi);
  return Tensor::from_vector(v, shape).to(dtype);
}

Tensor random_indices(const Shape& shape, std::int64_t v, Generator& gen, DType dtype) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(shape.numel()));
  for (auto& i : idx) i = static_cast<std::int64_t>(gen.randint(static_cast<std::uint64_t>(v)));
  Tensor t = Tensor::from_vector(idx, shape);
  if (dtype == DType::kI64) return t;
  std::vector<std::int32_t> i32(idx.begin(), idx.end());
  return Tensor::from_vector(i32, shape);
}

// |got - want| <= rtol * (|want| + max|want|) elementwise.
::testing::AssertionResult close(const Tensor& got, const Tensor& want, double rtol = 1e-4) {
  if (!got.defined() || !want.defined())
    return ::testing::AssertionFailure() << "undefined tensor: got " << got.desc() << ", want " << want.desc();
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shape " << got.shape().str() << " != " << want.shape().str();
  const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  double max_abs = 1e-6;
  for (double x : w) max_abs = std::max(max_abs, std::abs(x));
  for (std::size_t i = 0; i < g.size(); ++i)
    if (!(std::abs(g[i] - w[i]) <= rtol * (std::abs(w[i]) + max_abs)))
      return ::testing::AssertionFailure() << "element " << i << " of " << want.desc() << ": got " << g[i]
                                           << ", want " << w[i];
  return ::testing::AssertionSuccess();
}

class LayerOpsBackend : public ::testing::Test {
 protected:
  OneDnnBackend dnn;
  ReferenceBackend ref;
  Generator gen{777};
};

// ---------------------------------------------------------------------------------------------
// reference values
// ---------------------------------------------------------------------------------------------
TEST_F(LayerOpsBackend, ReferenceLayerNormStatisticsAndBackwardHandComputed) {
  const Tensor x = Tensor::from_vector<double>({1, 3, 0, 4}, Shape{2, 2});
  const Tensor g = Tensor::from_vector<double>({2, 1}, Shape{2}), b = Tensor::from_vector<double>({0, 5}, Shape{2});
  const LayerNormResult r = ref.layer_norm_forward(x, g, b, 0.0);
  EXPECT_EQ(r.mean.to_vector<double>(), (std::vector<double>{2, 2}));
  EXPECT_EQ(r.var.to_vector<double>(), (std::vector<double>{1, 4}));
  EXPECT_EQ(r.y.to_vector<double>(), (std::vector<double>{-2, 6, -2, 6}));
  // dy = 1 everywhere: dbeta = column sums, dgamma = Σ xhat per column, and dx = 0 when gamma is constant
  // along the row; here gamma differs, so dx = inv * (g - mean(g) - xhat * mean(g xhat)) with g = gamma.
  const Tensor dy = Tensor::ones(Shape{2, 2}, DType::kF64);
  const LayerNormGrads d = ref.layer_norm_backward(dy, x, g, r.mean, r.var, 0.0);
  EXPECT_EQ(d.dbeta.to_vector<double>(), (std::vector<double>{2, 2}));
  EXPECT_EQ(d.dgamma.to_vector<double>(), (std::vector<double>{-2, 2}));
  // Row 0: inv 1, xhat [-1, 1], g [2, 1]: mean(g) 1.5, mean(g xhat) -0.5 -> dx = [2-1.5-0.5, 1-1.5+0.5] = [0, 0].
  const std::vector<double> dx = d.dx.to_vector<double>();
  EXPECT_NEAR(dx[0], 0.0, 1e-12);
  EXPECT_NEAR(dx[1], 0.0, 1e-12);
}

TEST_F(LayerOpsBackend, ReferenceLayerNormRejectsMismatchedGamma) {
  const std::string msg = error_of(
      [&] { ref.layer_norm_forward(Tensor::zeros(Shape{2, 5}), Tensor::ones(Shape{3}), Tensor::zeros(Shape{3}), 1e-5); });
  EXPECT_NE(msg.find("[2,5]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("3"), std::string::npos) << msg;
}

TEST_F(LayerOpsBackend, ReferenceEmbeddingErrorsNameIndexPositionAndVocab) {
  const Tensor table = Tensor::zeros(Shape{7, 3});
  std::string msg = error_of([&] { ref.embedding_forward(table, Tensor::from_vector<std::int32_t>({0, 9}, Shape{2})); });
  EXPECT_NE(msg.find("index 9 at position 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("vocab_size 7"), std::string::npos) << msg;
  msg = error_of([&] {
    ref.embedding_backward(Tensor::zeros(Shape{2, 3}), Tensor::from_vector<std::int64_t>({7, 0}, Shape{2}), Shape{7, 3}, -1);
  });
  EXPECT_NE(msg.find("index 7 at position 0"), std::string::npos) << msg;
  msg = error_of([&] { ref.embedding_backward(Tensor::zeros(Shape{2, 4}), Tensor::from_vector<std::int64_t>({1, 0}, Shape{2}), Shape{7, 3}, -1); });
  EXPECT_NE(msg.find("[2,4]"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------------------
// oneDNN vs reference
// ---------------------------------------------------------------------------------------------
TEST_F(LayerOpsBackend, OneDnnLayerNormForwardAndBackwardMatchReference) {
  for (const auto& [xs, gs] : std::vector<std::pair<Shape, Shape>>{
           {{4, 7}, {7}}, {{2, 5, 16}, {16}}, {{3, 4, 6}, {4, 6}}, {{1, 1}, {1}}, {{64, 129}, {129}}}) {
    SCOPED_TRACE("x " + xs.str() + " gamma " + gs.str());
    const Tensor x = uniform(xs, gen, -2, 3), g = uniform(gs, gen, 0.5, 1.5), b = uniform(gs, gen);
    const Tensor dy = uniform(xs, gen);
    const LayerNormResult rd = dnn.layer_norm_forward(x, g, b, 1e-5), rr = ref.layer_norm_forward(x, g, b, 1e-5);
    EXPECT_TRUE(close(rd.y, rr.y));
    EXPECT_TRUE(close(rd.mean, rr.mean));
    EXPECT_TRUE(close(rd.var, rr.var));
    const LayerNormGrads gd = dnn.layer_norm_backward(dy, x, g, rr.mean, rr.var, 1e-5);
    const LayerNormGrads gr = ref.layer_norm_backward(dy, x, g, rr.mean, rr.var, 1e-5);
    EXPECT_TRUE(close(gd.dx, gr.dx, 1e-3));
    EXPECT_TRUE(close(gd.dgamma, gr.dgamma));
    EXPECT_TRUE(close(gd.dbeta, gr.dbeta));
    EXPECT_EQ(gd.dgamma.shape(), gs);
  }
}

TEST_F(LayerOpsBackend, OneDnnLayerNormFloat64FallsBackToReferenceAndPrimitivesAreCached) {
  const Tensor x = uniform(Shape{3, 8}, gen, -1, 1, DType::kF64), g = uniform(Shape{8}, gen, 0.5, 1.5, DType::kF64);
  const Tensor b = uniform(Shape{8}, gen, -1, 1, DType::kF64);
  EXPECT_EQ(dnn.layer_norm_forward(x, g, b, 1e-6).y.to_vector<double>(),
            ref.layer_norm_forward(x, g, b, 1e-6).y.to_vector<double>());
  const Tensor xf = x.to(DType::kF32), gf = g.to(DType::kF32), bf = b.to(DType::kF32);
  (void)dnn.layer_norm_forward(xf, gf, bf, 1e-6);
  const std::size_t built = dnn.primitives_created();
  (void)dnn.layer_norm_forward(xf, gf, bf, 1e-6);
  EXPECT_EQ(dnn.primitives_created(), built);
}

TEST_F(LayerOpsBackend, OneDnnEmbeddingForwardAndBackwardMatchReference) {
  for (DType it : {DType::kI32, DType::kI64}) {
    for (const auto& [v, e, is] : std::vector<std::tuple<std::int64_t, std::int64_t, Shape>>{
             {10, 4, Shape{6}}, {50, 33, Shape{4, 9}}, {3, 1, Shape{2, 2, 5}}, {1000, 64, Shape{32, 20}}}) {
      SCOPED_TRACE(fmt::format("vocab {} dim {} indices {} {}", v, e, is.str(), dtype_name(it)));
      const Tensor table = uniform(Shape{v, e}, gen);
      const Tensor idx = random_indices(is, v, gen, it);
      const Tensor yd = dnn.embedding_forward(table, idx);
      EXPECT_EQ(yd.to_vector<float>(), ref.embedding_forward(table, idx).to_vector<float>());
      const Tensor dy = uniform(yd.shape(), gen);
      for (std::int64_t pad : {std::int64_t{-1}, std::int64_t{0}, v - 1}) {
        EXPECT_TRUE(close(dnn.embedding_backward(dy, idx, table.shape(), pad),
                          ref.embedding_backward(dy, idx, table.shape(), pad)))
            << "padding_idx " << pad;
      }
    }
  }
}

TEST_F(LayerOpsBackend, OneDnnEmbeddingReportsOutOfRangeLikeTheReference) {
  const Tensor table = uniform(Shape{5, 2}, gen);
  const std::string msg = error_of([&] { dnn.embedding_forward(table, Tensor::from_vector<std::int64_t>({1, 5}, Shape{2})); });
  EXPECT_NE(msg.find("index 5 at position 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("vocab_size 5"), std::string::npos) << msg;
}

}  // namespace
}  // namespace anvil
