// ReferenceBackend, the oracle: small cases whose expected values are worked out by hand (in the
// comments beside them), in float32 and float64, plus identities that hold for any input (adjoints of
// the linear ops, finite differences of the nonlinear ones, an independent padded-buffer convolution).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "framework/backend/Backend.h"
#include "framework/backend/reference/ReferenceBackend.h"
#include "framework/core/Error.h"
#include "framework/core/Random.h"

namespace anvil {
namespace {

constexpr DType kBoth[] = {DType::kF32, DType::kF64};

Tensor make(const std::vector<double>& v, const Shape& s, DType dt = DType::kF64) {
  return Tensor::from_vector(v, s).to(dt);
}

double tol(DType dt) { return dt == DType::kF32 ? 2e-5 : 1e-12; }

::testing::AssertionResult near(const Tensor& got, const std::vector<double>& want, const Shape& shape, double atol) {
  if (!got.defined()) return ::testing::AssertionFailure() << "undefined tensor";
  if (got.shape() != shape)
    return ::testing::AssertionFailure() << "shape " << got.shape().str() << ", want " << shape.str();
  const std::vector<double> g = got.to_vector<double>();
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double scale = std::max(1.0, std::abs(want[i]));
    if (!(std::abs(g[i] - want[i]) <= atol * scale))
      return ::testing::AssertionFailure() << "element " << i << ": got " << g[i] << ", want " << want[i];
  }
  return ::testing::AssertionSuccess();
}

double dot(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double s = 0;
  for (std::size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
  return s;
}

Tensor random(const Shape& s, Generator& gen, double lo = -1.0, double hi = 1.0) {
  std::vector<double> v(static_cast<std::size_t>(s.numel()));
  for (double& x : v) x = gen.uniform(lo, hi);
  return make(v, s);
}

// Central differences of L(x) = Σ w ⊙ f(x) with respect to x (float64).
std::vector<double> numeric_grad(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, const Tensor& w,
                                 double eps = 1e-6) {
  std::vector<double> g(static_cast<std::size_t>(x.numel()));
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    Tensor xp = x.clone(), xm = x.clone();
    xp.data<double>()[i] += eps;
    xm.data<double>()[i] -= eps;
    g[static_cast<std::size_t>(i)] = (dot(f(xp), w) - dot(f(xm), w)) / (2 * eps);
  }
  return g;
}

// Naive convolution through an explicitly zero-padded copy of x (a formulation independent of the
// backend's index arithmetic).
Tensor padded_conv(const Tensor& x, const Tensor& w, const Conv2dParams& p) {
  const std::int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const std::int64_t k = w.dim(0), cg = w.dim(1), r = w.dim(2), s = w.dim(3);
  const std::int64_t hp = h + p.pad_top + p.pad_bottom, wp = wd + p.pad_left + p.pad_right;
  std::vector<double> pad(static_cast<std::size_t>(n * c * hp * wp), 0.0);
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>();
  for (std::int64_t a = 0; a < n * c; ++a)
    for (std::int64_t i = 0; i < h; ++i)
      for (std::int64_t j = 0; j < wd; ++j)
        pad[static_cast<std::size_t>((a * hp + i + p.pad_top) * wp + j + p.pad_left)] =
            xv[static_cast<std::size_t>((a * h + i) * wd + j)];
  const std::int64_t oh = (hp - (r - 1) * p.dilation_h - 1) / p.stride_h + 1;
  const std::int64_t ow = (wp - (s - 1) * p.dilation_w - 1) / p.stride_w + 1;
  std::vector<double> y(static_cast<std::size_t>(n * k * oh * ow), 0.0);
  const std::int64_t kg = k / p.groups;
  for (std::int64_t b = 0; b < n; ++b)
    for (std::int64_t o = 0; o < k; ++o)
      for (std::int64_t i = 0; i < oh; ++i)
        for (std::int64_t j = 0; j < ow; ++j) {
          double acc = 0;
          for (std::int64_t ci = 0; ci < cg; ++ci)
            for (std::int64_t a = 0; a < r; ++a)
              for (std::int64_t e = 0; e < s; ++e) {
                const std::int64_t ch = (o / kg) * cg + ci;
                acc += wv[static_cast<std::size_t>(((o * cg + ci) * r + a) * s + e)] *
                       pad[static_cast<std::size_t>(((b * c + ch) * hp + i * p.stride_h + a * p.dilation_h) * wp +
                                                    j * p.stride_w + e * p.dilation_w)];
              }
          y[static_cast<std::size_t>(((b * k + o) * oh + i) * ow + j)] = acc;
        }
  return make(y, Shape{n, k, oh, ow});
}

class ReferenceBackendTest : public ::testing::Test {
 protected:
  ReferenceBackend ref;
  Generator gen{12345};
};

TEST_F(ReferenceBackendTest, NameAndDevice) {
  EXPECT_EQ(ref.name(), "reference");
  EXPECT_TRUE(ref.device() == Device::cpu());
  EXPECT_EQ(reference_backend().name(), "reference");
}

// ---------------------------------------------------------------------------------------------
// dense algebra
// ---------------------------------------------------------------------------------------------

TEST_F(ReferenceBackendTest, MatmulWithTransposesAndBatches) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    // [[1,2,3],[4,5,6]] · [[7,8],[9,10],[11,12]] = [[58,64],[139,154]]
    const Tensor a = make({1, 2, 3, 4, 5, 6}, {2, 3}, dt), b = make({7, 8, 9, 10, 11, 12}, {3, 2}, dt);
    const Tensor at = make({1, 4, 2, 5, 3, 6}, {3, 2}, dt), bt = make({7, 9, 11, 8, 10, 12}, {2, 3}, dt);
    const std::vector<double> want = {58, 64, 139, 154};
    EXPECT_TRUE(near(ref.matmul(a, b, false, false), want, {2, 2}, tol(dt)));
    EXPECT_TRUE(near(ref.matmul(at, b, true, false), want, {2, 2}, tol(dt)));
    EXPECT_TRUE(near(ref.matmul(a, bt, false, true), want, {2, 2}, tol(dt)));
    EXPECT_TRUE(near(ref.matmul(at, bt, true, true), want, {2, 2}, tol(dt)));
    // Batch of 2: the second a is 2a, so the second product is doubled.
    const Tensor a2 = make({1, 2, 3, 4, 5, 6, 2, 4, 6, 8, 10, 12}, {2, 2, 3}, dt);
    const Tensor b2 = make({7, 8, 9, 10, 11, 12, 7, 8, 9, 10, 11, 12}, {2, 3, 2}, dt);
    EXPECT_TRUE(near(ref.matmul(a2, b2, false, false), {58, 64, 139, 154, 116, 128, 278, 308}, {2, 2, 2}, tol(dt)));
  }
  EXPECT_THROW(ref.matmul(make({1, 2, 3, 4, 5, 6}, {2, 3}), make({1, 2, 3, 4}, {2, 2}), false, false), Error);
  EXPECT_THROW(ref.matmul(make({1, 2}, {1, 2}), make({1, 2}, {2, 1}, DType::kF32), false, false), Error);
}

