// Internal to serialization/onnx: the ONNX graph as plain data (no ONNX/protobuf types), and the op
// tracer that builds it from a forward pass. Export.cpp drives it; OnnxWriter turns it into a file.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "framework/core/Error.h"
#include "framework/nn/Cell.h"
#include "framework/ops/Trace.h"
#include "framework/tensor/Tensor.h"

// Errors of the exporter name the public entry point, whichever internal function raises them.
#define ANVIL_EXPORT_THROW(...) ::anvil::detail::throw_error("export_network", ::fmt::format(__VA_ARGS__))
#define ANVIL_EXPORT_CHECK(cond, ...)        \
  do {                                       \
    if (!(cond)) ANVIL_EXPORT_THROW(__VA_ARGS__); \
  } while (0)

namespace anvil::onnx_export {

/// One ONNX node attribute (the kinds the exporter needs).
struct Attr {
  enum class Kind { kInt, kFloat, kInts };
  std::string name;
  Kind kind = Kind::kInt;
  std::int64_t i = 0;
  float f = 0;
  std::vector<std::int64_t> ints{};
};

/// One ONNX node (domain ai.onnx).
struct Node {
  std::string op_type;
  std::string name;
  std::vector<std::string> inputs;  // "" for an absent optional input
  std::vector<std::string> outputs;
  std::vector<Attr> attrs{};
};

/// A named tensor stored in the file. `tensor` is a handle: the writer streams its memory.
struct Initializer {
  std::string name;
  Tensor tensor;
};

/// A graph input or output: element type and shape; dims[0] is written as dim_param "N" when
/// `dynamic_batch` is set.
struct ValueInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<std::int64_t> dims;
  bool dynamic_batch = false;
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;
  std::vector<Initializer> initializers;
  std::vector<ValueInfo> inputs, outputs;
};

/// ONNX TensorProto.DataType code of `dtype` (FLOAT, DOUBLE, INT32, INT64, ...); throws for dtypes ONNX
/// export does not handle.
int onnx_data_type(DType dtype);

/// Turns the ops traced during a forward pass into a Graph. Use: add_input() for every sample input,
/// run the forward under ops::TraceScope(builder), then finish() with the forward's result.
///
/// Values are tracked by TensorImpl identity. Intermediate results are held only weakly (a freed
/// activation's address may be reused by a later tensor without confusion), so a trace keeps no more
/// activations alive than the forward pass itself.
class GraphBuilder final : public ops::OpTracer {
 public:
  /// `net` provides parameter and buffer names (exported as initializers under those names);
  /// `context` names the network in error messages ("'(root)' of type 'ResNet'").
  GraphBuilder(const nn::Cell& net, std::int64_t opset, std::string context);

  /// Declares a graph input.
  void add_input(const Tensor& x, const std::string& name, bool dynamic_batch);
  /// Converts one traced op into ONNX nodes. Throws anvil::Error for ops without an ONNX form.
  void on_op(const ops::TracedOp& op) override;
  /// Declares `y` as the graph output named `name`, drops nodes and initializers the output does not
  /// depend on, and returns the graph. The builder must not be used afterwards.
  Graph finish(const Tensor& y, const std::string& name, bool dynamic_batch);

 private:
  struct Value {
    std::weak_ptr<TensorImpl> impl;
    std::string name;
  };
  std::string value_name(const Tensor& t);
  std::string fresh(const std::string& base);
  std::string new_output(const std::string& op_type);
  Node& add_node(const std::string& op_type, std::vector<std::string> inputs, std::vector<std::string> outputs);
  std::string scalar_const(double value, DType dtype);
  std::string ints_const(const std::vector<std::int64_t>& values);
  void bind(const Tensor& t, const std::string& name);
  bool derived_from_traced(const Tensor& t) const;
  [[noreturn]] void unsupported(const std::string& what) const;

  std::int64_t opset_;
  std::string context_;
  std::unordered_map<const TensorImpl*, std::string> params_;  // parameters and buffers (kept alive by net)
  std::unordered_map<const TensorImpl*, Value> values_;        // graph inputs and op outputs
  std::unordered_map<const Storage*, std::weak_ptr<Storage>> traced_storage_;
  std::unordered_map<const TensorImpl*, std::string> consts_;  // constants met in the trace
  std::map<std::pair<double, int>, std::string> scalar_consts_;
  std::vector<Initializer> initializers_;                      // in order of first use
  std::set<std::string> initializer_names_;
  std::set<std::string> used_names_;
  std::set<std::string> param_names_;
  std::set<std::string> graph_input_names_;
  Graph graph_;
  std::int64_t counter_ = 0;
  std::int64_t sample_batch_ = -1;
};

}  // namespace anvil::onnx_export
