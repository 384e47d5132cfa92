// gpu_bench: training throughput (samples/second) of ResNet-50 and LeNet-5 on the CUDA backend, and the
// same steps in PyTorch (bench/gpu_torch_peer.py) measured in the same run, plus a per-op GPU profile
// taken with CUDA events (nsys is not available on the GPU machine).
//
//   ResNet-50 (models/ResNet.h resnet50, zoo stem): batch --resnet-batch (32), input [B, 3, 224, 224],
//             --classes outputs (1000)
//   LeNet-5   (models/LeNet5.h): batch 64, input [64, 1, 32, 32]
//   Step: forward, softmax cross-entropy (mean), backward, Momentum(lr 0.01, momentum 0.9), zero_grad
//         (= torch.optim.SGD(momentum=0.9)); synthetic N(0,1) inputs and uniform labels, already on the GPU.
//   TF32 off on both sides unless --tf32 (then on for both).
//
// Output, one line per network and side:
//   anvil resnet50 batch=32 samples_per_s=... ms_per_step=...
//   torch resnet50 batch=32 samples_per_s=... ms_per_step=...
//   ratio resnet50 anvil/torch=0.93
// then, with --profile, "profile <net> <op> ms_per_step=... share=..%" lines sorted by cost.
//
// Usage: gpu_bench [--steps N] [--warmup N] [--resnet-batch N] [--classes N] [--only resnet50|lenet5]
//                  [--peer PATH/gpu_torch_peer.py] [--python python3] [--tf32] [--profile]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/autograd/Engine.h"
#include "framework/backend/cuda/Cuda.h"
#include "framework/core/Context.h"
#include "framework/core/Random.h"
#include "framework/nn/Cell.h"
#include "framework/ops/Loss.h"
#include "framework/optim/Momentum.h"
#include "models/LeNet5.h"
#include "models/ResNet.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int steps = 30;
  int warmup = 5;
  std::int64_t resnet_batch = 32;
  std::int64_t classes = 1000;
  std::string only;
  std::string peer = "bench/gpu_torch_peer.py";
  std::string python = "python3";
  bool tf32 = false;
  bool profile = false;
};

anvil::Tensor normal(const anvil::Shape& s, anvil::Generator& g) {
  std::vector<float> v(static_cast<std::size_t>(s.numel()));
  for (float& x : v) x = static_cast<float>(g.normal());
  return anvil::Tensor::from_vector(v, s);
}

struct Result {
  double samples_per_s = 0;
  double ms_per_step = 0;
};

Result run_anvil(const char* name, anvil::nn::Cell& net, const anvil::Shape& input, std::int64_t classes,
                 const Options& o) {
  const anvil::Device gpu = anvil::default_device();
  anvil::Generator g(1);
  net.to(gpu);
  anvil::Momentum opt(net.trainable_params(), 0.01, 0.9);
  const anvil::Tensor x = normal(input, g).to(gpu);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(input[0]));
  for (auto& l : labels) l = static_cast<std::int32_t>(g.uniform() * static_cast<double>(classes)) % static_cast<std::int32_t>(classes);
  const anvil::Tensor y = anvil::Tensor::from_vector(labels, anvil::Shape{input[0]}).to(gpu);
  auto step = [&] {
    const anvil::Tensor loss = anvil::ops::softmax_cross_entropy(net(x), y);
    anvil::backward(loss);
    opt.step();
    opt.zero_grad();
  };
  for (int i = 0; i < o.warmup; ++i) step();
  anvil::cuda::synchronize(gpu.index);
  const auto t0 = Clock::now();
  for (int i = 0; i < o.steps; ++i) step();
  anvil::cuda::synchronize(gpu.index);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  Result r{static_cast<double>(o.steps * input[0]) / s, 1e3 * s / o.steps};
  std::printf("anvil %s batch=%lld samples_per_s=%.1f ms_per_step=%.3f\n", name, static_cast<long long>(input[0]),
              r.samples_per_s, r.ms_per_step);
  if (o.profile) {
    anvil::cuda::reset_profile();
    anvil::cuda::set_profiling(true);
    for (int i = 0; i < o.steps; ++i) step();
    anvil::cuda::synchronize(gpu.index);
    anvil::cuda::set_profiling(false);
    std::vector<std::pair<double, std::string>> ops;
    double total = 0;
    for (const auto& [op, ms] : anvil::cuda::profile_ms()) {
      ops.emplace_back(ms / o.steps, op);
      total += ms / o.steps;
    }
    std::sort(ops.rbegin(), ops.rend());
    for (const auto& [ms, op] : ops)
      std::printf("profile %s %s ms_per_step=%.3f share=%.1f%%\n", name, op.c_str(), ms, total > 0 ? 100 * ms / total : 0);
  }
  std::fflush(stdout);
  return r;
}