TEST_F(ReferenceBackendTest, LinearForwardAndBackward) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    const Tensor x = make({1, 2, 3, 4, 5, 6}, {2, 3}, dt);
    const Tensor w = make({1, 0, 1, 0, 1, 0}, {2, 3}, dt);
    const Tensor b = make({0.5, -1}, {2}, dt);
    // x wᵀ = [[1+3, 2], [4+6, 5]]; + b
    EXPECT_TRUE(near(ref.linear_forward(x, w, b), {4.5, 1, 10.5, 4}, {2, 2}, tol(dt)));
    EXPECT_TRUE(near(ref.linear_forward(x, w, Tensor()), {4, 2, 10, 5}, {2, 2}, tol(dt)));
    // dy = I: dx = w, dw = x, db = [1, 1]
    const Tensor dy = make({1, 0, 0, 1}, {2, 2}, dt);
    EXPECT_TRUE(near(ref.linear_backward_data(dy, w), {1, 0, 1, 0, 1, 0}, {2, 3}, tol(dt)));
    WeightGrads g = ref.linear_backward_weights(dy, x, true);
    EXPECT_TRUE(near(g.dw, {1, 2, 3, 4, 5, 6}, {2, 3}, tol(dt)));
    EXPECT_TRUE(near(g.db, {1, 1}, {2}, tol(dt)));
    EXPECT_FALSE(ref.linear_backward_weights(dy, x, false).db.defined());
  }
  EXPECT_THROW(ref.linear_forward(make({1, 2}, {1, 2}), make({1, 2, 3}, {1, 3}), Tensor()), Error);
}

// ---------------------------------------------------------------------------------------------
// convolution
// ---------------------------------------------------------------------------------------------

// x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,2],[3,4]]
Tensor conv_x(DType dt) { return make({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3}, dt); }
Tensor conv_w(DType dt) { return make({1, 2, 3, 4}, {1, 1, 2, 2}, dt); }

TEST_F(ReferenceBackendTest, ConvForwardPlainWithBias) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    // y00 = 1*1 + 2*2 + 4*3 + 5*4 = 37, y01 = 2+6+15+24 = 47, y10 = 4+10+21+32 = 67, y11 = 5+12+24+36 = 77
    EXPECT_TRUE(near(ref.conv2d_forward(conv_x(dt), conv_w(dt), Tensor(), {}), {37, 47, 67, 77}, {1, 1, 2, 2},
                     tol(dt)));
    EXPECT_TRUE(near(ref.conv2d_forward(conv_x(dt), conv_w(dt), make({0.5}, {1}, dt), {}), {37.5, 47.5, 67.5, 77.5},
                     {1, 1, 2, 2}, tol(dt)));
  }
}

TEST_F(ReferenceBackendTest, ConvForwardStride2Padding1) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    Conv2dParams p;
    p.stride_h = p.stride_w = 2;
    p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
    // Windows start at -1 and 1: y00 = x00*w11 = 4; y01 = x01*w10 + x02*w11 = 6 + 12 = 18;
    // y10 = x10*w01 + x20*w11 = 8 + 28 = 36; y11 = 5 + 12 + 24 + 36 = 77.
    EXPECT_TRUE(near(ref.conv2d_forward(conv_x(dt), conv_w(dt), Tensor(), p), {4, 18, 36, 77}, {1, 1, 2, 2}, tol(dt)));
  }
}

TEST_F(ReferenceBackendTest, ConvForwardAsymmetricPadding) {
  Conv2dParams p;
  p.pad_bottom = 1;
  p.pad_left = 1;
  // Out 3x3; y[i][j] reads rows i, i+1 and columns j-1, j.
  // y00 = x00*w01 + x10*w11 = 2 + 16 = 18;  y02 = x01*w00 + x02*w01 + x11*w10 + x12*w11 = 2+6+15+24 = 47;
  // y20 = x20*w01 = 14;  y22 = x21*w00 + x22*w01 = 8 + 18 = 26;  y11 = 4+10+21+32 = 67.
  const Tensor y = ref.conv2d_forward(conv_x(DType::kF64), conv_w(DType::kF64), Tensor(), p);
  ASSERT_EQ(y.shape(), (Shape{1, 1, 3, 3}));
  const auto v = y.to_vector<double>();
  EXPECT_DOUBLE_EQ(v[0], 18);
  EXPECT_DOUBLE_EQ(v[2], 47);
  EXPECT_DOUBLE_EQ(v[4], 67);
  EXPECT_DOUBLE_EQ(v[6], 14);
  EXPECT_DOUBLE_EQ(v[8], 26);
}

TEST_F(ReferenceBackendTest, ConvForwardDilation) {
  Conv2dParams p;
  p.dilation_h = p.dilation_w = 2;
  // The dilated 2x2 kernel touches the four corners: 1*1 + 3*2 + 7*3 + 9*4 = 64.
  EXPECT_TRUE(near(ref.conv2d_forward(conv_x(DType::kF64), conv_w(DType::kF64), Tensor(), p), {64}, {1, 1, 1, 1},
                   1e-12));
}

TEST_F(ReferenceBackendTest, ConvForwardGroups) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    Conv2dParams p;
    p.groups = 2;
    // Two 1x1 kernels [2] and [3], each seeing only its own channel.
    const Tensor x = make({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 2, 2}, dt);
    const Tensor w = make({2, 3}, {2, 1, 1, 1}, dt);
    EXPECT_TRUE(near(ref.conv2d_forward(x, w, make({0, 1}, {2}, dt), p), {2, 4, 6, 8, 16, 19, 22, 25}, {1, 2, 2, 2},
                     tol(dt)));
  }
}

