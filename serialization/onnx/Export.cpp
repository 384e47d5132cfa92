#include "serialization/onnx/Export.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "framework/autograd/GradMode.h"
#include "framework/core/Error.h"
#include "framework/nn/losses/LossCell.h"
#include "framework/ops/Trace.h"
#include "serialization/onnx/OnnxGraph.h"
#include "serialization/onnx/OnnxWriter.h"

namespace anvil {
namespace {

// Leaf cells of framework/nn whose forward is made of exportable ops (Dropout records nothing in
// inference). Loss cells are deliberately absent: they are not part of an inference graph.
const std::set<std::string>& exportable_types() {
  static const std::set<std::string> types{"AvgPool2d", "BatchNorm2d", "Conv2d",         "Dense",   "Dropout",
                                           "Flatten",   "GELU",        "LeakyReLU",      "MaxPool2d", "ReLU",
                                           "SequentialCell", "Sigmoid", "Tanh",
                                           // issue 7: Conv1d (Reshape + Conv), Dropout2d (identity in
                                           // inference), Embedding (Gather), GlobalAvgPool (ReduceMean),
                                           // LayerNorm (LayerNormalization at opset 17, else decomposed)
                                           "Conv1d", "Dropout2d", "Embedding", "GlobalAvgPool", "LayerNorm"};
  return types;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::string cell_path(const std::string& name) { return name.empty() ? "(root)" : name; }

// Rejects, before anything runs, every leaf cell that cannot be exported.
void check_cells(nn::Cell& net, const ExportOptions& o) {
  const auto& known = exportable_types();
  for (auto& [name, cell] : net.cells_and_names()) {
    if (!cell->children().empty()) continue;  // composite: its children are checked, its own ops traced
    const std::string type = cell->type_name();
    if (known.count(type) ||
        std::find(o.custom_cell_types.begin(), o.custom_cell_types.end(), type) != o.custom_cell_types.end())
      continue;
    if (dynamic_cast<nn::LossCell*>(cell))
      ANVIL_EXPORT_THROW("cell '{}' of type '{}' cannot be exported to ONNX: it is a loss cell, not part of an inference "
                  "graph (export the network without its loss)",
                  cell_path(name), type);
    ANVIL_EXPORT_THROW("cell '{}' of type '{}' cannot be exported to ONNX: no ONNX mapping for this cell type (exportable: "
                "{}; a custom cell whose forward uses only framework/ops may be listed in "
                "ExportOptions::custom_cell_types)",
                cell_path(name), type, joined(onnx_exportable_cell_types()));
  }
}

// Puts every cell in inference mode and restores each cell's own mode when destroyed.
class InferenceModeGuard {
 public:
  explicit InferenceModeGuard(nn::Cell& net) : root_(net) {
    for (auto& [name, cell] : net.cells_and_names()) modes_.emplace_back(cell, cell->training());
    net.set_train(false);
  }
  ~InferenceModeGuard() {
    // set_train recurses; pre-order (parents before children) leaves every cell with its own mode.
    const bool uniform = std::all_of(modes_.begin(), modes_.end(),
                                     [&](const auto& m) { return m.second == modes_.front().second; });
    if (uniform) {
      root_.set_train(modes_.front().second);
      return;
    }
    for (auto& [cell, mode] : modes_) cell->set_train(mode);
  }
  InferenceModeGuard(const InferenceModeGuard&) = delete;
  InferenceModeGuard& operator=(const InferenceModeGuard&) = delete;

 private:
  nn::Cell& root_;
  std::vector<std::pair<nn::Cell*, bool>> modes_;
};

ExportInfo export_onnx(nn::Cell& net, const std::vector<Tensor>& inputs, const std::string& file_name,
                       const ExportOptions& o) {
  ANVIL_EXPORT_CHECK(o.opset_version >= 13 && o.opset_version <= 17,
              "opset_version {} is not supported (13 to 17; ONNX 1.12 knows opsets up to 17)", o.opset_version);
  ANVIL_EXPORT_CHECK(inputs.size() == 1, "Cell::forward takes one input; got {} sample inputs", inputs.size());
  ANVIL_EXPORT_CHECK(o.input_names.empty() || o.input_names.size() == inputs.size(),
              "{} input names for {} sample inputs", o.input_names.size(), inputs.size());
  for (const auto& x : inputs) {
    ANVIL_EXPORT_CHECK(x.defined(), "sample input is undefined");
    ANVIL_EXPORT_CHECK(x.device().is_cpu(), "sample input {} is not in host memory", x.desc());
  }
  // Export traces a forward pass on the host and streams the weights from host memory.
  for (const auto& [name, t] : net.state_dict())
    ANVIL_EXPORT_CHECK(t.device().is_cpu(),
                       "parameter '{}' {} is on {}: export runs on the host; move the network there first with "
                       "Cell::to(Device::cpu())",
                       name, t.desc(), t.device().str());
  ANVIL_EXPORT_CHECK(!file_name.empty(), "file_name is empty");
  check_cells(net, o);

  const std::string context = fmt::format("network '{}'", net.type_name());
  onnx_export::Graph graph;
  {
    InferenceModeGuard mode(net);
    NoGradGuard no_grad;
    onnx_export::GraphBuilder builder(net, o.opset_version, context);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      std::string name = !o.input_names.empty() ? o.input_names[i] : i == 0 ? "input" : "input_" + std::to_string(i);
      builder.add_input(inputs[i], name, o.dynamic_batch);
    }
    Tensor y;
    try {
      ops::TraceScope scope(builder);
      y = net.forward(inputs[0]);
    } catch (const Error& e) {
      const std::string what = e.what();
      if (what.rfind("export_network:", 0) == 0) throw;  // the builder's own errors
      ANVIL_EXPORT_THROW("the forward of {} failed on sample input {}: {}", context, inputs[0].desc(), what);
    }
    graph = builder.finish(y, o.output_name.empty() ? "output" : o.output_name, o.dynamic_batch);
  }

  ExportInfo info;
  info.path = onnx_path(file_name);
  auto written = onnx_export::write_model(graph, info.path,
                                          {.opset_version = o.opset_version,
                                           .external_data = o.external_data,
                                           .external_min_bytes = o.external_min_bytes,
                                           .durable = o.durable,
                                           .doc_string = o.doc_string});
  info.data_path = written.data_path;
  info.num_nodes = static_cast<std::int64_t>(graph.nodes.size());
  info.num_initializers = static_cast<std::int64_t>(graph.initializers.size());
  info.initializer_bytes = written.initializer_bytes;
  info.file_bytes = written.file_bytes;
  return info;
}

}  // namespace

std::vector<std::string> supported_export_formats() { return {"ONNX"}; }

std::vector<std::string> onnx_exportable_cell_types() {
  return {exportable_types().begin(), exportable_types().end()};
}

std::string onnx_path(const std::string& file_name) {
  const std::string ext = ".onnx";
  if (file_name.size() >= ext.size() && file_name.compare(file_name.size() - ext.size(), ext.size(), ext) == 0)
    return file_name;
  return file_name + ext;
}

ExportInfo export_network(nn::Cell& net, const std::vector<Tensor>& sample_inputs, const std::string& file_name,
                          const std::string& file_format, const ExportOptions& options) {
  const std::string fmt_upper = upper(file_format);
  if (fmt_upper != "ONNX") {
    const bool mindspore_only = fmt_upper == "GEIR" || fmt_upper == "AIR" || fmt_upper == "MINDIR";
    ANVIL_EXPORT_THROW("unsupported format '{}'{} (supported: {})", file_format,
                mindspore_only ? " (a MindSpore/Ascend format that Anvil does not write)" : "",
                joined(supported_export_formats()));
  }
  return export_onnx(net, sample_inputs, file_name, options);
}

}  // namespace anvil
