// Checkpoint save/load bandwidth (benchmark, not a test), in one run on one disk:
//   * `dd if=/dev/zero bs=1M conv=fsync` of the same size (the device's durable write bandwidth);
//   * save_checkpoint of a network with N float32 parameters (default 100M = 381 MiB), including the
//     CRC trailer, fsync of the file and of the directory (atomic commit);
//   * load_checkpoint_into_net: the same file (warm in the page cache) read straight into the existing
//     parameters, CRC verified first; and load_checkpoint into a fresh ParamDict (allocating).
// The PyTorch peer (torch.save + fsync, torch.load) runs in bench/ckpt_bench.sh alongside.
//
//   ckpt_bench [--dir DIR] [--params N] [--repeats R]
// Prints one line per measurement: "<what> seconds=<median> gib_per_s=<...> runs=<...>".
// Checks free disk space first and exits 0 with a message when there is not enough.
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "framework/core/Log.h"
#include "framework/nn/Cell.h"
#include "serialization/Checkpoint.h"
#include "serialization/LoadParam.h"

namespace {

using Clock = std::chrono::steady_clock;

// A network of `n` float32 parameters in tensors of up to 4M elements (like a mid-sized model's layers).
class BlobNet : public anvil::nn::Cell {
 public:
  explicit BlobNet(std::int64_t n) {
    const std::int64_t chunk = 4 << 20;
    for (std::int64_t i = 0, k = 0; i < n; i += chunk, ++k) {
      const std::int64_t len = std::min(chunk, n - i);
      anvil::Tensor t = anvil::Tensor::empty(anvil::Shape{len}, anvil::DType::kF32);
      float* p = t.data<float>();
      for (std::int64_t j = 0; j < len; ++j) p[j] = static_cast<float>((i + j) % 1000) * 1e-3f;
      register_parameter("layer" + std::to_string(k), t, false);
    }
  }
  anvil::Tensor forward(const anvil::Tensor& x) override { return x; }
  std::string type_name() const override { return "BlobNet"; }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string runs_str(const std::vector<double>& v) {
  std::string s;
  for (double x : v) s += fmt::format("{}{:.3f}", s.empty() ? "" : ",", x);
  return s;
}

void report(const std::string& what, const std::vector<double>& secs, std::uint64_t bytes) {
  const double m = median(secs);
  std::cout << fmt::format("{} seconds={:.4f} gib_per_s={:.3f} runs={}\n", what, m, bytes / m / (1ull << 30),
                           runs_str(secs));
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = std::filesystem::temp_directory_path().string();
  std::int64_t params = 100'000'000;
  int repeats = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc) dir = argv[++i];
    else if (a == "--params" && i + 1 < argc) params = std::stoll(argv[++i]);
    else if (a == "--repeats" && i + 1 < argc) repeats = std::stoi(argv[++i]);
    else {
      std::cerr << "usage: ckpt_bench [--dir DIR] [--params N] [--repeats R]\n";
      return 2;
    }
  }
  const std::uint64_t bytes = static_cast<std::uint64_t>(params) * 4;
  const auto space = std::filesystem::space(dir);
  if (space.available < 3 * bytes + (256ull << 20)) {
    std::cout << fmt::format("ckpt_bench: skipped: needs {} MiB free in {}, {} MiB available\n",
                             (3 * bytes + (256ull << 20)) >> 20, dir, space.available >> 20);
    return 0;
  }
  anvil::set_log_level(anvil::LogLevel::kError);
  const std::string ckpt = dir + "/anvil_ckpt_bench.ckpt";
  const std::string ddfile = dir + "/anvil_ckpt_bench.dd";
  std::cout << fmt::format("ckpt_bench: {} float32 parameters ({:.1f} MiB) in {}\n", params, bytes / 1048576.0, dir);

  BlobNet net(params);
  std::vector<double> dd, save, load_into, load_dict;
  for (int r = 0; r < repeats; ++r) {
    // dd with fsync: the device's durable sequential write bandwidth, same size, same directory.
    std::filesystem::remove(ddfile);
    const std::string cmd = fmt::format("dd if=/dev/zero of='{}' bs=1M count={} conv=fsync status=none", ddfile,
                                        (bytes + (1 << 20) - 1) >> 20);
    auto t0 = Clock::now();
    if (std::system(cmd.c_str()) != 0) {
      std::cerr << "ckpt_bench: dd failed\n";
      return 1;
    }
    dd.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    std::filesystem::remove(ddfile);

    t0 = Clock::now();
    anvil::save_checkpoint(net, ckpt);  // CRC trailer, fsync, rename, fsync dir
    save.push_back(std::chrono::duration<double>(Clock::now() - t0).count());

    t0 = Clock::now();
    auto res = anvil::load_checkpoint_into_net(net, ckpt, {.load = {.require_integrity = true}});
    load_into.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    if (!res.param_not_load.empty()) {
      std::cerr << "ckpt_bench: parameters not loaded\n";
      return 1;
    }
    t0 = Clock::now();
    {
      const anvil::ParamDict d = anvil::load_checkpoint(ckpt, {.require_integrity = true});
      load_dict.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
  }
  std::filesystem::remove(ckpt);
  report("dd_conv_fsync", dd, bytes);
  report("anvil_save_fsync", save, bytes);
  report("anvil_load_into_net", load_into, bytes);
  report("anvil_load_checkpoint", load_dict, bytes);
  std::cout << fmt::format("anvil_save_vs_dd={:.2f}\n", median(dd) / median(save));
  return 0;
}