TEST_F(ReferenceBackendTest, ConvBackwardHandComputed) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    const Tensor dy = make({1, 1, 1, 1}, {1, 1, 2, 2}, dt);
    // dx[i][j] = sum of the kernel taps that land on (i, j): corners 1,2,3,4; edges 1+2, 1+3, 2+4, 3+4; centre 10.
    EXPECT_TRUE(near(ref.conv2d_backward_data(dy, conv_w(dt), {1, 1, 3, 3}, {}), {1, 3, 2, 4, 10, 6, 3, 7, 4},
                     {1, 1, 3, 3}, tol(dt)));
    // dw[r][s] = Σ over the 2x2 window shifted by (r, s): 1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9; db = 4.
    WeightGrads g = ref.conv2d_backward_weights(dy, conv_x(dt), {1, 1, 2, 2}, true, {});
    EXPECT_TRUE(near(g.dw, {12, 16, 24, 28}, {1, 1, 2, 2}, tol(dt)));
    EXPECT_TRUE(near(g.db, {4}, {1}, tol(dt)));
  }
}

TEST_F(ReferenceBackendTest, ConvMatchesPaddedBufferConvAndAdjoints) {
  struct Case {
    Shape x, w;
    Conv2dParams p;
  };
  std::vector<Case> cases;
  cases.push_back({{2, 3, 7, 6}, {4, 3, 3, 3}, {}});
  cases.push_back({{1, 4, 8, 9}, {6, 2, 3, 2}, {.stride_h = 2, .stride_w = 3, .pad_top = 1, .pad_bottom = 2,
                                               .pad_left = 0, .pad_right = 1, .dilation_h = 2, .dilation_w = 1,
                                               .groups = 2}});
  cases.push_back({{2, 2, 5, 5}, {2, 1, 2, 2}, {.stride_h = 3, .stride_w = 3, .groups = 2}});  // stride > kernel
  cases.push_back({{1, 1, 4, 4}, {1, 1, 1, 1}, {.pad_top = 2, .pad_bottom = 1, .pad_left = 1, .pad_right = 2}});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.x.str() + " " + c.w.str());
    const Tensor x = random(c.x, gen), w = random(c.w, gen), b = random(Shape{c.w[0]}, gen);
    const Tensor y = ref.conv2d_forward(x, w, Tensor(), c.p);
    const Tensor want = padded_conv(x, w, c.p);
    EXPECT_TRUE(near(y, want.to_vector<double>(), want.shape(), 1e-12));
    // <conv(x), dy> = <x, conv_backward_data(dy)> = <w, conv_backward_weights(dy, x)>
    const Tensor dy = random(y.shape(), gen);
    const double lhs = dot(y, dy);
    EXPECT_NEAR(dot(x, ref.conv2d_backward_data(dy, w, c.x, c.p)), lhs, 1e-10);
    WeightGrads g = ref.conv2d_backward_weights(dy, x, c.w, true, c.p);
    EXPECT_NEAR(dot(w, g.dw), lhs, 1e-10);
    // db = Σ_{N,H,W} dy, and the bias shifts each output channel.
    const Tensor yb = ref.conv2d_forward(x, w, b, c.p);
    const auto dyv = dy.to_vector<double>(), yv = y.to_vector<double>(), ybv = yb.to_vector<double>();
    const auto bv = b.to_vector<double>(), dbv = g.db.to_vector<double>();
    const std::int64_t k = c.w[0], plane = y.dim(2) * y.dim(3);
    for (std::int64_t o = 0; o < k; ++o) {
      double s = 0;
      for (std::int64_t n = 0; n < y.dim(0); ++n)
        for (std::int64_t i = 0; i < plane; ++i) {
          const auto at = static_cast<std::size_t>((n * k + o) * plane + i);
          s += dyv[at];
          EXPECT_NEAR(ybv[at] - yv[at], bv[static_cast<std::size_t>(o)], 1e-12);
        }
      EXPECT_NEAR(dbv[static_cast<std::size_t>(o)], s, 1e-12);
    }
  }
}

TEST_F(ReferenceBackendTest, ConvFloat32MatchesFloat64) {
  Conv2dParams p{.stride_h = 1, .stride_w = 2, .pad_top = 1, .pad_bottom = 1, .pad_left = 2, .pad_right = 0};
  const Tensor x = random({2, 3, 9, 8}, gen), w = random({5, 3, 3, 3}, gen);
  const Tensor y64 = ref.conv2d_forward(x, w, Tensor(), p);
  const Tensor y32 = ref.conv2d_forward(x.to(DType::kF32), w.to(DType::kF32), Tensor(), p);
  EXPECT_EQ(y32.dtype(), DType::kF32);
  EXPECT_TRUE(near(y32, y64.to_vector<double>(), y64.shape(), 1e-5));
}

TEST_F(ReferenceBackendTest, ConvRejectsBadShapesAndDtypes) {
  EXPECT_THROW(ref.conv2d_forward(make({1, 2, 3}, {1, 1, 3}), conv_w(DType::kF64), Tensor(), {}), Error);
  EXPECT_THROW(ref.conv2d_forward(conv_x(DType::kF64), conv_w(DType::kF32), Tensor(), {}), Error);
  EXPECT_THROW(ref.conv2d_forward(conv_x(DType::kF64), make({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 2, 2}), Tensor(), {}),
               Error);
  EXPECT_THROW(ref.conv2d_forward(conv_x(DType::kF64), conv_w(DType::kF64), make({1, 2}, {2}), {}), Error);
}

// ---------------------------------------------------------------------------------------------
// pooling
// ---------------------------------------------------------------------------------------------

TEST_F(ReferenceBackendTest, MaxPoolWithArgmaxAndBackward) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    // 1 5 2 0 / 3 4 8 1 / 0 2 6 7 / 9 1 3 4, 2x2 stride 2: maxima 5 (@1), 8 (@6), 9 (@12), 7 (@11).
    const Tensor x = make({1, 5, 2, 0, 3, 4, 8, 1, 0, 2, 6, 7, 9, 1, 3, 4}, {1, 1, 4, 4}, dt);
    Pool2dParams p;
    const PoolResult r = ref.pool2d_forward(x, p);
    EXPECT_TRUE(near(r.y, {5, 8, 9, 7}, {1, 1, 2, 2}, tol(dt)));
    ASSERT_EQ(r.workspace.dtype(), DType::kI64);
    EXPECT_EQ(r.workspace.to_vector<std::int64_t>(), (std::vector<std::int64_t>{1, 6, 12, 11}));
    const Tensor dx = ref.pool2d_backward(make({1, 2, 3, 4}, {1, 1, 2, 2}, dt), x, r, p);
    EXPECT_TRUE(near(dx, {0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 4, 3, 0, 0, 0}, {1, 1, 4, 4}, tol(dt)));
  }
}

