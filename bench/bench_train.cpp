// bench_train: training throughput (samples/second) of LeNet-5, the MLP 784-512-10 and ResNet-18 on the
// default CPU backend, one full training step each (forward, softmax cross-entropy, backward, Momentum step,
// zero_grad), the same step torch_peer.py times for PyTorch.
//
//   LeNet-5 (models/LeNet5.h): batch 64, input [64, 1, 32, 32] (Fashion-MNIST padded to 32)
//   MLP     (models/MLP.h):    batch 100, input [100, 784]
//   ResNet-18 (models/ResNet.h, resnet18 with in_channels 1, num_classes 10, small_input: 3×3/1 stem, no
//             max-pool): batch --resnet-batch (default 32, about 0.45 s per step with 2 threads on the
//             2-core VM), input [32, 1, 32, 32]; --resnet-steps steps (default 8) per repeat after
//             --resnet-warmup steps (default 2; --warmup is LeNet-5's and the MLP's)
//   Optimizer: Momentum(lr 0.01, momentum 0.9) — MindSpore's update, = torch.optim.SGD(momentum=0.9)
//
// Data: a pool of --batches distinct real Fashion-MNIST training batches (MnistDataset + DataLoader,
// MindSpore's LeNet normalization), gathered before timing and cycled through, so the figure is the
// training step alone; synthetic N(0,1) data with --synthetic or when the dataset is not installed.
// Timing: --warmup steps, then --repeats runs of --lenet-steps / --mlp-steps / --resnet-steps steps; the
// median rate is reported (min and max beside it). One line per network on stdout:
//   anvil lenet5 batch=64 samples_per_s=12345.6 min=... max=... steps=200 repeats=5 threads=2 ... params=61684 ...
//       rates=r1,r2,...
// (samples_per_s is the median of the repeats; rates lists every repeat's rate, rounded; params counts the
// trainable parameter elements, which torch_peer.py prints for its copy of the network too.)
// Threads: oneDNN's OpenMP pool; set OMP_NUM_THREADS in the environment (bench/run.sh uses 2). This
// program changes no process-wide setting.
//
// --dtype bf16 (or --amp O2) runs the step in mixed precision, as Model's amp_level "O2": conv2d and
// dense/matmul compute in bfloat16 (oneDNN bf16 kernels, float32 accumulation), float32 master weights,
// loss and optimizer; the output line then says dtype=bf16. Default: --dtype f32.
//
// --profile additionally times each phase of a step separately (forward, loss, backward, optimizer
// step + zero_grad) and prints one "profile" line per network with milliseconds per step.
//
// --data-wait-steps N (default 100, 0 = off) trains LeNet-5 for N steps straight from a DataLoader
// (Fashion-MNIST padded to 32, RandomCrop(32, padding 4) + RandomHorizontalFlip) once synchronously
// (num_workers 0, prefetch 0) and once with 2 workers, and prints the time the training thread waited
// for batches (DataLoader::wait_seconds): "data wait lenet5 workers=W: X ms over N steps ...".
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "framework/autograd/Engine.h"
#include "framework/backend/Backend.h"
#include "framework/backend/ComputePrecision.h"
#include "framework/core/Random.h"
#include "framework/data/DataLoader.h"
#include "framework/data/MnistDataset.h"
#include "framework/data/Transforms.h"
#include "framework/nn/Cell.h"
#include "framework/ops/Loss.h"
#include "framework/optim/Momentum.h"
#include "models/LeNet5.h"
#include "models/MLP.h"
#include "models/ResNet.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int warmup = 20;
  int repeats = 5;
  int lenet_steps = 200;
  int mlp_steps = 300;
  int resnet_steps = 8;
  int resnet_warmup = 2;
  int resnet_batch = 32;  // about 0.45 s per step with 2 threads on the 2-core VM when it is otherwise idle
  int batches = 50;
  bool synthetic = false;
  bool profile = false;
  std::string only;  // "", "lenet5", "mlp" or "resnet18"
  int data_wait_steps = 100;
  std::string dtype = "f32";  // "f32" or "bf16"
};

