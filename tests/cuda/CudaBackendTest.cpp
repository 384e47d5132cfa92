// CUDA backend (issue 8): conformance of CudaBackend with the reference backend (the oracle) on random
// inputs, every op forward and backward; device transfers; LeNet training steps GPU vs CPU; checkpoints
// across devices; the caching allocator; the CUDA error boundary.
//
// Tests whose name ends in _CUDA need a GPU and skip (GTEST_SKIP "no CUDA device: ...") without one.
// Tests without the suffix run everywhere (also in CPU-only builds, where they check the "built without
// the CUDA backend" errors).
//
// Tolerances (|got - want| <= rtol * (|want| + max|want|), elementwise):
//   TF32 off (default): 1e-5 for every op (kernels evaluate in double like the reference; cuBLAS
//                       accumulates in float32 with FMA math), except float32 convolutions: 1e-4, since
//                       cuDNN may choose FFT or Winograd algorithms, whose float32 error is larger.
//   TF32 on:            1e-2 (10-bit mantissa inputs), checked for matmul and conv.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "framework/autograd/Engine.h"
#include "framework/backend/Backend.h"
#include "framework/backend/reference/ReferenceBackend.h"
#include "framework/core/Context.h"
#include "framework/core/Random.h"
#include "framework/data/DataLoader.h"
#include "framework/data/InMemoryDataset.h"
#include "framework/ops/Arithmetic.h"
#include "framework/ops/Reduce.h"
#include "framework/ops/Loss.h"
#include "framework/optim/Momentum.h"
#include "models/LeNet5.h"
#include "serialization/Checkpoint.h"
#include "serialization/LoadParam.h"
#include "tests/cuda/CudaTestUtil.h"
#include "tests/testutil/TempDir.h"

#if defined(ANVIL_WITH_CUDA) && ANVIL_WITH_CUDA
#include "framework/backend/cuda/Cuda.h"
#include "framework/backend/cuda/CudaAllocator.h"
#endif