TEST_F(ReferenceBackendTest, MaxPoolPaddingNeverWins) {
  // All inputs negative; with padding 1 a zero pad would win if it were counted.
  Pool2dParams p{.kind = PoolKind::kMax, .kernel_h = 2, .kernel_w = 2, .stride_h = 1, .stride_w = 1, .pad_top = 1,
                 .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
  const Tensor x = make({-1, -2, -3, -4}, {1, 1, 2, 2});
  const PoolResult r = ref.pool2d_forward(x, p);
  EXPECT_TRUE(near(r.y, {-1, -1, -2, -1, -1, -2, -3, -3, -4}, {1, 1, 3, 3}, 1e-12));
  EXPECT_EQ(r.workspace.to_vector<std::int64_t>(), (std::vector<std::int64_t>{0, 0, 1, 0, 0, 1, 2, 2, 3}));
  // Each x gets the dy of every window it wins: x00 wins 4 windows, x01 2, x10 2, x11 1.
  const Tensor dx = ref.pool2d_backward(make(std::vector<double>(9, 1.0), {1, 1, 3, 3}), x, r, p);
  EXPECT_TRUE(near(dx, {4, 2, 2, 1}, {1, 1, 2, 2}, 1e-12));
}

TEST_F(ReferenceBackendTest, AvgPoolCountIncludePadBothWays) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    const Tensor x = make({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3}, dt);
    Pool2dParams p{.kind = PoolKind::kAvg, .kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 1, .pad_top = 1,
                   .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
    const Tensor dy = make(std::vector<double>(9, 1.0), {1, 1, 3, 3}, dt);
    // Excluding padding: corner (1+2+4+5)/4 = 3, edge (1+2+3+4+5+6)/6 = 3.5, centre 45/9 = 5.
    p.count_include_pad = false;
    PoolResult r = ref.pool2d_forward(x, p);
    EXPECT_TRUE(near(r.y, {3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7}, {1, 1, 3, 3}, tol(dt)));
    // dx00 = 1/4 + 1/6 + 1/6 + 1/9 = 25/36; centre is in all nine windows: 4*(1/4)+4*(1/6)+1/9.
    Tensor dx = ref.pool2d_backward(dy, x, r, p);
    const auto dv = dx.to_vector<double>();
    EXPECT_NEAR(dv[0], 25.0 / 36.0, tol(dt));
    EXPECT_NEAR(dv[4], 1.0 + 4.0 / 6.0 + 1.0 / 9.0, tol(dt));
    // Including padding: everything divided by 9: corner 12/9, edge 21/9, centre 5.
    p.count_include_pad = true;
    r = ref.pool2d_forward(x, p);
    EXPECT_TRUE(near(r.y, {12 / 9.0, 21 / 9.0, 16 / 9.0, 27 / 9.0, 5, 33 / 9.0, 24 / 9.0, 39 / 9.0, 28 / 9.0},
                     {1, 1, 3, 3}, tol(dt)));
    dx = ref.pool2d_backward(dy, x, r, p);
    EXPECT_TRUE(near(dx, {4 / 9.0, 6 / 9.0, 4 / 9.0, 6 / 9.0, 1, 6 / 9.0, 4 / 9.0, 6 / 9.0, 4 / 9.0}, {1, 1, 3, 3},
                     tol(dt)));
  }
}

TEST_F(ReferenceBackendTest, AvgPoolStride2Padding) {
  // 2x2 input, 2x2 kernel, stride 2, pad 1: each window holds exactly one input cell.
  const Tensor x = make({1, 2, 3, 4}, {1, 1, 2, 2});
  Pool2dParams p{.kind = PoolKind::kAvg, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
  EXPECT_TRUE(near(ref.pool2d_forward(x, p).y, {1, 2, 3, 4}, {1, 1, 2, 2}, 1e-12));
  p.count_include_pad = true;
  EXPECT_TRUE(near(ref.pool2d_forward(x, p).y, {0.25, 0.5, 0.75, 1}, {1, 1, 2, 2}, 1e-12));
  EXPECT_FALSE(ref.pool2d_forward(x, p).workspace.defined());
}

TEST_F(ReferenceBackendTest, MaxPoolBackwardRejectsForeignWorkspace) {
  const Tensor x = make({1, 2, 3, 4}, {1, 1, 2, 2});
  Pool2dParams p;
  PoolResult r = ref.pool2d_forward(x, p);
  r.workspace = Tensor::zeros({1, 1, 1, 1}, DType::kU8);
  EXPECT_THROW(ref.pool2d_backward(make({1}, {1, 1, 1, 1}), x, r, p), Error);
}

// ---------------------------------------------------------------------------------------------
// elementwise
// ---------------------------------------------------------------------------------------------

TEST_F(ReferenceBackendTest, EltwiseForwardAndBackwardHandValues) {
  struct Case {
    EltwiseKind kind;
    double alpha, beta, x, y, dydx;
  };
  const double e = std::exp(1.0);
  const Case cases[] = {
      {EltwiseKind::kRelu, 0, 0, -2, 0, 0},
      {EltwiseKind::kRelu, 0, 0, 0, 0, 0},  // derivative at 0 is 0
      {EltwiseKind::kRelu, 0, 0, 3, 3, 1},
      {EltwiseKind::kRelu, 0.1, 0, -2, -0.2, 0.1},
      {EltwiseKind::kSigmoid, 0, 0, 0, 0.5, 0.25},
      {EltwiseKind::kTanh, 0, 0, 0, 0, 1},
      // gelu(1) = Φ(1) = 0.841344746..., gelu'(1) = Φ(1) + φ(1) = 0.841344746 + 0.241970725
      {EltwiseKind::kGelu, 0, 0, 1, 0.8413447460685429, 1.0833154705876864},
      {EltwiseKind::kExp, 0, 0, 1, e, e},
      {EltwiseKind::kLog, 0, 0, e, 1, 1 / e},
      {EltwiseKind::kSqrt, 0, 0, 4, 2, 0.25},
      {EltwiseKind::kSquare, 0, 0, 3, 9, 6},
      {EltwiseKind::kAbs, 0, 0, -2, 2, -1},
      {EltwiseKind::kLinear, 3, 1, 2, 7, 3},
  };
  for (DType dt : kBoth) {
    for (const Case& c : cases) {
      SCOPED_TRACE(fmt::format("{} kind {} x {}", dtype_name(dt), static_cast<int>(c.kind), c.x));
      const Tensor x = make({c.x}, {1}, dt);
      const Tensor y = ref.eltwise_forward(c.kind, x, c.alpha, c.beta);
      EXPECT_TRUE(near(y, {c.y}, {1}, tol(dt)));
      const Tensor dx = ref.eltwise_backward(c.kind, make({2.0}, {1}, dt), x, y, c.alpha, c.beta);
      EXPECT_TRUE(near(dx, {2 * c.dydx}, {1}, tol(dt)));
    }
  }
}

TEST_F(ReferenceBackendTest, EltwiseBackwardMatchesFiniteDifferences) {
  const Tensor x = random({2, 5}, gen, 0.2, 2.0);  // positive: log and sqrt are defined
  const Tensor w = random({2, 5}, gen);
  for (EltwiseKind k : {EltwiseKind::kSigmoid, EltwiseKind::kTanh, EltwiseKind::kGelu, EltwiseKind::kExp,
                        EltwiseKind::kLog, EltwiseKind::kSqrt, EltwiseKind::kSquare, EltwiseKind::kLinear}) {
    SCOPED_TRACE(static_cast<int>(k));
    auto f = [&](const Tensor& t) { return ref.eltwise_forward(k, t, 0.7, 0.3); };
    const Tensor dx = ref.eltwise_backward(k, w, x, f(x), 0.7, 0.3);
    EXPECT_TRUE(near(dx, numeric_grad(f, x, w), x.shape(), 1e-7));
  }
}

TEST_F(ReferenceBackendTest, EltwiseRejectsIntegerInputNamingTheTensor) {
  try {
    ref.eltwise_forward(EltwiseKind::kRelu, Tensor::zeros({2}, DType::kI32), 0, 0);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("eltwise_forward"), std::string::npos) << m;
    EXPECT_NE(m.find("int32[2]"), std::string::npos) << m;
  }
}

