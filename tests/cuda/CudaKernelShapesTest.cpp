// CUDA kernels on the shapes that exercise their work splits and edge cases, against the reference backend (the
// oracle): batch norm's two-stage (channel x chunk) reduction with many chunks, odd sizes and 2-D [N, C] input; layer
// norm backward with no rows; softmax cross entropy with no classes; the flat (same-shape / trailing-broadcast) and
// general paths of the binary ops; the reduce fast paths.
//
// Tests whose name ends in _CUDA need a GPU and skip (GTEST_SKIP "no CUDA device: ...") without one.
//
// Tolerances (|got - want| <= rtol * (|want| + max|want|), elementwise): 1e-5 for float32, 1e-12 for float64 (kernels
// accumulate in double like the reference; only the summation order differs).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "framework/backend/Backend.h"
#include "framework/backend/reference/ReferenceBackend.h"
#include "framework/core/Context.h"
#include "framework/core/Error.h"
#include "framework/core/Random.h"
#include "tests/cuda/CudaTestUtil.h"

#if defined(ANVIL_WITH_CUDA) && ANVIL_WITH_CUDA
#include "framework/backend/cuda/Cuda.h"
#endif

namespace anvil {
namespace {

#if defined(ANVIL_WITH_CUDA) && ANVIL_WITH_CUDA

double tol_for(DType dt) { return dt == DType::kF64 ? 1e-12 : 1e-5; }

using testutil::close;
using testutil::uniform;

// Bitwise-equal contents (repeatability of the deterministic reductions).
bool same_bits(const Tensor& a, const Tensor& b) { return a.to_vector<double>() == b.to_vector<double>(); }

class CudaKernelShapes : public ::testing::Test {
 protected:
  void SetUp() override {
    EXPECT_TRUE(cuda_compiled_in());
    std::string reason;
    if (cuda::device_count(&reason) == 0) GTEST_SKIP() << "no CUDA device: " << reason;
  }
  Backend& gpu() { return backend_for(Device::cuda(0)); }
  Tensor dev(const Tensor& t) { return t.to(Device::cuda(0)); }
  ReferenceBackend ref;
  Generator gen{20261124};
};

const BinaryKind kAllBinary[] = {BinaryKind::kAdd, BinaryKind::kSub, BinaryKind::kMul,
                                 BinaryKind::kDiv, BinaryKind::kMax, BinaryKind::kMin};

// Many chunks per channel (row ranges and hw ranges), odd sizes, 2-D input (hw = 1), a single value pair; a mean far
// from zero checks the variance is not taken as E[x^2] - E[x]^2 in a lossy way.
TEST_F(CudaKernelShapes, BatchNormTrainingAndBackwardOnChunkedShapes_CUDA) {
  const std::vector<Shape> shapes = {Shape{3, 5, 7, 11}, Shape{2, 64, 56, 56},  Shape{37, 3},
                                     Shape{1, 1, 1, 2},  Shape{1, 2, 300, 300}, Shape{1000, 4},
                                     Shape{64, 3, 1, 5}, Shape{5, 130, 1, 1}};
  for (DType dt : {DType::kF32, DType::kF64})
    for (const Shape& s : shapes) {
      const double tol = tol_for(dt);
      const Tensor x = uniform(s, gen, 9.0, 11.0, dt), gamma = uniform(Shape{s[1]}, gen, -1, 1, dt),
                   beta = uniform(Shape{s[1]}, gen, -1, 1, dt), dy = uniform(s, gen, -1, 1, dt);
      SCOPED_TRACE(x.desc());
      const double eps = 1e-5;
      const BatchNormTrainResult r = ref.batch_norm_forward_training(x, gamma, beta, eps);
      const BatchNormTrainResult g = gpu().batch_norm_forward_training(dev(x), dev(gamma), dev(beta), eps);
      EXPECT_TRUE(close(g.y, r.y, tol));
      EXPECT_TRUE(close(g.mean, r.mean, tol));
      EXPECT_TRUE(close(g.var, r.var, tol));
      const BatchNormGrads rg = ref.batch_norm_backward(dy, x, gamma, r.mean, r.var, eps);
      const BatchNormGrads gg = gpu().batch_norm_backward(dev(dy), dev(x), dev(gamma), dev(r.mean), dev(r.var), eps);
      EXPECT_TRUE(close(gg.dx, rg.dx, tol));
      EXPECT_TRUE(close(gg.dgamma, rg.dgamma, tol));
      EXPECT_TRUE(close(gg.dbeta, rg.dbeta, tol));
      // Deterministic: the same shape gives the same bits.
      const BatchNormTrainResult g2 = gpu().batch_norm_forward_training(dev(x), dev(gamma), dev(beta), eps);
      EXPECT_TRUE(same_bits(g2.y, g.y));
      EXPECT_TRUE(same_bits(g2.var, g.var));
      const BatchNormGrads gg2 = gpu().batch_norm_backward(dev(dy), dev(x), dev(gamma), dev(r.mean), dev(r.var), eps);
      EXPECT_TRUE(same_bits(gg2.dx, gg.dx));
      EXPECT_TRUE(same_bits(gg2.dgamma, gg.dgamma));
    }
}

// The biased-variance contract: [1, 1, 1, 2] with values a, b has variance ((a - b) / 2)^2.
TEST_F(CudaKernelShapes, BatchNormVarianceIsBiased_CUDA) {
  const Tensor x = Tensor::from_vector(std::vector<double>{1.0, 4.0}, Shape{1, 1, 1, 2});
  const Tensor one = Tensor::ones(Shape{1}, DType::kF64), zero = Tensor::zeros(Shape{1}, DType::kF64);
  const BatchNormTrainResult g = gpu().batch_norm_forward_training(dev(x), dev(one), dev(zero), 0.0);
  EXPECT_DOUBLE_EQ(g.mean.to_vector<double>()[0], 2.5);
  EXPECT_DOUBLE_EQ(g.var.to_vector<double>()[0], 2.25);
}

// An infinity in one chunk of many: the mean is +inf as the reference's sum / m (no inf - inf = NaN from
// combining chunk means), and the variance is NaN on both.
TEST_F(CudaKernelShapes, BatchNormInfinityGivesTheReferenceMean_CUDA) {
  std::vector<double> v(4096, 0.25);
  v[0] = INFINITY;
  const Tensor x = Tensor::from_vector(v, Shape{1, 1, 1, 4096});
  const Tensor one = Tensor::ones(Shape{1}, DType::kF64), zero = Tensor::zeros(Shape{1}, DType::kF64);
  const BatchNormTrainResult r = ref.batch_norm_forward_training(x, one, zero, 1e-5);
  const BatchNormTrainResult g = gpu().batch_norm_forward_training(dev(x), dev(one), dev(zero), 1e-5);
  EXPECT_EQ(g.mean.to_vector<double>()[0], r.mean.to_vector<double>()[0]);
  EXPECT_TRUE(std::isinf(g.mean.to_vector<double>()[0]));
  EXPECT_TRUE(std::isnan(g.var.to_vector<double>()[0]));
  EXPECT_TRUE(std::isnan(r.var.to_vector<double>()[0]));
}

TEST_F(CudaKernelShapes, LayerNormManyRowsAndBackwardWithNoRows_CUDA) {
  for (DType dt : {DType::kF32, DType::kF64}) {
    const double tol = tol_for(dt);
    {
      const Tensor x = uniform(Shape{3000, 5}, gen, -2, 3, dt), gamma = uniform(Shape{5}, gen, -1, 1, dt),
                   beta = uniform(Shape{5}, gen, -1, 1, dt), dy = uniform(Shape{3000, 5}, gen, -1, 1, dt);
      SCOPED_TRACE(x.desc());
      const LayerNormResult r = ref.layer_norm_forward(x, gamma, beta, 1e-5);
      const LayerNormResult g = gpu().layer_norm_forward(dev(x), dev(gamma), dev(beta), 1e-5);
      EXPECT_TRUE(close(g.y, r.y, tol));
      EXPECT_TRUE(close(g.var, r.var, tol));
      const LayerNormGrads rg = ref.layer_norm_backward(dy, x, gamma, r.mean, r.var, 1e-5);
      const LayerNormGrads gg = gpu().layer_norm_backward(dev(dy), dev(x), dev(gamma), dev(r.mean), dev(r.var), 1e-5);
      EXPECT_TRUE(close(gg.dx, rg.dx, tol));
      EXPECT_TRUE(close(gg.dgamma, rg.dgamma, tol));
      EXPECT_TRUE(close(gg.dbeta, rg.dbeta, tol));
    }
    // M == 0 rows: dgamma/dbeta are sums over nothing, i.e. zeros. Blocks of the same size holding non-zero values are
    // freed to the cache first, so uninitialised outputs would show.
    for (int k = 0; k < 4; ++k) (void)dev(Tensor::full(Shape{6}, 7.0, dt));
    const Tensor x = Tensor::zeros(Shape{0, 6}, dt), gamma = uniform(Shape{6}, gen, -1, 1, dt);
    const Tensor stats = Tensor::zeros(Shape{0}, dt);
    const LayerNormGrads rg = ref.layer_norm_backward(x, x, gamma, stats, stats, 1e-5);
    const LayerNormGrads gg = gpu().layer_norm_backward(dev(x), dev(x), dev(gamma), dev(stats), dev(stats), 1e-5);
    EXPECT_EQ(gg.dx.shape(), (Shape{0, 6}));
    EXPECT_EQ(gg.dgamma.to_vector<double>(), std::vector<double>(6, 0.0));
    EXPECT_EQ(gg.dbeta.to_vector<double>(), std::vector<double>(6, 0.0));
    EXPECT_TRUE(close(gg.dgamma, rg.dgamma, 0.0));
    EXPECT_TRUE(close(gg.dbeta, rg.dbeta, 0.0));
  }
}

// C == 0 classes: no label lies in [0, 0), so forward and backward throw for row 0, like the reference.
TEST_F(CudaKernelShapes, CrossEntropyWithNoClassesRejectsEveryLabel_CUDA) {
  for (DType lt : {DType::kI32, DType::kI64}) {
    const Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{0, 0, 0}, Shape{3}).to(lt);
    const Tensor logits = Tensor::zeros(Shape{3, 0}), dloss = Tensor::ones(Shape{3});
    SCOPED_TRACE(labels.desc());
    EXPECT_THROW((void)ref.softmax_cross_entropy_forward(logits, labels), Error);
    EXPECT_THROW((void)ref.softmax_cross_entropy_backward(dloss, logits, labels), Error);
    try {
      (void)gpu().softmax_cross_entropy_forward(dev(logits), dev(labels));
      ADD_FAILURE() << "forward accepted a label with no classes";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("label at index 0 is 0"), std::string::npos) << e.what();
    }
    try {
      (void)gpu().softmax_cross_entropy_backward(dev(dloss), dev(logits), dev(labels));
      ADD_FAILURE() << "backward accepted a label with no classes";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("label at index 0 is 0"), std::string::npos) << e.what();
    }
  }
  // With classes, the backward's per-row check still names the first bad row.
  const Tensor prob = Tensor::full(Shape{4, 3}, 1.0 / 3.0), dloss = Tensor::ones(Shape{4});
  const Tensor bad = Tensor::from_vector(std::vector<std::int64_t>{0, 2, 3, -1}, Shape{4});
  try {
    (void)gpu().softmax_cross_entropy_backward(dev(dloss), dev(prob), dev(bad));
    ADD_FAILURE() << "label 3 of 3 classes accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label at index 2 is 3"), std::string::npos) << e.what();
  }
}

