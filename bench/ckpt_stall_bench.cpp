// ckpt_stall_bench: how long an asynchronous ModelCheckpoint save stalls the training thread, next to the
// time of copying the same tensors in memory (issue target: stall <= 1.2x the in-memory copy).
//
//   ckpt_stall_bench [--width W] [--depth D] [--batch B] [--saves S] [--every K] [--dir DIR]
//
// The network is an MLP W -> W ... (D hidden Dense layers of width W) -> 10 trained with Momentum, so a
// checkpoint holds the parameters and their moments (2 x 4 x params bytes). Model::train runs with
// ModelCheckpoint(async_save = thread, save_checkpoint_steps = K, durable writes) between a timing
// pair of callbacks: the stall of a save is the wall time of ModelCheckpoint::on_train_step_end at the steps where
// it saved (snapshot of every tensor + hand-off to the writer thread; the first save also writes
// <prefix>-graph.meta and is reported apart). K is chosen so the writer has finished before the next save
// is due (a save that had to wait is counted, and reported).
//
// Baselines, measured in the same process on the same tensors: "memcpy" copies every tensor into
// buffers allocated and touched beforehand (the lower bound of any snapshot), "clone" is
// Tensor::clone() of every tensor (fresh memory each time, what a user's deep copy of a state dict
// costs). Not a timed assertion: a benchmark program.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "callbacks/LambdaCallback.h"
#include "callbacks/ModelCheckpoint.h"
#include "framework/core/Random.h"
#include "framework/data/DataLoader.h"
#include "framework/data/InMemoryDataset.h"
#include "framework/nn/losses/LossCell.h"
#include "framework/optim/Momentum.h"
#include "framework/train/Model.h"
#include "models/MLP.h"
#include "serialization/Checkpoint.h"

using namespace anvil;
using Steady = std::chrono::steady_clock;