// ---------------------------------------------------------------------------------------------
// binary and reduce
// ---------------------------------------------------------------------------------------------

TEST_F(ReferenceBackendTest, BinaryBroadcastAdd) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    // a [2,1,3] = 0..5, b [4,1] = 10,20,30,40 -> c [2,4,3], c[i,j,k] = a[i,0,k] + b[j]
    const Tensor a = make({0, 1, 2, 3, 4, 5}, {2, 1, 3}, dt), b = make({10, 20, 30, 40}, {4, 1}, dt);
    std::vector<double> want;
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 4; ++j)
        for (int k = 0; k < 3; ++k) want.push_back(3 * i + k + 10 * (j + 1));
    EXPECT_TRUE(near(ref.binary(BinaryKind::kAdd, a, b), want, {2, 4, 3}, tol(dt)));
    EXPECT_EQ(want[static_cast<std::size_t>((1 * 4 + 2) * 3 + 0)], 33);  // a[1,0,0] = 3, b[2] = 30
  }
}

TEST_F(ReferenceBackendTest, BinaryKindsAndOperandOrder) {
  const Tensor a = make({1, 5, -2}, {3}), b = make({4}, {1});
  EXPECT_TRUE(near(ref.binary(BinaryKind::kSub, a, b), {-3, 1, -6}, {3}, 1e-12));
  EXPECT_TRUE(near(ref.binary(BinaryKind::kSub, b, a), {3, -1, 6}, {3}, 1e-12));
  EXPECT_TRUE(near(ref.binary(BinaryKind::kMul, a, b), {4, 20, -8}, {3}, 1e-12));
  EXPECT_TRUE(near(ref.binary(BinaryKind::kDiv, a, b), {0.25, 1.25, -0.5}, {3}, 1e-12));
  EXPECT_TRUE(near(ref.binary(BinaryKind::kDiv, b, a), {4, 0.8, -2}, {3}, 1e-12));
  EXPECT_TRUE(near(ref.binary(BinaryKind::kMax, a, b), {4, 5, 4}, {3}, 1e-12));
  EXPECT_TRUE(near(ref.binary(BinaryKind::kMin, a, b), {1, 4, -2}, {3}, 1e-12));
  // 0-d operands broadcast too.
  EXPECT_TRUE(near(ref.binary(BinaryKind::kAdd, Tensor::scalar(2.0, DType::kF64), make({1, 2}, {2, 1})), {3, 4},
                   {2, 1}, 1e-12));
  EXPECT_TRUE(near(ref.binary(BinaryKind::kAdd, Tensor::scalar(2.0, DType::kF64), Tensor::scalar(3.0, DType::kF64)),
                   {5}, Shape{}, 1e-12));
}

TEST_F(ReferenceBackendTest, BinaryRejectsDtypeMismatchAndBadShapes) {
  EXPECT_THROW(ref.binary(BinaryKind::kAdd, make({1}, {1}, DType::kF32), make({1}, {1}, DType::kF64)), Error);
  EXPECT_THROW(ref.binary(BinaryKind::kAdd, make({1, 2, 3}, {3}), make({1, 2}, {2})), Error);
}

TEST_F(ReferenceBackendTest, ReduceToRowAndColumn) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    // x = [[1,5,-2],[3,-1,4]]
    const Tensor x = make({1, 5, -2, 3, -1, 4}, {2, 3}, dt);
    EXPECT_TRUE(near(ref.reduce(ReduceKind::kSum, x, {1, 3}), {4, 4, 2}, {1, 3}, tol(dt)));
    EXPECT_TRUE(near(ref.reduce(ReduceKind::kMean, x, {1, 3}), {2, 2, 1}, {1, 3}, tol(dt)));
    EXPECT_TRUE(near(ref.reduce(ReduceKind::kMax, x, {1, 3}), {3, 5, 4}, {1, 3}, tol(dt)));
    EXPECT_TRUE(near(ref.reduce(ReduceKind::kMin, x, {1, 3}), {1, -1, -2}, {1, 3}, tol(dt)));
    EXPECT_TRUE(near(ref.reduce(ReduceKind::kSum, x, {2, 1}), {4, 6}, {2, 1}, tol(dt)));
    EXPECT_TRUE(near(ref.reduce(ReduceKind::kMean, x, {1, 1}), {10.0 / 6}, {1, 1}, tol(dt)));
    EXPECT_TRUE(near(ref.reduce(ReduceKind::kMax, x, {2, 3}), {1, 5, -2, 3, -1, 4}, {2, 3}, tol(dt)));
  }
}