// Same shapes (flat), trailing-dim broadcasts and scalars on either side (flat with i % k), size-1 dims, and general
// broadcasts (per-dimension indexing), every kind, float32 and float64.
TEST_F(CudaKernelShapes, BinarySameShapeAndBroadcastPaths_CUDA) {
  const std::vector<std::pair<Shape, Shape>> shapes = {{Shape{4, 5}, Shape{4, 5}},
                                                       {Shape{1000, 7}, Shape{1000, 7}},
                                                       {Shape{1, 3}, Shape{3}},
                                                       {Shape{5, 1}, Shape{5, 1}},
                                                       {Shape{2, 3, 4}, Shape{4}},
                                                       {Shape{4}, Shape{2, 3, 4}},
                                                       {Shape{2, 3, 4}, Shape{3, 4}},
                                                       {Shape{3, 4}, Shape{2, 1, 4}},
                                                       {Shape{}, Shape{3, 2}},
                                                       {Shape{3, 2}, Shape{1}},
                                                       {Shape{2, 3, 4}, Shape{3, 1}},
                                                       {Shape{2, 1, 5}, Shape{3, 1}},
                                                       {Shape{2, 3, 4, 5}, Shape{1, 3, 1, 1}},
                                                       {Shape{3, 4}, Shape{4, 1, 1}}};
  for (DType dt : {DType::kF32, DType::kF64})
    for (const auto& [as, bs] : shapes)
      for (BinaryKind k : kAllBinary) {
        const Tensor a = uniform(as, gen, -1, 1, dt), b = uniform(bs, gen, 0.5, 2.0, dt);
        SCOPED_TRACE(a.desc() + " op " + b.desc() + " kind " + std::to_string(static_cast<int>(k)));
        EXPECT_TRUE(close(gpu().binary(k, dev(a), dev(b)), ref.binary(k, a, b), tol_for(dt)));
      }
  // NaN propagates through max/min on the flat path, from either operand.
  const Tensor n = Tensor::from_vector(std::vector<float>{std::nanf(""), 1.0f}, Shape{2});
  const Tensor o = Tensor::ones(Shape{2});
  for (BinaryKind k : {BinaryKind::kMax, BinaryKind::kMin}) {
    EXPECT_TRUE(std::isnan(gpu().binary(k, dev(n), dev(o)).to_vector<float>()[0]));
    EXPECT_TRUE(std::isnan(gpu().binary(k, dev(o), dev(n)).to_vector<float>()[0]));
    EXPECT_EQ(gpu().binary(k, dev(o), dev(n)).to_vector<float>()[1], 1.0f);
  }
}

