// ONNX Runtime as an independent checker of exported files, through Node.js and npm's
// `onnxruntime-node` (CPU execution provider).
//
// The package lives in a cache folder outside any build tree, so that CI installs it once:
//   $ANVIL_NPM_CACHE, else $XDG_CACHE_HOME/anvil/npm, else $HOME/.cache/anvil/npm
// (node_modules/ below it). It is installed with its download step skipped (`npm install
// --ignore-scripts`: the CPU binaries ship in the package; the install script only fetches GPU
// providers), by find_onnxruntime_node(true) or by tools/onnx_install_ort.sh (same folder, same
// version). The runner is a small node script embedded in the library (see OnnxRuntimeNode.cpp) that
// one long-lived node process executes: each run() sends one request line over a socket and exchanges
// tensors through files in a private temporary folder.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "framework/tensor/Tensor.h"

namespace anvil {

/// The npm version of onnxruntime-node installed and expected.
inline constexpr const char* kOnnxRuntimeNodeVersion = "1.30.0";

/// The cache folder described above (not created).
std::string onnxruntime_node_cache_dir();

struct OnnxRuntimeNodeStatus {
  bool available = false;
  std::string node;          // path of the node executable ($ANVIL_NODE or node on PATH)
  std::string node_modules;  // folder holding onnxruntime-node (set as NODE_PATH)
  std::string reason;        // why it is not available ("node not found on PATH", the npm error, ...)
};

/// Looks for node and for onnxruntime-node in the cache, and checks that the package loads. When the
/// package is missing, `install` is true and npm is on PATH, installs kOnnxRuntimeNodeVersion into the
/// cache first (`npm install --ignore-scripts`; concurrent callers serialize on a lock file in the
/// cache). Never throws: failures are reported in `reason`.
OnnxRuntimeNodeStatus find_onnxruntime_node(bool install = true);

/// A node process running ONNX Runtime sessions. Not thread-safe; one request at a time.
class OnnxRuntimeNode {
 public:
  /// Starts the process. Throws anvil::Error when `status` is not available or node cannot start.
  explicit OnnxRuntimeNode(const OnnxRuntimeNodeStatus& status);
  /// Closes the process's input, waits for it (killing it after a few seconds) and removes the
  /// temporary folder. Never throws.
  ~OnnxRuntimeNode();
  OnnxRuntimeNode(const OnnxRuntimeNode&) = delete;
  OnnxRuntimeNode& operator=(const OnnxRuntimeNode&) = delete;

  /// Runs the ONNX file `model_path` with `inputs` (contiguous host tensors of float32, float64, int32 or
  /// int64), fed to the model's inputs in their declared order, and returns its outputs in order.
  /// A session is cached per file (path, size and modification time), so repeated runs of one model
  /// load it once. Throws anvil::Error with ONNX Runtime's message when the session or the run fails,
  /// or when no answer comes within `timeout_s` seconds (the process is then unusable).
  std::vector<Tensor> run(const std::string& model_path, const std::vector<Tensor>& inputs, int timeout_s = 300);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anvil