TEST_F(ReferenceBackendTest, ReduceMiddleAxisOf3d) {
  // x [2,3,2] = 0..11; sum over axis 1: [0+2+4, 1+3+5, 6+8+10, 7+9+11]
  std::vector<double> v(12);
  for (int i = 0; i < 12; ++i) v[static_cast<std::size_t>(i)] = i;
  EXPECT_TRUE(near(ref.reduce(ReduceKind::kSum, make(v, {2, 3, 2}), {2, 1, 2}), {6, 9, 24, 27}, {2, 1, 2}, 1e-12));
  EXPECT_TRUE(near(ref.reduce(ReduceKind::kMax, make(v, {2, 3, 2}), {1, 3, 1}), {7, 9, 11}, {1, 3, 1}, 1e-12));
}

TEST_F(ReferenceBackendTest, ReduceRejectsInvalidOutShape) {
  const Tensor x = make({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_THROW(ref.reduce(ReduceKind::kSum, x, {1, 2}), Error);
  EXPECT_THROW(ref.reduce(ReduceKind::kSum, x, {3}), Error);
  try {
    ref.reduce(ReduceKind::kSum, x, {2, 2});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2,2]"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// softmax
// ---------------------------------------------------------------------------------------------

// softmax([1,2,3]) = e^i / (e + e^2 + e^3); log-softmax = i - 3 - log(1 + e^-1 + e^-2) = i - 3.40760596...
const std::vector<double> kSoftmax123 = {0.09003057317038046, 0.24472847105479764, 0.6652409557748219};
const std::vector<double> kLogSoftmax123 = {-2.4076059644443806, -1.4076059644443806, -0.4076059644443806};

TEST_F(ReferenceBackendTest, SoftmaxAndLogSoftmaxOf123) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    const Tensor x = make({1, 2, 3}, {3}, dt);
    EXPECT_TRUE(near(ref.softmax_forward(x, 0, false), kSoftmax123, {3}, tol(dt)));
    EXPECT_TRUE(near(ref.softmax_forward(x, 0, true), kLogSoftmax123, {3}, tol(dt)));
    // Huge logits are stable: softmax([1000, 1000]) = [0.5, 0.5].
    EXPECT_TRUE(near(ref.softmax_forward(make({1000, 1000}, {2}, dt), 0, false), {0.5, 0.5}, {2}, tol(dt)));
  }
}

TEST_F(ReferenceBackendTest, SoftmaxAlongInnerAndOuterAxes) {
  // [3,2]: column 0 is [1,2,3], column 1 is [3,3,3]; softmax along axis 0.
  const Tensor x = make({1, 3, 2, 3, 3, 3}, {3, 2});
  const double t = 1.0 / 3;
  EXPECT_TRUE(near(ref.softmax_forward(x, 0, false),
                   {kSoftmax123[0], t, kSoftmax123[1], t, kSoftmax123[2], t}, {3, 2}, 1e-12));
  // Axis 1 of [2,3] rows [1,2,3] and [1,2,3] + 10 (shift invariance).
  EXPECT_TRUE(near(ref.softmax_forward(make({1, 2, 3, 11, 12, 13}, {2, 3}), 1, true),
                   {kLogSoftmax123[0], kLogSoftmax123[1], kLogSoftmax123[2], kLogSoftmax123[0], kLogSoftmax123[1],
                    kLogSoftmax123[2]},
                   {2, 3}, 1e-12));
  EXPECT_THROW(ref.softmax_forward(x, 2, false), Error);
}

TEST_F(ReferenceBackendTest, SoftmaxBackwardHandAndFiniteDifferences) {
  const Tensor dy = make({1, 0, 0}, {3});
  const auto& s = kSoftmax123;
  // softmax: dx = y (dy - Σ dy y) = y (e0 - y0) = [y0 (1 - y0), -y1 y0, -y2 y0]
  EXPECT_TRUE(near(ref.softmax_backward(dy, make(s, {3}), 0, false), {s[0] * (1 - s[0]), -s[1] * s[0], -s[2] * s[0]},
                   {3}, 1e-12));
  // log-softmax: dx = dy - softmax Σ dy = [1 - s0, -s1, -s2]
  EXPECT_TRUE(near(ref.softmax_backward(dy, make(kLogSoftmax123, {3}), 0, true), {1 - s[0], -s[1], -s[2]}, {3},
                   1e-12));
  const Tensor x = random({2, 3, 4}, gen), w = random({2, 3, 4}, gen);
  for (bool log : {false, true})
    for (std::int64_t axis : {0, 1, 2}) {
      SCOPED_TRACE(fmt::format("log {} axis {}", log, axis));
      auto f = [&](const Tensor& t) { return ref.softmax_forward(t, axis, log); };
      EXPECT_TRUE(near(ref.softmax_backward(w, f(x), axis, log), numeric_grad(f, x, w), x.shape(), 1e-7));
    }
}

// ---------------------------------------------------------------------------------------------
// batch norm
// ---------------------------------------------------------------------------------------------

TEST_F(ReferenceBackendTest, BatchNormTraining2d) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    // x [N=2, C=2] = [[1,2],[3,6]]: channel 0 {1,3} mean 2 var 1; channel 1 {2,6} mean 4 var 4.
    // xhat = [[-1,-1],[1,1]]; gamma [2, 0.5], beta [0, 1] -> [[-2, 0.5], [2, 1.5]]
    const Tensor x = make({1, 2, 3, 6}, {2, 2}, dt);
    BatchNormTrainResult r = ref.batch_norm_forward_training(x, make({2, 0.5}, {2}, dt), make({0, 1}, {2}, dt), 0.0);
    EXPECT_TRUE(near(r.y, {-2, 0.5, 2, 1.5}, {2, 2}, tol(dt)));
    EXPECT_TRUE(near(r.mean, {2, 4}, {2}, tol(dt)));
    EXPECT_TRUE(near(r.var, {1, 4}, {2}, tol(dt)));
  }
}

TEST_F(ReferenceBackendTest, BatchNormTraining4dWithEps) {
  // x [N=2, C=1, H=1, W=2] = 1,2,3,4: mean 2.5, biased var (2.25+0.25+0.25+2.25)/4 = 1.25; eps 0.75 -> std 1.414...
  const Tensor x = make({1, 2, 3, 4}, {2, 1, 1, 2});
  BatchNormTrainResult r = ref.batch_norm_forward_training(x, make({1}, {1}), make({0}, {1}), 0.75);
  const double s = std::sqrt(2.0);
  EXPECT_TRUE(near(r.y, {-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s}, {2, 1, 1, 2}, 1e-12));
  EXPECT_TRUE(near(r.mean, {2.5}, {1}, 1e-12));
  EXPECT_TRUE(near(r.var, {1.25}, {1}, 1e-12));
}

