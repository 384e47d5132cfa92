// Host code meeting tensors in GPU memory (issue 8): every framework path that used to read or write a
// tensor's memory from the host either works on device tensors (through host copies or the device's
// backend) or rejects them with an anvil::Error — never a host dereference of a device address.
//
// Tests whose name ends in _CUDA need a GPU and skip (GTEST_SKIP "no CUDA device: ...") without one.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "framework/autograd/Engine.h"
#include "framework/backend/Backend.h"
#include "framework/core/Context.h"
#include "framework/core/Random.h"
#include "framework/ops/Loss.h"
#include "framework/optim/ClipGrad.h"
#include "framework/optim/Momentum.h"
#include "models/LeNet5.h"
#include "serialization/Checkpoint.h"
#include "serialization/LoadParam.h"
#include "serialization/oneflow/VarDir.h"
#include "serialization/onnx/Export.h"
#include "tests/testutil/Errors.h"
#include "tests/testutil/TempDir.h"

#if defined(ANVIL_WITH_CUDA) && ANVIL_WITH_CUDA
#include <thread>

#include "framework/backend/cuda/Cuda.h"
#include "framework/backend/cuda/CudaAllocator.h"
#endif

namespace anvil {
namespace {

using testutil::error_of;
using testutil::has;

// Runs everywhere: ops pick the CPU backend when every input is in host memory.
TEST(DevicePaths, HostInputsPickTheCpuBackend) {
  const Tensor a = Tensor::zeros(Shape{2}), b = Tensor::zeros(Shape{2});
  EXPECT_EQ(&backend_for_inputs({&a, &b}), &backend_for(Device::cpu()));
  const Tensor undefined;
  EXPECT_EQ(&backend_for_inputs({&undefined, &a}), &backend_for(Device::cpu()));
}

#if defined(ANVIL_WITH_CUDA) && ANVIL_WITH_CUDA

class CudaDevicePaths : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string reason;
    if (cuda::device_count(&reason) == 0) GTEST_SKIP() << "no CUDA device: " << reason;
  }
  Tensor uniform(const Shape& s, DType dt = DType::kF32) {
    std::vector<double> v(static_cast<std::size_t>(s.numel()));
    for (double& x : v) x = gen.uniform(-1.0, 1.0);
    return Tensor::from_vector(v, s).to(dt);
  }
  const Device gpu = Device::cuda(0);
  Generator gen{8};
};

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

TEST_F(CudaDevicePaths, HostAccessToDeviceMemoryThrows_CUDA) {
  const Tensor d = Tensor::zeros(Shape{3}).to(gpu);
  const std::string e = error_of([&] { (void)d.data<float>(); });
  EXPECT_TRUE(has(e, "GPU:0")) << e;
  EXPECT_EQ(d.to_vector<float>(), std::vector<float>(3, 0.0f));  // the host-copy accessors still work
  // The oneDNN backend never receives device memory: a device tensor handed to it is an error.
  const Tensor h = Tensor::zeros(Shape{2, 3});
  EXPECT_THROW((void)onednn_backend().binary(BinaryKind::kAdd, d.view(Shape{1, 3}), h), Error);
}

// A block freed by one thread (its stream) and reused by another waits for the first stream's work.
TEST_F(CudaDevicePaths, CrossThreadReuseOfACachedBlockWaitsForTheFreeingStream_CUDA) {
  cuda::empty_cache();
  const std::size_t n = (std::size_t{3} << 20) / sizeof(float);  // a 3 MiB bucket no other test uses
  const std::vector<float> ones(n, 1.0f);
  {
    Tensor t = Tensor::from_vector(ones, Shape{static_cast<std::int64_t>(n)}).to(gpu);
    EXPECT_EQ(t.device(), gpu);
  }  // freed by this thread, with this thread's stream
  cuda::reset_allocator_stats();
  std::vector<float> seen;
  std::thread other([&] {
    const std::vector<float> twos(n, 2.0f);
    const Tensor u = Tensor::from_vector(twos, Shape{static_cast<std::int64_t>(n)}).to(gpu);
    seen = u.to_vector<float>();
  });
  other.join();
  const cuda::AllocatorStats st = cuda::allocator_stats();
  EXPECT_EQ(st.cuda_malloc_calls, 0u);
  EXPECT_EQ(st.cross_stream_waits, 1u);
  ASSERT_EQ(seen.size(), n);
  EXPECT_EQ(seen.front(), 2.0f);
  EXPECT_EQ(seen.back(), 2.0f);
}

