#include "serialization/onnx/ExportCli.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <onnx/checker.h>

#include "framework/autograd/GradMode.h"
#include "framework/core/Error.h"
#include "framework/core/Random.h"
#include "models/LeNet5.h"
#include "models/MLP.h"
#include "models/ResNet.h"
#include "serialization/LoadParam.h"
#include "serialization/onnx/Export.h"
#include "serialization/onnx/OnnxRuntimeNode.h"

namespace {

using namespace anvil;

constexpr const char* kUsage =
    "usage: anvil export --model lenet|mlp|resnet18|resnet50 --out FILE[.onnx] [--ckpt FILE.ckpt]\n"
    "                    [--num-classes N] [--in-channels C] [--input-size H[xW]] [--small-input]\n"
    "                    [--base-width W] [--hidden 512,256] [--batch B] [--opset 13..17] [--static-batch]\n"
    "                    [--format ONNX] [--external-data auto|always|never] [--seed S] [--no-check] [--verify]\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Args {
  std::string model, out, ckpt, format = "ONNX", external = "auto";
  std::int64_t num_classes = 10, in_channels = -1, height = -1, width = -1, base_width = 64, batch = 1, opset = 13;
  std::vector<std::int64_t> hidden{512};
  std::uint64_t seed = 1;
  bool small_input = false, static_batch = false, check = true, verify = false;
};

std::int64_t to_int(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0') throw UsageError("bad value '" + v + "' for " + flag);
  return x;
}

std::vector<std::int64_t> to_ints(const std::string& flag, const std::string& v, char sep) {
  std::vector<std::int64_t> out;
  std::size_t start = 0;
  for (;;) {
    const auto pos = v.find(sep, start);
    out.push_back(to_int(flag, v.substr(start, pos == std::string::npos ? std::string::npos : pos - start)));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return out;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError("missing value for " + flag);
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") throw UsageError("");
    else if (flag == "--model") a.model = value();
    else if (flag == "--out") a.out = value();
    else if (flag == "--ckpt") a.ckpt = value();
    else if (flag == "--format") a.format = value();
    else if (flag == "--external-data") a.external = value();
    else if (flag == "--num-classes") a.num_classes = to_int(flag, value());
    else if (flag == "--in-channels") a.in_channels = to_int(flag, value());
    else if (flag == "--base-width") a.base_width = to_int(flag, value());
    else if (flag == "--batch") a.batch = to_int(flag, value());
    else if (flag == "--opset") a.opset = to_int(flag, value());
    else if (flag == "--seed") a.seed = static_cast<std::uint64_t>(to_int(flag, value()));
    else if (flag == "--hidden") a.hidden = to_ints(flag, value(), ',');
    else if (flag == "--input-size") {
      auto hw = to_ints(flag, value(), 'x');
      if (hw.size() > 2) throw UsageError("--input-size takes H or HxW");
      a.height = hw[0];
      a.width = hw.size() == 2 ? hw[1] : hw[0];
    } else if (flag == "--small-input") a.small_input = true;
    else if (flag == "--static-batch") a.static_batch = true;
    else if (flag == "--no-check") a.check = false;
    else if (flag == "--verify") a.verify = true;
    else throw UsageError("unknown option " + flag);
  }
  if (a.model.empty() || a.out.empty()) throw UsageError("--model and --out are required");
  if (a.batch < 1) throw UsageError("--batch must be >= 1");
  if (a.external != "auto" && a.external != "always" && a.external != "never")
    throw UsageError("--external-data must be auto, always or never");
  return a;
}

// Builds the network and the shape of one sample [C, H, W].
std::shared_ptr<nn::Cell> build(Args& a, Generator& gen, std::vector<std::int64_t>& sample) {
  if (a.model == "lenet") {
    if (a.in_channels < 0) a.in_channels = 1;
    sample = {a.in_channels, a.height > 0 ? a.height : 32, a.width > 0 ? a.width : 32};
    return std::make_shared<models::LeNet5>(a.num_classes, a.in_channels, &gen);
  }
  if (a.model == "mlp") {
    if (a.in_channels < 0) a.in_channels = 1;
    sample = {a.in_channels, a.height > 0 ? a.height : 28, a.width > 0 ? a.width : 28};
    return std::make_shared<models::MLP>(sample[0] * sample[1] * sample[2], a.hidden, a.num_classes, &gen);
  }
  if (a.model == "resnet18" || a.model == "resnet50") {
    if (a.in_channels < 0) a.in_channels = 3;
    const std::int64_t d = a.small_input ? 32 : 224;
    sample = {a.in_channels, a.height > 0 ? a.height : d, a.width > 0 ? a.width : d};
    models::ResNetOptions o{.in_channels = a.in_channels, .num_classes = a.num_classes, .small_input = a.small_input,
                            .base_width = a.base_width, .generator = &gen};
    return a.model == "resnet18" ? models::resnet18(o) : models::resnet50(o);
  }
  throw UsageError("unknown model '" + a.model + "' (lenet, mlp, resnet18, resnet50)");
}