TEST_F(ReferenceBackendTest, BatchNormInference) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    // gamma 3, beta 1, mean 1, var 4: y = 3 (x - 1) / 2 + 1 -> x = 5: 7, x = 1: 1, x = -1: -2
    const Tensor y = ref.batch_norm_forward_inference(make({5, 1, -1}, {3, 1, 1, 1}, dt), make({3}, {1}, dt),
                                                      make({1}, {1}, dt), make({1}, {1}, dt), make({4}, {1}, dt), 0.0);
    EXPECT_TRUE(near(y, {7, 1, -2}, {3, 1, 1, 1}, tol(dt)));
  }
}

TEST_F(ReferenceBackendTest, BatchNormBackwardHandComputed) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    // x [N=4, C=1] = 1,3,1,3: mean 2, var 1, xhat = -1,1,-1,1. dy = 1,2,3,4: mean(dy) = 2.5,
    // mean(dy xhat) = (-1+2-3+4)/4 = 0.5; dx = gamma (dy - 2.5 - 0.5 xhat) = 2 [-1,-1,1,1].
    BatchNormGrads g = ref.batch_norm_backward(make({1, 2, 3, 4}, {4, 1}, dt), make({1, 3, 1, 3}, {4, 1}, dt),
                                               make({2}, {1}, dt), make({2}, {1}, dt), make({1}, {1}, dt), 0.0);
    EXPECT_TRUE(near(g.dx, {-2, -2, 2, 2}, {4, 1}, tol(dt)));
    EXPECT_TRUE(near(g.dgamma, {2}, {1}, tol(dt)));
    EXPECT_TRUE(near(g.dbeta, {10}, {1}, tol(dt)));
  }
}

TEST_F(ReferenceBackendTest, BatchNormBackwardMatchesFiniteDifferences) {
  const Tensor x = random({3, 2, 2, 3}, gen), gamma = random({2}, gen, 0.5, 1.5), beta = random({2}, gen);
  const Tensor w = random(x.shape(), gen);
  const double eps = 1e-3;
  BatchNormTrainResult r = ref.batch_norm_forward_training(x, gamma, beta, eps);
  BatchNormGrads g = ref.batch_norm_backward(w, x, gamma, r.mean, r.var, eps);
  EXPECT_TRUE(near(g.dx,
                   numeric_grad([&](const Tensor& t) { return ref.batch_norm_forward_training(t, gamma, beta, eps).y; },
                                x, w),
                   x.shape(), 1e-6));
  EXPECT_TRUE(near(g.dgamma,
                   numeric_grad([&](const Tensor& t) { return ref.batch_norm_forward_training(x, t, beta, eps).y; },
                                gamma, w),
                   gamma.shape(), 1e-6));
  EXPECT_TRUE(near(g.dbeta,
                   numeric_grad([&](const Tensor& t) { return ref.batch_norm_forward_training(x, gamma, t, eps).y; },
                                beta, w),
                   beta.shape(), 1e-6));
}

// ---------------------------------------------------------------------------------------------
// softmax cross-entropy
// ---------------------------------------------------------------------------------------------

TEST_F(ReferenceBackendTest, SoftmaxCrossEntropy2x3) {
  for (DType dt : kBoth) {
    for (DType lt : {DType::kI32, DType::kI64}) {
      SCOPED_TRACE(dtype_name(dt) + " " + dtype_name(lt));
      // Row 0 logits [1,2,3], label 2: loss = -log softmax[2] = 0.40760596...
      // Row 1 logits [0,0,0], label 0: loss = log 3.
      const Tensor logits = make({1, 2, 3, 0, 0, 0}, {2, 3}, dt);
      const Tensor labels = make({2, 0}, {2}, lt);
      SoftmaxCrossEntropyResult r = ref.softmax_cross_entropy_forward(logits, labels);
      EXPECT_TRUE(near(r.loss, {-kLogSoftmax123[2], std::log(3.0)}, {2}, tol(dt)));
      const double t = 1.0 / 3;
      const auto& s = kSoftmax123;
      EXPECT_TRUE(near(r.prob, {s[0], s[1], s[2], t, t, t}, {2, 3}, tol(dt)));
      // dlogits = dloss[n] (prob - onehot): row 0 [s0, s1, s2 - 1], row 1 2 [1/3 - 1, 1/3, 1/3]
      const Tensor d = ref.softmax_cross_entropy_backward(make({1, 2}, {2}, dt), r.prob, labels);
      EXPECT_TRUE(near(d, {s[0], s[1], s[2] - 1, -4 * t, 2 * t, 2 * t}, {2, 3}, tol(dt)));
    }
  }
}

TEST_F(ReferenceBackendTest, SoftmaxCrossEntropyLabelOutOfRangeNamesIndexValueAndClasses) {
  const Tensor logits = make({1, 2, 3, 0, 0, 0}, {2, 3});
  try {
    ref.softmax_cross_entropy_forward(logits, Tensor::from_vector(std::vector<std::int64_t>{0, 3}, {2}));
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("index 1"), std::string::npos) << m;
    EXPECT_NE(m.find("is 3"), std::string::npos) << m;
    EXPECT_NE(m.find("[0, 3)"), std::string::npos) << m;
  }
  EXPECT_THROW(ref.softmax_cross_entropy_forward(logits, Tensor::from_vector(std::vector<std::int32_t>{-1, 0}, {2})),
               Error);
  EXPECT_THROW(ref.softmax_cross_entropy_forward(logits, make({0, 1}, {2})), Error);  // float labels
  EXPECT_THROW(ref.softmax_cross_entropy_forward(logits, Tensor::from_vector(std::vector<std::int32_t>{0}, {1})),
               Error);
}

// ---------------------------------------------------------------------------------------------
// axpy and optimizer kernels
// ---------------------------------------------------------------------------------------------

TEST_F(ReferenceBackendTest, Axpy) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor dst = make({1, 2}, {2}, dt);
    ref.axpy_(dst, make({3, 4}, {2}, dt), 0.5);
    EXPECT_TRUE(near(dst, {2.5, 4}, {2}, tol(dt)));
  }
  Tensor dst = make({1, 2}, {2});
  EXPECT_THROW(ref.axpy_(dst, make({1, 2, 3}, {3}), 1.0), Error);
  EXPECT_THROW(ref.axpy_(dst, make({1, 2}, {2}, DType::kF32), 1.0), Error);
}