TEST_F(CudaDevicePaths, HostBatchRunsOnTheNetworksGpu_CUDA) {
  Generator g(3);
  models::LeNet5 net(10, 1, &g);
  net.to(gpu);
  const Tensor x = uniform(Shape{4, 1, 32, 32});  // host batch
  const Tensor labels = Tensor::from_vector(std::vector<std::int32_t>{1, 2, 3, 4}, Shape{4});
  const Tensor logits = net(x);
  EXPECT_EQ(logits.device(), gpu);
  const Tensor loss = ops::softmax_cross_entropy(logits, labels);
  EXPECT_EQ(loss.device(), gpu);
  EXPECT_TRUE(std::isfinite(loss.item()));
}

TEST_F(CudaDevicePaths, GradientUtilitiesOnDeviceMatchTheHost_CUDA) {
  auto make = [&](const Device& d) {
    NamedTensors params;
    Generator g(5);
    for (int i = 0; i < 3; ++i) {
      std::vector<double> v(17 + 5 * static_cast<std::size_t>(i));
      for (double& x : v) x = g.uniform(-3.0, 3.0);
      Tensor p = Tensor::zeros(Shape{static_cast<std::int64_t>(v.size())}).to(d);
      p.set_requires_grad(true);
      p.set_grad(Tensor::from_vector(v, p.shape()).to(DType::kF32).to(d));
      std::string name = "p";
      name += std::to_string(i);
      params.emplace_back(name, p);
    }
    return params;
  };
  NamedTensors host = make(Device::cpu()), dev = make(gpu);
  EXPECT_NEAR(grad_global_norm(dev), grad_global_norm(host), 1e-5 * grad_global_norm(host));
  EXPECT_TRUE(grads_all_finite(dev));
  scale_grads(host, 0.25);
  scale_grads(dev, 0.25);
  clip_grad_value(host, 0.5);
  clip_grad_value(dev, 0.5);
  EXPECT_NEAR(clip_grad_norm(dev, 0.1), clip_grad_norm(host, 0.1), 1e-5);
  for (std::size_t i = 0; i < host.size(); ++i) {
    EXPECT_EQ(dev[i].second.grad().device(), gpu);
    const auto a = dev[i].second.grad().to_vector<float>(), b = host[i].second.grad().to_vector<float>();
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t k = 0; k < a.size(); ++k) EXPECT_NEAR(a[k], b[k], 1e-6) << dev[i].first << "[" << k << "]";
  }
  // Scaled in place: a handle taken before sees the new values.
  const Tensor held = dev[0].second.grad();
  scale_grads(dev, 2.0);
  scale_grads(host, 2.0);
  EXPECT_EQ(held.to_vector<float>(), dev[0].second.grad().to_vector<float>());
  // Float32 squares of 1e20 overflow; the norm must still be the host's (no skipped clipping).
  for (auto* ps : {&host, &dev})
    (*ps)[2].second.set_grad(Tensor::full((*ps)[2].second.shape(), 1e20, DType::kF32).to((*ps)[2].second.device()));
  const double big = grad_global_norm(host);
  EXPECT_TRUE(std::isfinite(big));
  EXPECT_NEAR(grad_global_norm(dev), big, 1e-5 * big);
  dev[1].second.set_grad(Tensor::full(dev[1].second.shape(), INFINITY, DType::kF32).to(gpu));
  EXPECT_FALSE(grads_all_finite(dev));
}