namespace anvil {
namespace {

// ---------------------------------------------------------------------------------------------
// Runs everywhere
// ---------------------------------------------------------------------------------------------

TEST(CudaContext, SetContextChoosesTheDefaultDevice) {
  EXPECT_EQ(default_device(), Device::cpu());
  EXPECT_THROW(set_context({.device_target = "TPU"}), Error);
  EXPECT_THROW(set_context({.device_target = "GPU", .device_id = -1}), Error);
  if (cuda_compiled_in()) {
    set_context({.device_target = "GPU", .device_id = 0});
    EXPECT_EQ(default_device(), Device::cuda(0));
    EXPECT_EQ(get_context().device_target, "GPU");
    set_context({.device_target = "CPU"});
  } else {
    try {
      set_context({.device_target = "GPU", .device_id = 0});
      ADD_FAILURE() << "set_context(GPU) must throw in a CPU-only build";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("built without the CUDA backend"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(default_device(), Device::cpu());
}

TEST(CudaBuild, CpuOnlyBuildRejectsCudaTensorsClearly) {
  if (cuda_compiled_in()) {
    EXPECT_TRUE(cuda_compiled_in());
    GTEST_SKIP() << "this build has the CUDA backend";
  }
  const Tensor x = Tensor::ones(Shape{2, 3});
  try {
    (void)x.to(Device::cuda(0));
    ADD_FAILURE() << "to(cuda) must throw in a CPU-only build";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Anvil was built without the CUDA backend"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)backend_for(Device::cuda(0)), Error);
}

// DataLoaderOptions::device: batches come out on the GPU (copied by the producing thread); without a
// usable GPU the copy's anvil::Error surfaces from next().
TEST(CudaLoader, BatchesAreDeliveredOnTheLoaderDevice) {
  Tensor data = Tensor::empty(Shape{10, 3});
  for (std::int64_t i = 0; i < data.numel(); ++i) data.data<float>()[i] = static_cast<float>(i);
  Tensor labels = Tensor::empty(Shape{10}, DType::kI32);
  for (std::int64_t i = 0; i < 10; ++i) labels.data<std::int32_t>()[i] = static_cast<std::int32_t>(i % 3);
  auto ds = std::make_shared<InMemoryDataset>(data, labels);
  DataLoader host(ds, {.batch_size = 4, .seed = 3, .prefetch = 0});
  DataLoader gpu(ds, {.batch_size = 4, .seed = 3, .prefetch = 2, .device = Device::cuda(0)});
  std::string reason = "this build has no CUDA backend";
#if defined(ANVIL_WITH_CUDA) && ANVIL_WITH_CUDA
  const bool have_gpu = cuda::device_count(&reason) > 0;
#else
  const bool have_gpu = false;
#endif
  host.start_epoch(0);
  gpu.start_epoch(0);
  if (!have_gpu) {
    EXPECT_THROW(gpu.next(), Error) << reason;
    return;
  }
  while (auto h = host.next()) {
    auto g = gpu.next();
    ASSERT_TRUE(g.has_value());
    EXPECT_EQ(g->data.device(), Device::cuda(0));
    EXPECT_EQ(g->label.device(), Device::cuda(0));
    EXPECT_EQ(g->data.to(Device::cpu()).to_vector<float>(), h->data.to_vector<float>());
    EXPECT_EQ(g->label.to(Device::cpu()).to_vector<std::int32_t>(), h->label.to_vector<std::int32_t>());
  }
  EXPECT_FALSE(gpu.next().has_value());
}

#if defined(ANVIL_WITH_CUDA) && ANVIL_WITH_CUDA

constexpr double kTol = 1e-5;      // TF32 off
constexpr double kTolConv = 1e-4;  // TF32 off, float32 convolutions (FFT / Winograd algorithms)
constexpr double kTolTf32 = 1e-2;  // TF32 on

Tensor uniform(const Shape& shape, Generator& gen, double lo = -1.0, double hi = 1.0, DType dtype = DType::kF32) {
  return testutil::uniform(shape, gen, lo, hi, dtype);
}
::testing::AssertionResult close(const Tensor& got, const Tensor& want, double rtol = kTol) {
  return testutil::close(got, want, rtol);
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The error boundary: a failing CUDA call becomes anvil::Error naming the call and the status text.
TEST(CudaErrorBoundary, FailingCallsBecomeErrorsNamingTheCall) {
  std::string reason;
  const int n = cuda::device_count(&reason);  // never throws
  EXPECT_GE(n, 0);
  try {
    cuda::set_device_checked(n + 1000);  // a device that does not exist, with or without a GPU
    ADD_FAILURE() << "cudaSetDevice on a missing device must throw";
  } catch (const Error& e) {
    const std::string msg = e.what();
    std::printf("[ message  ] %s\n", msg.c_str());
    EXPECT_NE(msg.find("cudaSetDevice"), std::string::npos) << msg;
    EXPECT_NE(msg.find("failed: "), std::string::npos) << msg;
  }
  if (n == 0 && reason.rfind("cudaGetDeviceCount:", 0) == 0) {
    // No driver / no device: the checked form throws naming cudaGetDeviceCount.
    try {
      (void)cuda::device_count_checked();
      ADD_FAILURE() << "cudaGetDeviceCount failed unchecked but not checked?";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cudaGetDeviceCount"), std::string::npos) << e.what();
    }
  }
  // Without a GPU, moving a tensor to the device fails with an anvil::Error too (never a crash).
  if (n == 0) {
    EXPECT_THROW((void)Tensor::ones(Shape{4}).to(Device::cuda(0)), Error);
  }
}

// Size buckets of the caching allocator (no GPU needed): requests of one bucket share cached blocks.
TEST(CudaAllocator, BucketsRoundUpSoRepeatedShapesReuseBlocks) {
  EXPECT_EQ(cuda::bucket_size(0), 512u);
  EXPECT_EQ(cuda::bucket_size(1), 512u);
  EXPECT_EQ(cuda::bucket_size(512), 512u);
  EXPECT_EQ(cuda::bucket_size(513), 1024u);
  EXPECT_EQ(cuda::bucket_size((1u << 20) - 1), 1u << 20);
  EXPECT_EQ(cuda::bucket_size((1u << 20) + 1), 2u << 20);
  for (std::size_t n : {std::size_t{3}, std::size_t{4096}, std::size_t{123457}, std::size_t{50u << 20}}) {
    EXPECT_GE(cuda::bucket_size(n), n);
    EXPECT_EQ(cuda::bucket_size(cuda::bucket_size(n)), cuda::bucket_size(n));
  }
}

// Fixture: CUDA backend + reference oracle; SetUp skips without a device.
class CudaConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    EXPECT_TRUE(cuda_compiled_in());
    std::string reason;
    if (cuda::device_count(&reason) == 0) GTEST_SKIP() << "no CUDA device: " << reason;
    cuda::set_cuda_options({});
  }
  void TearDown() override {
    if (cuda::device_count() > 0) cuda::set_cuda_options({});
  }
  Backend& gpu() { return backend_for(Device::cuda(0)); }
  Tensor dev(const Tensor& t) { return t.to(Device::cuda(0)); }
  ReferenceBackend ref;
  Generator gen{20261123};
};

#define ANVIL_EXPECT_CUDA_BACKEND() EXPECT_EQ(gpu().name(), "cuda")

TEST_F(CudaConformance, BackendForCudaDevice_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  EXPECT_EQ(gpu().device(), Device::cuda(0));
  EXPECT_EQ(&gpu(), &cuda::cuda_backend(0));
}

TEST_F(CudaConformance, TransfersRoundTripBitExactly_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  const Tensor f = uniform(Shape{3, 5, 7}, gen);
  const Tensor d = uniform(Shape{129}, gen, -1, 1, DType::kF64);
  const Tensor i = Tensor::from_vector(std::vector<std::int64_t>{1, -2, 3, 1LL << 40}, Shape{4});
  for (const Tensor& t : {f, d, i}) {
    const Tensor g = t.to(Device::cuda(0));
    EXPECT_EQ(g.device(), Device::cuda(0));
    EXPECT_EQ(g.shape(), t.shape());
    const Tensor back = g.to(Device::cpu());
    ASSERT_EQ(back.nbytes(), t.nbytes());
    EXPECT_EQ(std::memcmp(back.data_ptr(), t.data_ptr(), t.nbytes()), 0) << t.desc();
    EXPECT_EQ(g.clone().to(Device::cpu()).to_vector<double>(), t.to_vector<double>());
  }
  EXPECT_EQ(Tensor::scalar(2.5).to(Device::cuda(0)).item(), 2.5);
  Tensor z = Tensor::zeros(Shape{10}).to(Device::cuda(0));
  z.fill_(3.0);
  EXPECT_EQ(z.to_vector<float>(), std::vector<float>(10, 3.0f));
  z.copy_from(Tensor::ones(Shape{10}));
  EXPECT_EQ(z.to_vector<float>(), std::vector<float>(10, 1.0f));
}

TEST_F(CudaConformance, MatmulAllTransposesAndBatches_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  struct Case {
    std::vector<std::int64_t> batch;
    std::int64_t m, k, n;
  };
  for (const Case& c : {Case{{}, 7, 5, 3}, Case{{}, 1, 9, 1}, Case{{2}, 3, 4, 5}, Case{{2, 3}, 7, 5, 4},
                        Case{{}, 64, 400, 120}}) {
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        std::vector<std::int64_t> ad = c.batch, bd = c.batch;
        ad.push_back(ta ? c.k : c.m);
        ad.push_back(ta ? c.m : c.k);
        bd.push_back(tb ? c.n : c.k);
        bd.push_back(tb ? c.k : c.n);
        const Tensor a = uniform(Shape(ad), gen), b = uniform(Shape(bd), gen);
        SCOPED_TRACE(a.desc() + " x " + b.desc() + (ta ? " ta" : "") + (tb ? " tb" : ""));
        EXPECT_TRUE(close(gpu().matmul(dev(a), dev(b), ta, tb), ref.matmul(a, b, ta, tb)));
      }
  }
  const Tensor a = uniform(Shape{5, 6}, gen, -1, 1, DType::kF64), b = uniform(Shape{6, 4}, gen, -1, 1, DType::kF64);
  EXPECT_TRUE(close(gpu().matmul(dev(a), dev(b), false, false), ref.matmul(a, b, false, false), 1e-12));
}

TEST_F(CudaConformance, LinearForwardAndBackward_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  for (auto [n, in, out] : {std::array<std::int64_t, 3>{1, 1, 1}, {64, 400, 120}, {7, 13, 5}}) {
    const Tensor x = uniform(Shape{n, in}, gen), w = uniform(Shape{out, in}, gen), b = uniform(Shape{out}, gen);
    const Tensor dy = uniform(Shape{n, out}, gen);
    SCOPED_TRACE(x.desc() + " " + w.desc());
    EXPECT_TRUE(close(gpu().linear_forward(dev(x), dev(w), dev(b)), ref.linear_forward(x, w, b)));
    EXPECT_TRUE(close(gpu().linear_forward(dev(x), dev(w), Tensor()), ref.linear_forward(x, w, Tensor())));
    EXPECT_TRUE(close(gpu().linear_backward_data(dev(dy), dev(w)), ref.linear_backward_data(dy, w)));
    const WeightGrads g = gpu().linear_backward_weights(dev(dy), dev(x), true);
    const WeightGrads r = ref.linear_backward_weights(dy, x, true);
    EXPECT_TRUE(close(g.dw, r.dw));
    EXPECT_TRUE(close(g.db, r.db));
  }
}

std::vector<std::pair<Shape, std::pair<Shape, Conv2dParams>>> conv_cases() {
  return {
      {Shape{2, 1, 32, 32}, {Shape{6, 1, 5, 5}, Conv2dParams{}}},
      {Shape{3, 6, 14, 14}, {Shape{16, 6, 5, 5}, Conv2dParams{}}},
      {Shape{2, 4, 9, 11}, {Shape{8, 4, 3, 3}, Conv2dParams{.stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_bottom = 1,
                                                             .pad_left = 1, .pad_right = 1}}},
      {Shape{1, 4, 10, 10}, {Shape{4, 2, 3, 3}, Conv2dParams{.pad_top = 2, .pad_bottom = 2, .pad_left = 2,
                                                             .pad_right = 2, .dilation_h = 2, .dilation_w = 2,
                                                             .groups = 2}}},
      {Shape{2, 8, 7, 7}, {Shape{16, 8, 1, 1}, Conv2dParams{}}},
      // asymmetric padding: explicit zero padding + unpadded cuDNN convolution
      {Shape{1, 2, 6, 6}, {Shape{3, 2, 3, 3}, Conv2dParams{.pad_top = 0, .pad_bottom = 1, .pad_left = 1,
                                                           .pad_right = 0}}},
  };
}

TEST_F(CudaConformance, Conv2dForwardAndBackward_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  for (const auto& [xs, wp] : conv_cases()) {
    const auto& [ws, p] = wp;
    const Tensor x = uniform(xs, gen), w = uniform(ws, gen), b = uniform(Shape{ws[0]}, gen);
    const Tensor y = ref.conv2d_forward(x, w, b, p);
    const Tensor dy = uniform(y.shape(), gen);
    SCOPED_TRACE(x.desc() + " " + w.desc());
    EXPECT_TRUE(close(gpu().conv2d_forward(dev(x), dev(w), dev(b), p), y, kTolConv));
    EXPECT_TRUE(close(gpu().conv2d_forward(dev(x), dev(w), Tensor(), p), ref.conv2d_forward(x, w, Tensor(), p),
                      kTolConv));
    EXPECT_TRUE(close(gpu().conv2d_backward_data(dev(dy), dev(w), xs, p), ref.conv2d_backward_data(dy, w, xs, p),
                      kTolConv));
    const WeightGrads g = gpu().conv2d_backward_weights(dev(dy), dev(x), ws, true, p);
    const WeightGrads r = ref.conv2d_backward_weights(dy, x, ws, true, p);
    EXPECT_TRUE(close(g.dw, r.dw, kTolConv));
    EXPECT_TRUE(close(g.db, r.db));
  }
}

TEST_F(CudaConformance, Conv2dFloat64_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  const Tensor x = uniform(Shape{2, 3, 8, 8}, gen, -1, 1, DType::kF64);
  const Tensor w = uniform(Shape{4, 3, 3, 3}, gen, -1, 1, DType::kF64);
  const Conv2dParams p{.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
  EXPECT_TRUE(close(gpu().conv2d_forward(dev(x), dev(w), Tensor(), p), ref.conv2d_forward(x, w, Tensor(), p), 1e-12));
}

TEST_F(CudaConformance, Tf32OptionStaysWithinItsTolerance_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  cuda::set_cuda_options({.allow_tf32 = true});
  const Tensor a = uniform(Shape{64, 256}, gen), b = uniform(Shape{256, 96}, gen);
  EXPECT_TRUE(close(gpu().matmul(dev(a), dev(b), false, false), ref.matmul(a, b, false, false), kTolTf32));
  const Tensor x = uniform(Shape{4, 16, 12, 12}, gen), w = uniform(Shape{32, 16, 3, 3}, gen);
  EXPECT_TRUE(close(gpu().conv2d_forward(dev(x), dev(w), Tensor(), {}), ref.conv2d_forward(x, w, Tensor(), {}),
                    kTolTf32));
}

TEST_F(CudaConformance, DeterministicConvolutionIsBitwiseRepeatable_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  cuda::set_cuda_options({.deterministic = true});
  const Tensor x = uniform(Shape{8, 16, 16, 16}, gen), w = uniform(Shape{32, 16, 3, 3}, gen);
  const Conv2dParams p{.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
  const Tensor y = gpu().conv2d_forward(dev(x), dev(w), Tensor(), p);
  const Tensor dy = uniform(y.shape(), gen);
  const Tensor dw1 = gpu().conv2d_backward_weights(dev(dy), dev(x), w.shape(), false, p).dw;
  const Tensor dw2 = gpu().conv2d_backward_weights(dev(dy), dev(x), w.shape(), false, p).dw;
  EXPECT_EQ(dw1.to_vector<float>(), dw2.to_vector<float>());
  EXPECT_TRUE(close(dw1, ref.conv2d_backward_weights(dy, x, w.shape(), false, p).dw, kTolConv));
}

TEST_F(CudaConformance, Pool2dForwardAndBackward_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  const std::vector<Pool2dParams> params = {
      {.kind = PoolKind::kMax},
      {.kind = PoolKind::kAvg},
      {.kind = PoolKind::kMax, .kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_top = 1,
       .pad_bottom = 1, .pad_left = 1, .pad_right = 1},
      {.kind = PoolKind::kAvg, .kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 1, .pad_top = 1,
       .pad_bottom = 0, .pad_left = 0, .pad_right = 1, .count_include_pad = true},
      {.kind = PoolKind::kAvg, .kernel_h = 3, .kernel_w = 2, .stride_h = 2, .stride_w = 1, .pad_top = 1,
       .pad_bottom = 1, .pad_left = 1, .pad_right = 0},
  };
  for (const Pool2dParams& p : params) {
    const Tensor x = uniform(Shape{2, 3, 9, 8}, gen);
    const PoolResult r = ref.pool2d_forward(x, p);
    const PoolResult g = gpu().pool2d_forward(dev(x), p);
    EXPECT_TRUE(close(g.y, r.y));
    if (p.kind == PoolKind::kMax) {
      EXPECT_EQ(g.workspace.to_vector<std::int64_t>(), r.workspace.to_vector<std::int64_t>());
    }
    const Tensor dy = uniform(r.y.shape(), gen);
    EXPECT_TRUE(close(gpu().pool2d_backward(dev(dy), dev(x), g, p), ref.pool2d_backward(dy, x, r, p)));
  }
  // Ties: the first maximum (row-major) wins, as in the reference.
  const Tensor t = Tensor::ones(Shape{1, 1, 4, 4});
  const Pool2dParams mp{.kind = PoolKind::kMax};
  EXPECT_EQ(gpu().pool2d_forward(dev(t), mp).workspace.to_vector<std::int64_t>(),
            ref.pool2d_forward(t, mp).workspace.to_vector<std::int64_t>());
}

TEST_F(CudaConformance, EltwiseEveryKindForwardAndBackward_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  const std::vector<std::pair<EltwiseKind, double>> kinds = {
      {EltwiseKind::kRelu, 0.0}, {EltwiseKind::kRelu, 0.1}, {EltwiseKind::kSigmoid, 0}, {EltwiseKind::kTanh, 0},
      {EltwiseKind::kGelu, 0},   {EltwiseKind::kExp, 0},    {EltwiseKind::kLog, 0},     {EltwiseKind::kSqrt, 0},
      {EltwiseKind::kSquare, 0}, {EltwiseKind::kAbs, 0},    {EltwiseKind::kLinear, 0.7}};
  for (const auto& [kind, alpha] : kinds) {
    const bool positive = kind == EltwiseKind::kLog || kind == EltwiseKind::kSqrt;
    const Tensor x = uniform(Shape{3, 257}, gen, positive ? 0.1 : -3.0, 3.0);
    const Tensor dy = uniform(x.shape(), gen);
    SCOPED_TRACE(static_cast<int>(kind));
    const Tensor y = ref.eltwise_forward(kind, x, alpha, 0.2);
    EXPECT_TRUE(close(gpu().eltwise_forward(kind, dev(x), alpha, 0.2), y));
    EXPECT_TRUE(close(gpu().eltwise_backward(kind, dev(dy), dev(x), dev(y), alpha, 0.2),
                      ref.eltwise_backward(kind, dy, x, y, alpha, 0.2)));
    EXPECT_TRUE(close(gpu().eltwise_backward(kind, dev(dy), dev(x), Tensor(), alpha, 0.2),
                      ref.eltwise_backward(kind, dy, x, Tensor(), alpha, 0.2)));
  }
}

TEST_F(CudaConformance, BinaryWithBroadcasting_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {Shape{4, 5}, Shape{4, 5}}, {Shape{4, 5}, Shape{5}}, {Shape{2, 1, 5}, Shape{3, 1}}, {Shape{}, Shape{3, 2}},
      {Shape{2, 3, 4, 5}, Shape{1, 3, 1, 1}}};
  for (const auto& [as, bs] : shapes)
    for (BinaryKind k : {BinaryKind::kAdd, BinaryKind::kSub, BinaryKind::kMul, BinaryKind::kDiv, BinaryKind::kMax,
                         BinaryKind::kMin}) {
      const Tensor a = uniform(as, gen), b = uniform(bs, gen, 0.5, 2.0);
      SCOPED_TRACE(a.desc() + " op " + b.desc());
      EXPECT_TRUE(close(gpu().binary(k, dev(a), dev(b)), ref.binary(k, a, b)));
    }
  // NaN propagates through max/min.
  const Tensor n = Tensor::full(Shape{2}, std::nan(""));
  EXPECT_TRUE(std::isnan(gpu().binary(BinaryKind::kMax, dev(n), dev(Tensor::ones(Shape{2}))).to_vector<float>()[0]));
}

TEST_F(CudaConformance, ReduceEveryKind_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  const Tensor x = uniform(Shape{4, 5, 6}, gen);
  for (ReduceKind k : {ReduceKind::kSum, ReduceKind::kMean, ReduceKind::kMax, ReduceKind::kMin})
    for (const Shape& out : {Shape{1, 1, 1}, Shape{4, 1, 1}, Shape{1, 5, 1}, Shape{1, 1, 6}, Shape{4, 5, 1},
                             Shape{4, 1, 6}, Shape{4, 5, 6}}) {
      SCOPED_TRACE(out.str());
      EXPECT_TRUE(close(gpu().reduce(k, dev(x), out), ref.reduce(k, x, out)));
    }
  const Tensor big = uniform(Shape{100000}, gen);
  EXPECT_TRUE(close(gpu().reduce(ReduceKind::kSum, dev(big), Shape{1}), ref.reduce(ReduceKind::kSum, big, Shape{1})));
}

TEST_F(CudaConformance, SoftmaxAndLogSoftmaxOnEveryAxis_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  const Tensor x = uniform(Shape{3, 4, 5}, gen, -4, 4);
  for (std::int64_t axis = 0; axis < 3; ++axis)
    for (bool log : {false, true}) {
      SCOPED_TRACE(fmt::format("axis {} log {}", axis, log));
      const Tensor y = ref.softmax_forward(x, axis, log);
      EXPECT_TRUE(close(gpu().softmax_forward(dev(x), axis, log), y));
      const Tensor dy = uniform(x.shape(), gen);
      EXPECT_TRUE(close(gpu().softmax_backward(dev(dy), dev(y), axis, log), ref.softmax_backward(dy, y, axis, log)));
    }
}

TEST_F(CudaConformance, BatchNormTrainingInferenceAndBackward_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  for (const Shape& s : {Shape{4, 3, 5, 6}, Shape{16, 7}}) {
    const Tensor x = uniform(s, gen, -2, 3), gamma = uniform(Shape{s[1]}, gen), beta = uniform(Shape{s[1]}, gen);
    const double eps = 1e-5;
    const BatchNormTrainResult r = ref.batch_norm_forward_training(x, gamma, beta, eps);
    const BatchNormTrainResult g = gpu().batch_norm_forward_training(dev(x), dev(gamma), dev(beta), eps);
    EXPECT_TRUE(close(g.y, r.y));
    EXPECT_TRUE(close(g.mean, r.mean));
    EXPECT_TRUE(close(g.var, r.var));
    EXPECT_TRUE(close(gpu().batch_norm_forward_inference(dev(x), dev(gamma), dev(beta), dev(r.mean), dev(r.var), eps),
                      ref.batch_norm_forward_inference(x, gamma, beta, r.mean, r.var, eps)));
    const Tensor dy = uniform(s, gen);
    const BatchNormGrads gg = gpu().batch_norm_backward(dev(dy), dev(x), dev(gamma), dev(r.mean), dev(r.var), eps);
    const BatchNormGrads rg = ref.batch_norm_backward(dy, x, gamma, r.mean, r.var, eps);
    EXPECT_TRUE(close(gg.dx, rg.dx));
    EXPECT_TRUE(close(gg.dgamma, rg.dgamma));
    EXPECT_TRUE(close(gg.dbeta, rg.dbeta));
  }
}

TEST_F(CudaConformance, LayerNormForwardAndBackward_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  for (const auto& [xs, gs] : {std::pair{Shape{4, 3, 10}, Shape{10}}, std::pair{Shape{6, 2, 3}, Shape{2, 3}},
                               std::pair{Shape{1, 1500}, Shape{1500}}}) {
    const Tensor x = uniform(xs, gen, -2, 3), gamma = uniform(gs, gen), beta = uniform(gs, gen), dy = uniform(xs, gen);
    const double eps = 1e-7;
    SCOPED_TRACE(x.desc());
    const LayerNormResult r = ref.layer_norm_forward(x, gamma, beta, eps);
    const LayerNormResult g = gpu().layer_norm_forward(dev(x), dev(gamma), dev(beta), eps);
    EXPECT_TRUE(close(g.y, r.y));
    EXPECT_TRUE(close(g.mean, r.mean));
    EXPECT_TRUE(close(g.var, r.var));
    const LayerNormGrads gg = gpu().layer_norm_backward(dev(dy), dev(x), dev(gamma), dev(r.mean), dev(r.var), eps);
    const LayerNormGrads rg = ref.layer_norm_backward(dy, x, gamma, r.mean, r.var, eps);
    EXPECT_TRUE(close(gg.dx, rg.dx));
    EXPECT_TRUE(close(gg.dgamma, rg.dgamma));
    EXPECT_TRUE(close(gg.dbeta, rg.dbeta));
  }
}

TEST_F(CudaConformance, EmbeddingGatherAndDeterministicScatterAdd_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  const Tensor table = uniform(Shape{7, 5}, gen);
  const Tensor i32 = Tensor::from_vector(std::vector<std::int32_t>{3, 0, 3, 6, 3, 1}, Shape{2, 3});
  const Tensor i64 = Tensor::from_vector(std::vector<std::int64_t>{3, 0, 3, 6, 3, 1}, Shape{2, 3});
  const Tensor dy = uniform(Shape{2, 3, 5}, gen);
  for (const Tensor& idx : {i32, i64}) {
    SCOPED_TRACE(idx.desc());
    EXPECT_TRUE(close(gpu().embedding_forward(dev(table), idx), ref.embedding_forward(table, idx), 0.0));
    for (std::int64_t pad : {-1, 3, 2}) {  // repeated row 3 summed (or skipped as padding)
      const Tensor g = gpu().embedding_backward(dev(dy), dev(idx), table.shape(), pad);
      EXPECT_TRUE(close(g, ref.embedding_backward(dy, idx, table.shape(), pad)));
      EXPECT_TRUE(close(g, gpu().embedding_backward(dev(dy), dev(idx), table.shape(), pad), 0.0));  // repeatable
    }
  }
  const Tensor bad = Tensor::from_vector(std::vector<std::int64_t>{1, 7}, Shape{2});
  try {
    gpu().embedding_forward(dev(table), bad);
    ADD_FAILURE() << "index 7 of a 7-row table accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("index 7 at position 1"), std::string::npos) << e.what();
  }
}

TEST_F(CudaConformance, LossAndOptimizerKernels_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  const Tensor logits = uniform(Shape{8, 10}, gen, -5, 5);
  for (DType lt : {DType::kI32, DType::kI64}) {
    const Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{0, 9, 3, 3, 1, 7, 2, 5}, Shape{8}).to(lt);
    const SoftmaxCrossEntropyResult r = ref.softmax_cross_entropy_forward(logits, labels);
    const SoftmaxCrossEntropyResult g = gpu().softmax_cross_entropy_forward(dev(logits), dev(labels));
    EXPECT_TRUE(close(g.loss, r.loss));
    EXPECT_TRUE(close(g.prob, r.prob));
    const Tensor dl = uniform(Shape{8}, gen);
    EXPECT_TRUE(close(gpu().softmax_cross_entropy_backward(dev(dl), dev(r.prob), dev(labels)),
                      ref.softmax_cross_entropy_backward(dl, r.prob, labels)));
  }
  const Tensor bad = Tensor::from_vector(std::vector<std::int32_t>{0, 1, 10, 2, 3, 4, 5, 6}, Shape{8});
  try {
    (void)gpu().softmax_cross_entropy_forward(dev(logits), dev(bad));
    ADD_FAILURE() << "label 10 of 10 classes must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label at index 2 is 10"), std::string::npos) << e.what();
  }

  const Shape s{33, 7};
  const Tensor p0 = uniform(s, gen), g0 = uniform(s, gen), m0 = uniform(s, gen, 0, 1), v0 = uniform(s, gen, 0, 1);
  {  // axpy_
    Tensor a = p0.clone(), b = dev(p0);
    ref.axpy_(a, g0, 0.3);
    gpu().axpy_(b, dev(g0), 0.3);
    EXPECT_TRUE(close(b, a));
  }
  {  // SGD
    Tensor a = p0.clone(), b = dev(p0);
    ref.sgd_update(a, g0, 0.1, 0.01);
    gpu().sgd_update(b, dev(g0), 0.1, 0.01);
    EXPECT_TRUE(close(b, a));
  }
  for (bool nesterov : {false, true}) {  // Momentum; moments start on the host and move to the device
    Tensor a = p0.clone(), am = m0.clone(), b = dev(p0), bm = m0.clone();
    for (int i = 0; i < 3; ++i) {
      ref.momentum_update(a, g0, am, 0.1, 0.9, 0.01, nesterov);
      gpu().momentum_update(b, dev(g0), bm, 0.1, 0.9, 0.01, nesterov);
    }
    EXPECT_EQ(bm.device(), Device::cuda(0));
    EXPECT_TRUE(close(b, a));
    EXPECT_TRUE(close(bm, am));
  }
  for (bool decoupled : {false, true}) {  // Adam / AdamWeightDecay
    Tensor a = p0.clone(), am = m0.clone(), av = v0.clone();
    Tensor b = dev(p0), bm = dev(m0), bv = dev(v0);
    double b1p = 1, b2p = 1;
    for (int i = 0; i < 3; ++i) {
      b1p *= 0.9;
      b2p *= 0.999;
      ref.adam_update(a, g0, am, av, 1e-3, 0.9, 0.999, 1e-8, 0.01, b1p, b2p, decoupled);
      gpu().adam_update(b, dev(g0), bm, bv, 1e-3, 0.9, 0.999, 1e-8, 0.01, b1p, b2p, decoupled);
    }
    EXPECT_TRUE(close(b, a));
    EXPECT_TRUE(close(bm, am));
    EXPECT_TRUE(close(bv, av));
  }
}

TEST_F(CudaConformance, ErrorsNameTheOpAndTheForeignDevice_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  const Tensor w = uniform(Shape{3, 2, 3, 3}, gen);
  EXPECT_THROW((void)gpu().conv2d_forward(dev(uniform(Shape{1, 4, 5, 5}, gen)), dev(w), Tensor(), {}), Error);
  Tensor host_param = uniform(Shape{4}, gen);
  EXPECT_THROW(gpu().sgd_update(host_param, dev(uniform(Shape{4}, gen)), 0.1, 0.0), Error);
}

// ---------------------------------------------------------------------------------------------
// Networks: LeNet training on GPU vs CPU, allocator reuse, checkpoints across devices
// ---------------------------------------------------------------------------------------------

struct Batch {
  Tensor x, y;
};

std::vector<Batch> batches(int count, std::int64_t n, Generator& gen) {
  std::vector<Batch> out;
  for (int i = 0; i < count; ++i) {
    std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
    for (auto& l : labels) l = static_cast<std::int32_t>(gen.uniform() * 10) % 10;
    out.push_back({uniform(Shape{n, 1, 32, 32}, gen), Tensor::from_vector(labels, Shape{n})});
  }
  return out;
}

// One training step (forward, loss, backward, Momentum step, zero_grad); returns the loss value.
double train_step(nn::Cell& net, Momentum& opt, const Batch& b, const Device& device) {
  const Tensor logits = net(b.x.to(device));
  const Tensor loss = ops::softmax_cross_entropy(logits, b.y.to(device));
  backward(loss);
  opt.step();
  opt.zero_grad();
  return loss.item();
}

// ops::binary max/min backward on device tensors (the gradient split runs on host copies).
TEST_F(CudaConformance, MaxMinBackwardOnDeviceTensors_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  for (BinaryKind kind : {BinaryKind::kMax, BinaryKind::kMin}) {
    const Tensor a = uniform(Shape{3, 4}, gen), b = uniform(Shape{4}, gen);
    Tensor ah = a.clone(), bh = b.clone(), ad = dev(a), bd = dev(b);
    for (Tensor* t : {&ah, &bh, &ad, &bd}) t->set_requires_grad(true);
    {
      BackendScope scope(ref);
      autograd::backward(ops::sum(ops::binary(kind, ah, bh)));
    }
    autograd::backward(ops::sum(ops::binary(kind, ad, bd)));
    EXPECT_TRUE(close(ad.grad(), ah.grad(), 0.0));
    EXPECT_TRUE(close(bd.grad(), bh.grad(), 0.0));
  }
}

TEST_F(CudaConformance, LeNetTrainStepsMatchTheCpu_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  Generator g1(7), g2(7);
  models::LeNet5 cpu_net(10, 1, &g1), gpu_net(10, 1, &g2);
  gpu_net.to(Device::cuda(0));
  for (const auto& [n, t] : gpu_net.state_dict()) EXPECT_EQ(t.device(), Device::cuda(0)) << n;
  Momentum cpu_opt(cpu_net.trainable_params(), 0.01, 0.9), gpu_opt(gpu_net.trainable_params(), 0.01, 0.9);
  const std::vector<Batch> data = batches(6, 32, gen);
  BackendScope scope(ref);  // the CPU side runs on the oracle
  for (const Batch& b : data) {
    const double lc = train_step(cpu_net, cpu_opt, b, Device::cpu());
    const double lg = train_step(gpu_net, gpu_opt, b, Device::cuda(0));
    EXPECT_NEAR(lg, lc, 1e-4 * std::max(1.0, std::abs(lc)));
  }
  const NamedTensors pc = cpu_net.state_dict(), pg = gpu_net.state_dict();
  ASSERT_EQ(pc.size(), pg.size());
  for (std::size_t i = 0; i < pc.size(); ++i) {
    SCOPED_TRACE(pc[i].first);
    EXPECT_TRUE(close(pg[i].second, pc[i].second, 1e-4));
  }
}

TEST_F(CudaConformance, SecondStepAllocatesNothingAndChoosesNoNewAlgorithm_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  Generator g(11);
  models::LeNet5 net(10, 1, &g);
  net.to(Device::cuda(0));
  Momentum opt(net.trainable_params(), 0.01, 0.9);
  const std::vector<Batch> data = batches(4, 64, gen);
  // Warm-up: the first step allocates and chooses algorithms; the second may still add blocks for
  // buffers whose lifetimes overlap differently once the optimizer state exists.
  (void)train_step(net, opt, data[0], Device::cuda(0));
  (void)train_step(net, opt, data[1], Device::cuda(0));
  const std::size_t algos = cuda::conv_algorithm_cache_size(0);
  EXPECT_GT(algos, 0u);
  cuda::reset_memory_stats();
  (void)train_step(net, opt, data[2], Device::cuda(0));
  (void)train_step(net, opt, data[3], Device::cuda(0));
  const cuda::CudaMemoryStats st = cuda::memory_stats();
  EXPECT_EQ(st.cuda_malloc_calls, 0u) << "cache hits " << st.cache_hits;
  EXPECT_GT(st.cache_hits, 0u);
  EXPECT_EQ(cuda::conv_algorithm_cache_size(0), algos);
}

// save_checkpoint reads host memory: a GPU network is saved through host copies of its state.
NamedTensors host_state(const nn::Cell& net) {
  NamedTensors out;
  for (const auto& [n, t] : net.state_dict()) out.emplace_back(n, t.to(Device::cpu()));
  return out;
}

TEST_F(CudaConformance, CheckpointsMoveBetweenGpuAndCpuBitExactly_CUDA) {
  ANVIL_EXPECT_CUDA_BACKEND();
  testutil::TempDir dir;
  Generator g(5);
  models::LeNet5 net(10, 1, &g);
  net.to(Device::cuda(0));
  Momentum opt(net.trainable_params(), 0.01, 0.9);
  for (const Batch& b : batches(2, 16, gen)) (void)train_step(net, opt, b, Device::cuda(0));
  const std::string from_gpu = dir.file("gpu.ckpt"), from_cpu = dir.file("cpu.ckpt"), again = dir.file("gpu2.ckpt");
  save_checkpoint(host_state(net), from_gpu);

  // GPU -> CPU: the CPU network loads it and saves identical bytes.
  Generator g2(99);
  models::LeNet5 cpu_net(10, 1, &g2);
  load_param_into_net(cpu_net, load_checkpoint(from_gpu));
  save_checkpoint(cpu_net, from_cpu);
  EXPECT_EQ(file_bytes(from_gpu), file_bytes(from_cpu));

  // CPU -> GPU: a network loaded on the CPU and moved to the GPU holds the same bytes.
  Generator g3(123);
  models::LeNet5 back(10, 1, &g3);
  load_param_into_net(back, load_checkpoint(from_cpu));
  back.to(Device::cuda(0));
  save_checkpoint(host_state(back), again);
  EXPECT_EQ(file_bytes(from_cpu), file_bytes(again));
  EXPECT_FALSE(file_bytes(again).empty());
}

#endif  // ANVIL_WITH_CUDA

}  // namespace
}  // namespace anvil
