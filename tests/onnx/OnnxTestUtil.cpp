#include "tests/onnx/OnnxTestUtil.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include "tests/testutil/TempDir.h"

namespace anvil::testutil {

namespace fs = std::filesystem;

onnx::ModelProto load_onnx(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  onnx::ModelProto m;
  if (!m.ParseFromIstream(&in)) throw std::runtime_error("cannot parse " + path + " as an ONNX ModelProto");
  return m;
}

::testing::AssertionResult onnx_check(const std::string& path) {
  try {
    onnx::checker::check_model(path);
    onnx::ModelProto m = load_onnx(path);
    onnx::ShapeInferenceOptions opts(/*check_type=*/true, /*strict_mode=*/1, /*data_prop=*/false);
    onnx::shape_inference::InferShapes(m, onnx::OpSchemaRegistry::Instance(), opts);
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << path << ": " << e.what();
  }
  return ::testing::AssertionSuccess();
}

bool have_python_onnx() {
  static const bool have =
      fs::exists("/usr/bin/python3") && std::system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") == 0;
  return have;
}

::testing::AssertionResult python_full_check(const std::vector<std::string>& paths) {
  if (!have_python_onnx()) return ::testing::AssertionSuccess() << "python3-onnx not installed";
  TempDir dir;
  std::string args;
  int k = 0;
  for (const auto& p : paths) {
    // A separate folder per file keeps each external data file beside its model.
    const fs::path sub = dir.path() / std::to_string(k++);
    fs::create_directories(sub);
    fs::copy_file(p, sub / fs::path(p).filename());
    if (fs::exists(p + ".data")) fs::copy_file(p + ".data", sub / (fs::path(p).filename().string() + ".data"));
    args += " '" + (sub / fs::path(p).filename()).string() + "'";
  }
  const std::string log = dir.file("python.log");
  const std::string cmd =
      "/usr/bin/python3 -c 'import sys, onnx\nfor p in sys.argv[1:]: onnx.checker.check_model(p, full_check=True)'" +
      args + " >'" + log + "' 2>&1";
  if (std::system(cmd.c_str()) == 0) return ::testing::AssertionSuccess();
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return ::testing::AssertionFailure() << "python onnx.checker.check_model(full_check=True) failed: " << text;
}

namespace {
std::string& reason_storage() {
  static std::string r;
  return r;
}
}  // namespace

const std::string& ort_unavailable_reason() { return reason_storage(); }

OnnxRuntimeNode* shared_ort() {
  static std::unique_ptr<OnnxRuntimeNode> ort;
  static bool tried = false;
  static bool failed_hard = false;
  if (!tried) {
    tried = true;
    const auto st = find_onnxruntime_node(/*install=*/true);
    if (st.available) {
      ort = std::make_unique<OnnxRuntimeNode>(st);
    } else {
      reason_storage() = st.reason;
      const bool tools_missing = st.node.empty() || st.reason.rfind("npm not found", 0) == 0;
      const char* allow = std::getenv("ANVIL_ALLOW_NO_ORT");
      failed_hard = !tools_missing && !(allow && std::string(allow) == "1");
    }
  }
  if (!ort && failed_hard)
    ADD_FAILURE() << "node and npm are installed but ONNX Runtime is not usable (set ANVIL_ALLOW_NO_ORT=1 to skip "
                     "instead): "
                  << reason_storage();
  return ort.get();
}

ParityResult compare(const Tensor& expect, const Tensor& got) {
  ParityResult r;
  if (expect.shape() != got.shape()) {
    r.max_abs_err = std::numeric_limits<double>::infinity();
    return r;
  }
  const auto e = expect.to_vector<double>(), g = got.to_vector<double>();
  for (std::size_t i = 0; i < e.size(); ++i) {
    const double d = std::abs(e[i] - g[i]);
    r.max_abs_err = std::isnan(d) ? std::numeric_limits<double>::infinity() : std::max(r.max_abs_err, d);
    r.scale = std::max(r.scale, std::abs(e[i]));
  }
  return r;
}

}  // namespace anvil::testutil
