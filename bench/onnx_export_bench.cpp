// onnx_export_bench: time and peak extra memory of exporting ResNet-50 (25.6M parameters) to ONNX.
//
//   onnx_export_bench [--repeat N] [--input S] [--classes K] [--dir DIR]
//
// Each run: export_network(resnet50, {1×3×S×S}, DIR/resnet50.onnx) — one traced inference forward
// pass plus the streamed write. Reported per run: wall time, file size and the peak resident memory
// above what the process held before the export (VmHWM after the export minus VmRSS before it, with
// the peak reset through /proc/self/clear_refs), next to the size of the weights. The baseline is taken
// after plain forward passes, so the figure is what exporting needs beyond running the model: a second
// copy of the weights would show up as ~100% of them. The first run is
// "cold" (oneDNN creates its primitives); durable runs fsync file and directory like every Anvil
// write, the others skip the fsync to show the CPU cost alone. Not a timed assertion: a benchmark.
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include <fmt/format.h>

#include "framework/autograd/GradMode.h"
#include "models/ResNet.h"
#include "serialization/onnx/Export.h"

using namespace anvil;

namespace {

// A field of /proc/self/status in KiB ("VmRSS", "VmHWM"), or -1.
long status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
  return -1;
}

// Resets VmHWM to the current RSS (Linux >= 4.0); false when not permitted.
bool reset_peak() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return out.good();
}

double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

}  // namespace

int main(int argc, char** argv) {
  int repeat = 4;
  std::int64_t size = 224, classes = 1000;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i];
    if (f == "--repeat") repeat = std::atoi(argv[i + 1]);
    else if (f == "--input") size = std::atoll(argv[i + 1]);
    else if (f == "--classes") classes = std::atoll(argv[i + 1]);
    else if (f == "--dir") dir = argv[i + 1];
    else {
      std::cerr << "usage: onnx_export_bench [--repeat N] [--input S] [--classes K] [--dir DIR]\n";
      return 2;
    }
  }
  std::string tmp;
  if (dir.empty()) {
    tmp = (std::filesystem::temp_directory_path() / "anvil-onnx-bench-XXXXXX").string();
    if (!mkdtemp(tmp.data())) {
      std::perror("mkdtemp");
      return 2;
    }
    dir = tmp;
  }
  Generator gen(1);
  auto net = models::resnet50({.in_channels = 3, .num_classes = classes, .generator = &gen});
  std::int64_t params = 0;
  double weight_bytes = 0;
  for (const auto& [n, t] : net->state_dict()) {
    weight_bytes += static_cast<double>(t.nbytes());
    if (n.find("moving_") == std::string::npos) params += t.numel();
  }
  Tensor x = Tensor::zeros(Shape{1, 3, size, size});
  std::cout << fmt::format("ResNet-50: {} parameters, {:.1f} MiB of weights and moving statistics; input 1x3x{}x{}; "
                           "OMP_NUM_THREADS={}\n",
                           params, mib(weight_bytes), size, size,
                           std::getenv("OMP_NUM_THREADS") ? std::getenv("OMP_NUM_THREADS") : "(unset)");
  // A plain inference forward pass for reference (the trace runs one too).
  {
    net->set_train(false);
    NoGradGuard ng;
    for (int i = 0; i < 2; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      (void)net->forward(x);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::cout << fmt::format("forward pass only ({}): {:.3f} s\n", i == 0 ? "cold" : "warm", s);
    }
    net->set_train(true);
  }
  const std::string path = dir + "/resnet50.onnx";
  for (int r = 0; r < repeat; ++r) {
    const bool durable = r % 2 == 0;
    const bool peak_ok = reset_peak();
    const long rss_before = status_kib("VmRSS");
    const auto t0 = std::chrono::steady_clock::now();
    ExportInfo info = export_network(*net, {x}, path, "ONNX", ExportOptions{.durable = durable});
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const long hwm = status_kib("VmHWM");
    std::cout << fmt::format("export run {} ({}): {:.3f} s, {} nodes, file {:.1f} MiB, peak extra RSS {}\n", r + 1,
                             durable ? "durable" : "no fsync", s, info.num_nodes, mib(static_cast<double>(info.file_bytes)),
                             peak_ok && hwm >= 0 ? fmt::format("{:.1f} MiB ({:.0f}% of the weights)",
                                                               (hwm - rss_before) / 1024.0,
                                                               100.0 * (hwm - rss_before) * 1024.0 / weight_bytes)
                                                 : std::string("n/a"));
  }
  if (!tmp.empty()) std::filesystem::remove_all(tmp);
  return 0;
}