Tensor random_input(const std::vector<std::int64_t>& sample, std::int64_t batch, Generator& gen) {
  std::vector<std::int64_t> dims{batch};
  dims.insert(dims.end(), sample.begin(), sample.end());
  Tensor t = Tensor::empty(Shape(dims));
  float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(gen.uniform());  // images in [0, 1)
  return t;
}

// ONNX Runtime vs Anvil at batch sizes 1 and 3; returns false when a comparison fails.
bool verify(nn::Cell& net, const std::string& path, const std::vector<std::int64_t>& sample, bool dynamic,
            std::int64_t export_batch, Generator& gen) {
  auto status = find_onnxruntime_node(true);
  if (!status.available) {
    std::cout << "onnxruntime: skipped (" << status.reason << ")\n";
    return true;
  }
  OnnxRuntimeNode ort(status);
  bool ok = true;
  const bool was_training = net.training();
  net.set_train(false);
  std::vector<std::int64_t> batches = dynamic ? std::vector<std::int64_t>{1, 3} : std::vector<std::int64_t>{export_batch};
  for (std::int64_t b : batches) {
    Tensor x = random_input(sample, b, gen);
    Tensor expect;
    {
      NoGradGuard ng;
      expect = net.forward(x);
    }
    auto outs = ort.run(path, {x});
    if (outs.size() != 1 || outs[0].shape() != expect.shape()) {
      std::cout << "onnxruntime: batch " << b << ": output shape " << (outs.empty() ? "none" : outs[0].shape().str())
                << " differs from anvil's " << expect.shape().str() << "\n";
      ok = false;
      continue;
    }
    const auto e = expect.to_vector<double>(), g = outs[0].to_vector<double>();
    double err = 0, scale = 0;
    for (std::size_t i = 0; i < e.size(); ++i) {
      err = std::max(err, std::abs(e[i] - g[i]));
      scale = std::max(scale, std::abs(e[i]));
    }
    const bool pass = err <= 1e-4 * std::max(1.0, scale);
    ok = ok && pass;
    std::cout << fmt::format("onnxruntime {}: batch {}: max abs error {:.3g} (output scale {:.3g}) {}\n",
                             kOnnxRuntimeNodeVersion, b, err, scale, pass ? "OK" : "FAILED");
  }
  net.set_train(was_training);
  return ok;
}

}  // namespace

int anvil_export_main(int argc, char** argv) {
  try {
    Args a = parse(argc, argv);
    Generator gen(a.seed);
    std::vector<std::int64_t> sample;
    auto net = build(a, gen, sample);
    if (!a.ckpt.empty()) {
      auto r = load_checkpoint_into_net(*net, a.ckpt);
      if (!r.param_not_load.empty()) {
        std::string names;
        for (const auto& n : r.param_not_load) names += (names.empty() ? "" : ", ") + n;
        throw Error("export: " + a.ckpt + " lacks parameters of " + net->type_name() + ": " + names);
      }
    }
    std::int64_t nparams = 0;
    for (const auto& [n, t] : net->parameters_and_names()) nparams += t.numel();
    ExportOptions o{.opset_version = a.opset, .dynamic_batch = !a.static_batch};
    o.external_data = a.external == "always" ? ExternalData::kAlways
                      : a.external == "never" ? ExternalData::kNever
                                              : ExternalData::kAuto;
    const auto t0 = std::chrono::steady_clock::now();
    ExportInfo info = export_network(*net, {random_input(sample, a.batch, gen)}, a.out, a.format, o);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << fmt::format("exported {} ({}, {} parameters{}) to {}: {} nodes, {} initializers, {:.1f} KiB, opset {}, "
                             "{} batch, {:.3f} s\n",
                             a.model, net->type_name(), nparams, a.ckpt.empty() ? ", random init" : " from " + a.ckpt,
                             info.path, info.num_nodes, info.num_initializers,
                             static_cast<double>(info.file_bytes) / 1024.0, a.opset,
                             a.static_batch ? "static" : "dynamic", secs);
    if (!info.data_path.empty()) std::cout << "external data: " << info.data_path << "\n";
    bool ok = true;
    if (a.check) {
      try {
        onnx::checker::check_model(info.path);
        std::cout << "onnx checker: OK\n";
      } catch (const std::exception& e) {
        std::cout << "onnx checker: FAILED: " << e.what() << "\n";
        ok = false;
      }
    }
    if (a.verify) ok = verify(*net, info.path, sample, !a.static_batch, a.batch, gen) && ok;
    return ok ? 0 : 1;
  } catch (const UsageError& e) {
    if (*e.what()) std::cerr << "anvil export: " << e.what() << "\n";
    std::cerr << kUsage;
    return std::string(e.what()).empty() ? 0 : 2;
  } catch (const std::exception& e) {
    std::cerr << "anvil export: " << e.what() << "\n";
    return 2;
  }
}