struct Pool {
  std::vector<anvil::Tensor> x;  // each [B, ...]
  std::vector<anvil::Tensor> y;  // each int32 [B]
  std::string kind;              // "fashion-mnist" or "synthetic"
};

/// `count` batches of `batch` examples: real Fashion-MNIST (padded to `pad_to`, 0 = 28x28) reshaped to
/// `shape`, or seeded N(0,1) images with uniform labels when the dataset cannot be read.
Pool make_pool(std::int64_t batch, int count, std::int64_t pad_to, const anvil::Shape& shape, bool synthetic) {
  Pool pool;
  if (!synthetic) {
    try {
      auto dataset = anvil::load_fashion_mnist(
          anvil::MnistOptions{.split = "train", .pad_to = pad_to, .limit = batch * count});
      anvil::DataLoader loader(dataset, anvil::DataLoaderOptions{
                                            .batch_size = batch, .shuffle = false, .drop_remainder = true,
                                            .prefetch = 0});
      while (auto b = loader.next()) {
        pool.x.push_back(b->data.view(shape));
        pool.y.push_back(b->label);
      }
      if (static_cast<int>(pool.x.size()) == count) {
        pool.kind = "fashion-mnist";
        return pool;
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_train: Fashion-MNIST unavailable (%s); using synthetic data\n", e.what());
    }
    pool.x.clear();
    pool.y.clear();
  }
  anvil::Generator gen(1);
  for (int i = 0; i < count; ++i) {
    anvil::Tensor x = anvil::Tensor::empty(shape);
    float* px = x.data<float>();
    for (std::int64_t j = 0; j < x.numel(); ++j) px[j] = static_cast<float>(gen.normal());
    anvil::Tensor y = anvil::Tensor::empty({batch}, anvil::DType::kI32);
    std::int32_t* py = y.data<std::int32_t>();
    for (std::int64_t j = 0; j < batch; ++j) py[j] = static_cast<std::int32_t>(gen.randint(10));
    pool.x.push_back(x);
    pool.y.push_back(y);
  }
  pool.kind = "synthetic";
  return pool;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct PhaseTimes {
  double forward = 0, loss = 0, backward = 0, optimizer = 0;
};

class Trainer {
 public:
  Trainer(anvil::nn::Cell& net, const Pool& pool, bool bf16)
      : net_(net), pool_(pool), opt_(net.trainable_params(), 0.01, 0.9), bf16_(bf16) {
    net_.set_train(true);
  }

  /// One training step on the next batch of the pool; returns the loss tensor.
  anvil::Tensor step(PhaseTimes* times = nullptr) {
    const std::size_t i = next_++ % pool_.x.size();
    anvil::ComputePrecisionScope precision(bf16_ ? anvil::ComputePrecision::kBF16 : anvil::ComputePrecision::kF32);
    auto t0 = Clock::now();
    anvil::Tensor logits = net_(pool_.x[i]);  // [B, 10]
    auto t1 = Clock::now();
    anvil::Tensor loss = anvil::ops::softmax_cross_entropy(logits, pool_.y[i]);  // 0-d
    auto t2 = Clock::now();
    anvil::backward(loss);
    auto t3 = Clock::now();
    opt_.step();
    opt_.zero_grad();
    auto t4 = Clock::now();
    if (times) {
      using D = std::chrono::duration<double>;
      times->forward += D(t1 - t0).count();
      times->loss += D(t2 - t1).count();
      times->backward += D(t3 - t2).count();
      times->optimizer += D(t4 - t3).count();
    }
    return loss;
  }

 private:
  anvil::nn::Cell& net_;
  const Pool& pool_;
  anvil::Momentum opt_;
  bool bf16_ = false;
  std::size_t next_ = 0;
};

std::int64_t param_count(const anvil::nn::Cell& net) {
  std::int64_t n = 0;
  for (const auto& [name, p] : net.trainable_params()) n += p.numel();
  return n;
}

void run(const char* name, anvil::nn::Cell& net, const Pool& pool, std::int64_t batch, int warmup, int steps,
         const Options& o) {
  Trainer trainer(net, pool, o.dtype == "bf16");
  anvil::Tensor loss;
  for (int i = 0; i < warmup; ++i) loss = trainer.step();
  std::vector<double> rates;
  for (int r = 0; r < o.repeats; ++r) {
    auto t0 = Clock::now();
    for (int i = 0; i < steps; ++i) loss = trainer.step();
    (void)loss.item();  // the last step's result is complete (all CPU work is synchronous anyway)
    rates.push_back(static_cast<double>(steps * batch) / seconds_since(t0));
  }
  std::vector<double> sorted = rates;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted.size() % 2 ? sorted[sorted.size() / 2]
                                          : 0.5 * (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]);
  std::string all;  // every repeat's rate, in run order
  for (double r : rates) {
    if (!all.empty()) all += ',';
    all += std::to_string(static_cast<long long>(r + 0.5));
  }
  const char* threads = std::getenv("OMP_NUM_THREADS");
  std::printf(
      "anvil %s batch=%lld samples_per_s=%.1f min=%.1f max=%.1f steps=%d repeats=%d threads=%s data=%s "
      "backend=%s dtype=%s params=%lld loss=%.4f rates=%s\n",
      name, static_cast<long long>(batch), median, sorted.front(), sorted.back(), steps, o.repeats,
      threads && *threads ? threads : "default", pool.kind.c_str(),
      anvil::backend_for(anvil::Device::cpu()).name().c_str(), o.dtype.c_str(),
      static_cast<long long>(param_count(net)), loss.item(), all.c_str());
  std::fflush(stdout);

  if (o.profile) {
    PhaseTimes t;
    for (int i = 0; i < steps; ++i) trainer.step(&t);
    const double ms = 1e3 / steps;
    const double total = t.forward + t.loss + t.backward + t.optimizer;
    std::printf(
        "profile anvil %s dtype=%s ms_per_step=%.3f forward=%.3f (%.0f%%) loss=%.3f (%.0f%%) backward=%.3f (%.0f%%) "
        "optimizer+zero_grad=%.3f (%.0f%%)\n",
        name, o.dtype.c_str(), total * ms, t.forward * ms, 100 * t.forward / total, t.loss * ms, 100 * t.loss / total,
        t.backward * ms, 100 * t.backward / total, t.optimizer * ms, 100 * t.optimizer / total);
    std::fflush(stdout);
  }
}

// LeNet-5 trained from a DataLoader with augmentation: how long next() kept the training thread waiting.
void report_data_wait(int steps, std::int64_t workers) {
  auto data = anvil::load_fashion_mnist(anvil::MnistOptions{.split = "train", .pad_to = 32, .limit = 64 * steps});
  auto augment = std::make_shared<anvil::Compose>(std::vector<std::shared_ptr<const anvil::Transform>>{
      std::make_shared<anvil::RandomCrop>(32, 32, anvil::Padding{4}), std::make_shared<anvil::RandomHorizontalFlip>()});
  anvil::DataLoader loader(data, {.batch_size = 64, .drop_remainder = true, .seed = 1, .prefetch = workers ? 2 : 0,
                                  .transform = augment, .num_workers = workers});
  anvil::Generator gen(1);
  anvil::models::LeNet5 net(10, 1, &gen);
  anvil::Momentum opt(net.trainable_params(), 0.01, 0.9);
  int done = 0;
  const auto t0 = Clock::now();
  while (auto b = loader.next()) {
    anvil::backward(anvil::ops::softmax_cross_entropy(net(b->data), b->label));
    opt.step();
    opt.zero_grad();
    ++done;
  }
  const double total = seconds_since(t0);
  std::printf("data wait lenet5 workers=%lld: %.1f ms over %d steps (%.3f ms/step, %.0f%% of %.1f ms total)\n",
              static_cast<long long>(workers), loader.wait_seconds() * 1e3, done,
              done ? loader.wait_seconds() * 1e3 / done : 0.0, 100.0 * loader.wait_seconds() / total, total * 1e3);
  std::fflush(stdout);
}

int int_arg(const char* flag, const char* value) {
  char* end = nullptr;
  long v = std::strtol(value, &end, 10);
  if (!*value || *end || v < 0) {
    std::fprintf(stderr, "bench_train: %s expects a non-negative integer, got '%s'\n", flag, value);
    std::exit(2);
  }
  return static_cast<int>(v);
}

void usage() {
  std::puts(
      "usage: bench_train [--warmup N] [--repeats N] [--lenet-steps N] [--mlp-steps N] [--batches N]\n"
      "                   [--resnet-steps N] [--resnet-warmup N] [--resnet-batch N]\n"
      "                   [--synthetic] [--profile] [--only lenet5|mlp|resnet18] [--data-wait-steps N]\n"
      "                   [--dtype f32|bf16] [--amp O0|O2|O3]\n"
      "Threads come from OMP_NUM_THREADS (oneDNN's OpenMP pool).");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_train: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--warmup") o.warmup = int_arg("--warmup", value());
    else if (a == "--repeats") o.repeats = std::max(1, int_arg("--repeats", value()));
    else if (a == "--lenet-steps") o.lenet_steps = std::max(1, int_arg("--lenet-steps", value()));
    else if (a == "--mlp-steps") o.mlp_steps = std::max(1, int_arg("--mlp-steps", value()));
    else if (a == "--resnet-steps") o.resnet_steps = std::max(1, int_arg("--resnet-steps", value()));
    else if (a == "--resnet-warmup") o.resnet_warmup = int_arg("--resnet-warmup", value());
    else if (a == "--resnet-batch") o.resnet_batch = std::max(1, int_arg("--resnet-batch", value()));
    else if (a == "--batches") o.batches = std::max(1, int_arg("--batches", value()));
    else if (a == "--synthetic") o.synthetic = true;
    else if (a == "--profile") o.profile = true;
    else if (a == "--only") o.only = value();
    else if (a == "--data-wait-steps") o.data_wait_steps = int_arg("--data-wait-steps", value());
    else if (a == "--dtype") o.dtype = value();
    else if (a == "--amp") o.dtype = std::string(value()) == "O0" ? "f32" : "bf16";
    else if (a == "-h" || a == "--help") {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "bench_train: unknown argument '%s'\n", a.c_str());
      usage();
      return 2;
    }
  }
  if (o.dtype != "f32" && o.dtype != "bf16") {
    std::fprintf(stderr, "bench_train: --dtype expects f32 or bf16, got '%s'\n", o.dtype.c_str());
    return 2;
  }
  if (!o.only.empty() && o.only != "lenet5" && o.only != "mlp" && o.only != "resnet18") {
    std::fprintf(stderr, "bench_train: --only expects lenet5, mlp or resnet18, got '%s'\n", o.only.c_str());
    return 2;
  }

  try {
    if (o.only.empty() || o.only == "lenet5") {
      anvil::Generator gen(1);
      anvil::models::LeNet5 lenet(10, 1, &gen);
      Pool pool = make_pool(64, o.batches, 32, {64, 1, 32, 32}, o.synthetic);
      run("lenet5", lenet, pool, 64, o.warmup, o.lenet_steps, o);
      if (o.data_wait_steps > 0 && pool.kind == "fashion-mnist")
        for (std::int64_t workers : {0, 2}) report_data_wait(o.data_wait_steps, workers);
    }
    if (o.only.empty() || o.only == "mlp") {
      anvil::Generator gen(1);
      anvil::models::MLP mlp(784, {512}, 10, &gen);
      Pool pool = make_pool(100, o.batches, 0, {100, 784}, o.synthetic);
      run("mlp", mlp, pool, 100, o.warmup, o.mlp_steps, o);
    }
    if (o.only.empty() || o.only == "resnet18") {
      anvil::Generator gen(1);
      auto resnet = anvil::models::resnet18(
          anvil::models::ResNetOptions{.in_channels = 1, .num_classes = 10, .small_input = true, .generator = &gen});
      const std::int64_t b = o.resnet_batch;
      Pool pool = make_pool(b, o.batches, 32, {b, 1, 32, 32}, o.synthetic);
      run("resnet18", *resnet, pool, b, o.resnet_warmup, o.resnet_steps, o);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train: %s\n", e.what());
    return 1;
  }
  return 0;
}