TEST_F(CudaDevicePaths, CheckpointsLoadIntoANetworkAndOptimizerOnTheGpu_CUDA) {
  testutil::TempDir dir;
  Generator g1(1), g2(2);
  models::LeNet5 src(10, 1, &g1), dst(10, 1, &g2);
  Momentum src_opt(src.trainable_params(), 0.01, 0.9);
  // Give the source optimizer non-zero state with one host step.
  const Tensor x = uniform(Shape{2, 1, 32, 32});
  autograd::backward(ops::softmax_cross_entropy(src(x), Tensor::from_vector(std::vector<std::int32_t>{0, 1}, Shape{2})));
  src_opt.step();
  const std::string path = dir.file("src.ckpt"), back = dir.file("back.ckpt");
  save_checkpoint(src, path, {.optimizer = &src_opt});

  dst.to(gpu);
  Momentum dst_opt(dst.trainable_params(), 0.01, 0.9);
  (void)load_checkpoint_into_net(dst, path, {.optimizer = &dst_opt});
  for (const auto& [n, t] : dst.state_dict()) EXPECT_EQ(t.device(), gpu) << n;
  save_checkpoint(dst, back, {.optimizer = &dst_opt});
  EXPECT_EQ(file_bytes(back), file_bytes(path));

  // The ParamDict form (load_checkpoint + load_param_into_net) writes device memory the same way.
  Generator g3(3);
  models::LeNet5 third(10, 1, &g3);
  third.to(gpu);
  (void)load_param_into_net(third, load_checkpoint(path));
  const std::string again = dir.file("third.ckpt");
  save_checkpoint(third, again);
  save_checkpoint(src, dir.file("src_net.ckpt"));
  EXPECT_EQ(file_bytes(again), file_bytes(dir.file("src_net.ckpt")));
}

TEST_F(CudaDevicePaths, OneFlowDirectoriesFromGpuTensors_CUDA) {
  testutil::TempDir dir;
  const Tensor a = uniform(Shape{3, 4}), b = uniform(Shape{5}, DType::kF64);
  oneflow::save_variable_directory(dir.file("vars"), {{"a", a.to(gpu)}, {"b", b.to(gpu)}});
  const NamedTensors back = oneflow::load_named_tensors(dir.file("vars"));
  ASSERT_EQ(back.size(), 2u);
  for (const auto& [n, t] : back) {
    const Tensor& want = n == "a" ? a : b;
    EXPECT_EQ(t.to_vector<double>(), want.to_vector<double>()) << n;
  }
}

TEST_F(CudaDevicePaths, ExportOfAGpuNetworkSaysToMoveItFirst_CUDA) {
  testutil::TempDir dir;
  Generator g(4);
  models::LeNet5 net(10, 1, &g);
  net.to(gpu);
  const std::string e =
      error_of([&] { (void)export_network(net, {Tensor::zeros(Shape{1, 1, 32, 32})}, dir.file("m.onnx")); });
  EXPECT_TRUE(has(e, "Cell::to(Device::cpu())")) << e;
  net.to(Device::cpu());
  EXPECT_NO_THROW((void)export_network(net, {Tensor::zeros(Shape{1, 1, 32, 32})}, dir.file("m.onnx")));
}

TEST_F(CudaDevicePaths, NllLossWithLabelsInDeviceMemory_CUDA) {
  const Tensor lp = uniform(Shape{4, 3});
  const Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{0, 2, 1, 2}, Shape{4});
  const double host = ops::nll_loss(lp, labels).item();
  EXPECT_NEAR(ops::nll_loss(lp.to(gpu), labels.to(gpu)).item(), host, 1e-6);
  const Tensor bad = Tensor::from_vector(std::vector<std::int64_t>{0, 7, 1, 2}, Shape{4}).to(gpu);
  EXPECT_TRUE(has(error_of([&] { (void)ops::nll_loss(lp.to(gpu), bad); }), "label at index 1 is 7"));
}

#endif  // ANVIL_WITH_CUDA

}  // namespace
}  // namespace anvil
