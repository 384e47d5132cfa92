// Helpers of the ONNX export tests: checking exported files (C++ checker, strict shape inference,
// Debian's python3-onnx when installed) and comparing ONNX Runtime with Anvil.
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "framework/nn/Cell.h"
#include "serialization/onnx/OnnxRuntimeNode.h"

namespace anvil::testutil {

/// Parses an ONNX file with ONNX's protobuf classes (throws std::runtime_error on failure).
onnx::ModelProto load_onnx(const std::string& path);

/// onnx::checker::check_model on the file, then strict shape inference with type checks (what
/// python's check_model(full_check=True) adds).
::testing::AssertionResult onnx_check(const std::string& path);

/// True when /usr/bin/python3 can import onnx (python3-onnx).
bool have_python_onnx();
/// `onnx.checker.check_model(path, full_check=True)` in /usr/bin/python3 for each file (one process;
/// runs on copies, because full_check on a path rewrites the file with inferred shapes).
::testing::AssertionResult python_full_check(const std::vector<std::string>& paths);

/// The process-wide ONNX Runtime runner, started on first use; null when node/npm is missing (then
/// ort_unavailable_reason() says why). When node and npm exist but onnxruntime-node cannot be installed
/// or loaded this FAILS the calling test (CI must run the parity tests) unless ANVIL_ALLOW_NO_ORT=1.
OnnxRuntimeNode* shared_ort();
const std::string& ort_unavailable_reason();

struct ParityResult {
  double max_abs_err = 0;
  double scale = 0;  // max |anvil output|
  bool ok(double rel = 1e-4) const { return max_abs_err <= rel * scale; }
};
/// Max abs difference between `expect` and `got` (shapes must agree; mismatch -> infinite error).
ParityResult compare(const Tensor& expect, const Tensor& got);

}  // namespace anvil::testutil

/// Skips the test with a visible message when node or npm is not installed.
#define ANVIL_SKIP_WITHOUT_ORT()                                                                          \
  do {                                                                                                    \
    if (!::anvil::testutil::shared_ort()) {                                                               \
      if (::testing::Test::HasFailure()) return;                                                          \
      GTEST_SKIP() << "ONNX Runtime parity test skipped: " << ::anvil::testutil::ort_unavailable_reason(); \
    }                                                                                                     \
  } while (0)