// Reductions on the inner path ([out_n, count], a warp per output), the outer path ([count, out_n], a thread
// per column), with count == 1, and on the general path, every kind, float32 and float64; NaN propagation on
// the fast paths; bitwise repeatability.
TEST_F(CudaKernelShapes, ReduceInnerOuterAndGeneralPaths_CUDA) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {Shape{50, 64, 9}, Shape{50, 64, 1}},    // inner
      {Shape{3000, 70}, Shape{3000, 1}},       // inner
      {Shape{40, 1, 33}, Shape{40, 1, 1}},     // inner, size-1 dim in between
      {Shape{9, 50, 64}, Shape{1, 50, 64}},    // outer
      {Shape{700, 300}, Shape{1, 300}},        // outer
      {Shape{2, 3, 400}, Shape{1, 1, 400}},    // outer, two reduced dims
      {Shape{500, 1}, Shape{500, 1}},          // nothing reduced (count == 1)
      {Shape{6, 400, 2}, Shape{6, 1, 2}},      // general
      {Shape{4, 5, 300}, Shape{4, 5, 1}},      // inner layout, few outputs: general
      {Shape{100000}, Shape{1}},               // single output: general
      {Shape{30, 70}, Shape{1, 70}}};          // outer layout, few outputs: general
  for (DType dt : {DType::kF32, DType::kF64})
    for (const auto& [xs, os] : cases)
      for (ReduceKind k : {ReduceKind::kSum, ReduceKind::kMean, ReduceKind::kMax, ReduceKind::kMin}) {
        // Positive inputs: sums do not cancel, so the float64 tolerance measures order effects only.
        const Tensor x = uniform(xs, gen, 0.5, 1.5, dt);
        SCOPED_TRACE(x.desc() + " -> " + os.str() + " kind " + std::to_string(static_cast<int>(k)));
        const Tensor g = gpu().reduce(k, dev(x), os);
        EXPECT_TRUE(close(g, ref.reduce(k, x, os), tol_for(dt)));
        EXPECT_TRUE(same_bits(g, gpu().reduce(k, dev(x), os)));
      }
  // A NaN makes max/min (and sum) NaN on both fast paths.
  std::vector<float> v(64 * 40, 0.5f);
  v[5 * 40 + 7] = std::nanf("");  // row 5, column 7 of [64, 40]
  const Tensor x = Tensor::from_vector(v, Shape{64, 40});
  for (ReduceKind k : {ReduceKind::kSum, ReduceKind::kMax, ReduceKind::kMin}) {
    const std::vector<float> rows = gpu().reduce(k, dev(x), Shape{64, 1}).to_vector<float>();  // inner
    EXPECT_TRUE(std::isnan(rows[5]));
    EXPECT_FALSE(std::isnan(rows[4]));
  }
  const Tensor xt = Tensor::from_vector(std::vector<float>(3 * 300, 0.25f), Shape{3, 300});
  std::vector<float> w = xt.to_vector<float>();
  w[2 * 300 + 299] = std::nanf("");
  const Tensor xn = Tensor::from_vector(w, Shape{3, 300});
  for (ReduceKind k : {ReduceKind::kSum, ReduceKind::kMax, ReduceKind::kMin}) {
    const std::vector<float> cols = gpu().reduce(k, dev(xn), Shape{1, 300}).to_vector<float>();  // outer
    EXPECT_TRUE(std::isnan(cols[299]));
    EXPECT_FALSE(std::isnan(cols[298]));
  }
}

#endif  // ANVIL_WITH_CUDA

}  // namespace
}  // namespace anvil