TEST_F(ReferenceBackendTest, SgdUpdate) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    // g' = [0.5 + 0.01*1, 1 + 0.01*(-2)] = [0.51, 0.98]; p -= 0.1 g' -> [0.949, -2.098]
    Tensor p = make({1, -2}, {2}, dt);
    ref.sgd_update(p, make({0.5, 1}, {2}, dt), 0.1, 0.01);
    EXPECT_TRUE(near(p, {0.949, -2.098}, {2}, tol(dt)));
  }
}

TEST_F(ReferenceBackendTest, MomentumUpdatePlainAndNesterov) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    // m = 0.9 [0.1, 0.2] + [0.5, -1] = [0.59, -0.82]; p -= 0.1 m -> [0.941, 2.082]
    Tensor p = make({1, 2}, {2}, dt), m = make({0.1, 0.2}, {2}, dt);
    ref.momentum_update(p, make({0.5, -1}, {2}, dt), m, 0.1, 0.9, 0.0, false);
    EXPECT_TRUE(near(m, {0.59, -0.82}, {2}, tol(dt)));
    EXPECT_TRUE(near(p, {0.941, 2.082}, {2}, tol(dt)));
    // Nesterov: p -= 0.1 (g + 0.9 m) = 0.1 [0.5 + 0.531, -1 - 0.738] -> [0.8969, 2.1738]
    p = make({1, 2}, {2}, dt);
    m = make({0.1, 0.2}, {2}, dt);
    ref.momentum_update(p, make({0.5, -1}, {2}, dt), m, 0.1, 0.9, 0.0, true);
    EXPECT_TRUE(near(m, {0.59, -0.82}, {2}, tol(dt)));
    EXPECT_TRUE(near(p, {0.8969, 2.1738}, {2}, tol(dt)));
    // Weight decay enters g: g' = [0.5 + 0.5*1, -1 + 0.5*2] = [1, 0]; m = [1.09, 0.18]; p = [0.891, 1.982]
    p = make({1, 2}, {2}, dt);
    m = make({0.1, 0.2}, {2}, dt);
    ref.momentum_update(p, make({0.5, -1}, {2}, dt), m, 0.1, 0.9, 0.5, false);
    EXPECT_TRUE(near(m, {1.09, 0.18}, {2}, tol(dt)));
    EXPECT_TRUE(near(p, {0.891, 1.982}, {2}, tol(dt)));
  }
}

TEST_F(ReferenceBackendTest, AdamFirstStepMovesByLearningRate) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    // Step 1 from m = v = 0: m = 0.1 g, v = 0.001 g^2; lr sqrt(1-0.999)/(1-0.9) * m/sqrt(v) = lr sign(g).
    Tensor p = make({1, -1}, {2}, dt), m = make({0, 0}, {2}, dt), v = make({0, 0}, {2}, dt);
    ref.adam_update(p, make({0.1, -0.2}, {2}, dt), m, v, 0.01, 0.9, 0.999, 1e-12, 0.0, 0.9, 0.999, false);
    EXPECT_TRUE(near(m, {0.01, -0.02}, {2}, tol(dt)));
    EXPECT_TRUE(near(v, {1e-5, 4e-5}, {2}, tol(dt)));
    EXPECT_TRUE(near(p, {0.99, -0.99}, {2}, 1e-6));
  }
}

TEST_F(ReferenceBackendTest, AdamSecondStepWithL2WeightDecay) {
  // m = [0.02, 0], v = [4e-5, 0] from a previous step; g = [0.1, 0.3], wd 0.5, p = [2, 0.4]:
  // g' = [0.1 + 1, 0.3 + 0.2] = [1.1, 0.5]; m = [0.018 + 0.11, 0.05] = [0.128, 0.05];
  // v = [0.999*4e-5 + 0.001*1.21, 0.001*0.25] = [0.00124996, 0.00025];
  // step 2: lr' = 0.01 sqrt(1 - 0.998001) / (1 - 0.81) = 0.01 * 0.0447101778 / 0.19 = 0.00235316725
  // p = [2 - lr' 0.128/0.0353547, 0.4 - lr' 0.05/0.0158114] = [2 - 0.00851951, 0.4 - 0.00744137]
  Tensor p = make({2, 0.4}, {2}), m = make({0.02, 0}, {2}), v = make({4e-5, 0}, {2});
  ref.adam_update(p, make({0.1, 0.3}, {2}), m, v, 0.01, 0.9, 0.999, 0.0, 0.5, 0.81, 0.998001, false);
  EXPECT_TRUE(near(m, {0.128, 0.05}, {2}, 1e-12));
  EXPECT_TRUE(near(v, {0.00124996, 0.00025}, {2}, 1e-12));
  EXPECT_TRUE(near(p, {2 - 0.00851951, 0.4 - 0.00744137}, {2}, 1e-6));
}

TEST_F(ReferenceBackendTest, AdamWeightDecayDecoupledNoBiasCorrection) {
  for (DType dt : kBoth) {
    SCOPED_TRACE(dtype_name(dt));
    // m = [0.01, -0.02], v = [1e-5, 4e-5]: m/sqrt(v) = ±sqrt(10) = ±3.16227766;
    // p = 1 - 0.01 (3.16227766 + 0.1*1) = 0.967377223; p1 = -1 - 0.01 (-3.16227766 - 0.1) = -0.967377223
    Tensor p = make({1, -1}, {2}, dt), m = make({0, 0}, {2}, dt), v = make({0, 0}, {2}, dt);
    ref.adam_update(p, make({0.1, -0.2}, {2}, dt), m, v, 0.01, 0.9, 0.999, 0.0, 0.1, 0.9, 0.999, true);
    EXPECT_TRUE(near(m, {0.01, -0.02}, {2}, tol(dt)));
    EXPECT_TRUE(near(v, {1e-5, 4e-5}, {2}, tol(dt)));
    EXPECT_TRUE(near(p, {0.9673772234, -0.9673772234}, {2}, 1e-6));
  }
}

TEST_F(ReferenceBackendTest, OptimizerKernelsRejectMismatchedState) {
  Tensor p = make({1, 2}, {2}), m = make({0, 0, 0}, {3}), v = make({0, 0}, {2});
  EXPECT_THROW(ref.sgd_update(p, make({1}, {1}), 0.1, 0), Error);
  EXPECT_THROW(ref.momentum_update(p, make({1, 1}, {2}), m, 0.1, 0.9, 0, false), Error);
  EXPECT_THROW(ref.adam_update(p, make({1, 1}, {2}, DType::kF32), v, v, 0.1, 0.9, 0.999, 1e-8, 0, 0.9, 0.999, false),
               Error);
}

}  // namespace
}  // namespace anvil