// Runs the PyTorch peer for one network and returns its samples/s (0 when it could not run).
double run_peer(const char* name, std::int64_t batch, const Options& o) {
  const std::string cmd = o.python + " " + o.peer + " --net " + name + " --batch " + std::to_string(batch) +
                          " --classes " + std::to_string(o.classes) + " --steps " + std::to_string(o.steps) +
                          " --warmup " + std::to_string(o.warmup) + (o.tf32 ? " --tf32" : "");
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return 0;
  char line[512];
  double rate = 0;
  while (std::fgets(line, sizeof line, p)) {
    std::fputs(line, stdout);
    const std::string s(line);
    const auto k = s.find("samples_per_s=");
    if (s.rfind("torch ", 0) == 0 && k != std::string::npos) rate = std::atof(s.c_str() + k + 14);
  }
  const int rc = pclose(p);
  if (rc != 0) std::printf("peer exited with status %d: %s\n", rc, cmd.c_str());
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--steps") o.steps = std::max(1, std::atoi(value().c_str()));
    else if (a == "--warmup") o.warmup = std::max(0, std::atoi(value().c_str()));
    else if (a == "--resnet-batch") o.resnet_batch = std::max(1, std::atoi(value().c_str()));
    else if (a == "--classes") o.classes = std::max(2, std::atoi(value().c_str()));
    else if (a == "--only") o.only = value();
    else if (a == "--peer") o.peer = value();
    else if (a == "--python") o.python = value();
    else if (a == "--tf32") o.tf32 = true;
    else if (a == "--profile") o.profile = true;
    else {
      std::fprintf(stderr,
                   "usage: gpu_bench [--steps N] [--warmup N] [--resnet-batch N] [--classes N] [--only NET]\n"
                   "                 [--peer gpu_torch_peer.py] [--python python3] [--tf32] [--profile]\n");
      return 2;
    }
  }
  try {
    std::string reason;
    if (anvil::cuda::device_count(&reason) == 0) {
      std::printf("gpu_bench: no CUDA device (%s); nothing to measure\n", reason.c_str());
      return 0;
    }
    anvil::set_context({.device_target = "GPU", .device_id = 0});
    anvil::cuda::set_cuda_options({.allow_tf32 = o.tf32, .benchmark = true});
    if (o.only.empty() || o.only == "resnet50") {
      Result a;
      {
        anvil::Generator g(3);
        auto net = anvil::models::resnet50({.num_classes = o.classes, .generator = &g});
        a = run_anvil("resnet50", *net, anvil::Shape{o.resnet_batch, 3, 224, 224}, o.classes, o);
      }
      anvil::cuda::empty_cache();  // the peer gets the GPU memory Anvil cached
      const double t = run_peer("resnet50", o.resnet_batch, o);
      if (t > 0) std::printf("ratio resnet50 anvil/torch=%.3f\n", a.samples_per_s / t);
    }
    if (o.only.empty() || o.only == "lenet5") {
      Result a;
      {
        anvil::Generator g(4);
        anvil::models::LeNet5 net(10, 1, &g);
        a = run_anvil("lenet5", net, anvil::Shape{64, 1, 32, 32}, 10, o);
      }
      anvil::cuda::empty_cache();
      const double t = run_peer("lenet5", 64, o);
      if (t > 0) std::printf("ratio lenet5 anvil/torch=%.3f\n", a.samples_per_s / t);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