namespace {

double ms_since(Steady::time_point t0) { return std::chrono::duration<double, std::milli>(Steady::now() - t0).count(); }

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t width = 2048, depth = 3, batch = 16, saves = 8, every = 0;
  std::string dir = "ckpt_stall_bench_out";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--width") width = std::stoll(v);
    else if (k == "--depth") depth = std::stoll(v);
    else if (k == "--batch") batch = std::stoll(v);
    else if (k == "--saves") saves = std::stoll(v);
    else if (k == "--every") every = std::stoll(v);
    else if (k == "--dir") dir = v;
    else {
      std::cerr << "usage: ckpt_stall_bench [--width W] [--depth D] [--batch B] [--saves S] [--every K] [--dir DIR]\n";
      return 2;
    }
  }
  if (width < 1 || depth < 1 || batch < 1 || saves < 2 || every < 0) {
    std::cerr << "ckpt_stall_bench: width, depth, batch >= 1, saves >= 2, every >= 0\n";
    return 2;
  }
  try {
    namespace fs = std::filesystem;
    fs::remove_all(dir);
    fs::create_directories(dir);

    Generator gen(7);
    auto net = std::make_shared<models::MLP>(width, std::vector<std::int64_t>(static_cast<std::size_t>(depth), width), 10, &gen);
    auto loss = std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(true, "mean");
    auto opt = std::make_shared<Momentum>(net->trainable_params(), 0.001, 0.9);
    Model model(net, loss, opt);

    const std::int64_t n = batch * 4;
    Tensor x = Tensor::empty({n, width});
    for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(gen.normal());
    Tensor y = Tensor::empty({n}, DType::kI32);
    for (std::int64_t i = 0; i < n; ++i) y.data<std::int32_t>()[i] = static_cast<std::int32_t>(i % 10);
    DataLoader loader(std::make_shared<InMemoryDataset>(x, y), DataLoaderOptions{.batch_size = batch, .shuffle = false});

    // One untimed step builds the optimizer state, then the step time sets the save interval.
    model.train(1, loader);
    auto t0 = Steady::now();
    model.train(1, loader);
    const double step_ms = ms_since(t0) / 4.0;

    NamedTensors saved = net->state_dict();
    for (auto& e : opt->state_dict()) saved.push_back(e);
    std::size_t bytes = 0;
    for (const auto& [name, t] : saved) bytes += t.nbytes();

    // Baselines.
    std::vector<Tensor> dst;
    for (const auto& [name, t] : saved) {
      dst.push_back(Tensor::empty(t.shape(), t.dtype()));
      std::memset(dst.back().data_ptr(), 0, dst.back().nbytes());
    }
    std::vector<double> memcpy_ms, clone_ms;
    for (int r = 0; r < 9; ++r) {
      t0 = Steady::now();
      for (std::size_t i = 0; i < saved.size(); ++i) std::memcpy(dst[i].data_ptr(), saved[i].second.data_ptr(), dst[i].nbytes());
      memcpy_ms.push_back(ms_since(t0));
      t0 = Steady::now();
      {
        std::vector<Tensor> c;
        for (const auto& [name, t] : saved) c.push_back(t.clone());
        clone_ms.push_back(ms_since(t0));
      }
    }

    // Writer time of one durable save, to space the saves so none has to wait.
    t0 = Steady::now();
    save_checkpoint(saved, (fs::path(dir) / "probe.ckpt").string());
    const double write_ms = ms_since(t0);
    fs::remove(fs::path(dir) / "probe.ckpt");
    if (every == 0) every = std::max<std::int64_t>(2, static_cast<std::int64_t>(1.5 * write_ms / std::max(step_ms, 0.1)) + 1);

    CheckpointConfig config;
    config.save_checkpoint_steps = every;
    config.keep_checkpoint_max = 2;
    config.async_save = AsyncSave::kThread;
    auto ckpt = std::make_shared<ModelCheckpoint>("stall", dir, config);
    // Callbacks run in list order: `before` and `after` bracket ModelCheckpoint's step-end hook.
    Steady::time_point hook_start;
    std::int64_t saved_step = 0;
    std::vector<double> stalls;  // ms, one per save made at a step end
    auto before = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_end = [&](RunContext& c) {
      saved_step = c.original_args().last_save_ckpt_step;
      hook_start = Steady::now();
    }});
    auto after = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_end = [&](RunContext& c) {
      const double ms = ms_since(hook_start);
      if (c.original_args().last_save_ckpt_step != saved_step) stalls.push_back(ms);
    }});
    const std::int64_t steps = every * saves;
    const std::int64_t epochs = (steps + 3) / 4;
    model.train(static_cast<int>(epochs), loader, {before, ckpt, after});

    std::vector<double> later(stalls.begin() + (stalls.empty() ? 0 : 1), stalls.end());
    const double first = stalls.empty() ? 0.0 : stalls.front();
    const double stall = median(later);
    const double stall_max = later.empty() ? 0.0 : *std::max_element(later.begin(), later.end());
    const double mc = median(memcpy_ms), cl = median(clone_ms);
    std::cout << fmt::format(
        "ckpt_stall_bench: MLP {}x{} -> 10, Momentum; checkpoint {} tensors, {:.1f} MiB (parameters + moments)\n"
        "  train step {:.1f} ms; durable write of one checkpoint {:.0f} ms; async save every {} steps, {} saves\n"
        "  in-memory copy of the same tensors: memcpy into touched buffers {:.1f} ms, clone() {:.1f} ms (median of 9)\n"
        "  async save stall on the training thread: first {:.1f} ms (incl. graph.meta), then median {:.1f} ms, max {:.1f} ms\n"
        "  stall / memcpy = {:.2f}x, stall / clone = {:.2f}x (target <= 1.2x)\n",
        depth, width, saved.size(), bytes / (1024.0 * 1024.0), step_ms, write_ms, every, stalls.size(), mc, cl,
        first, stall, stall_max, stall / mc, stall / cl);
    fs::remove_all(dir);
  } catch (const std::exception& e) {
    std::cerr << "ckpt_stall_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
