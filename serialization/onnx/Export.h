// Exporting a trained network to ONNX (MindSpore `export(net, *inputs, file_name, file_format)`).
//
// How the graph is found: TRACED. export_network runs one forward pass of the network on the sample
// inputs under an ops::TraceScope (inference mode, no autograd) and turns every op it records into ONNX
// nodes. Values are followed by tensor identity: a traced op's input is the graph input, the output of
// an earlier op, a parameter or buffer of the network (found through parameters_and_names() and
// buffers_and_names(), and exported as an initializer under exactly that name), or else a constant
// (a tensor the forward created itself, frozen into the file as an initializer named "const_<k>").
// Consequences, as with any tracing exporter: Python-style control flow is recorded for the sample
// inputs only; computations done outside framework/ops (e.g. editing a tensor's memory in forward) are
// not seen (a tensor derived that way from the input is rejected, one that is not becomes a constant).
//
// The file: ONNX ModelProto, IR version 8, ai.onnx opset 13 by default (13..17 accepted), producer
// "anvil". Graph input "input" (or ExportOptions::input_names) with the sample's shape, the batch
// dimension as dim_param "N" unless dynamic_batch is off; graph output "output". Weights are streamed
// from the parameters' memory into the file (no second copy of the weights is built in memory); when
// they exceed what a protobuf message may hold (2 GiB), or when asked, tensors go to ONNX external
// data in "<file>.data" beside the model. Files are written atomically (temp file, fsync, rename).
//
// Layers: every cell of framework/nn that belongs in an inference graph exports (Dense, Conv2d with
// every pad mode / stride / dilation / group, MaxPool2d, AvgPool2d, BatchNorm2d — in inference form,
// with moving_mean / moving_variance as initializers —, ReLU, LeakyReLU, Sigmoid, Tanh, GELU, Flatten,
// Dropout (identity in inference), SequentialCell), as does every op of framework/ops used in a forward
// pass (linear, matmul, conv2d, pool2d, eltwise, softmax / log_softmax, add / sub / mul / div / max /
// min, sum / mean, reshape / flatten, batch_norm). Loss cells and any other leaf cell type fail before
// anything is traced, with an anvil::Error naming the cell's path and type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/nn/Cell.h"
#include "framework/tensor/Tensor.h"

namespace anvil {

/// When initializers go to ONNX external data ("<file>.data", offsets aligned to 4096 bytes).
enum class ExternalData {
  kAuto,    // only when the weights would make the ModelProto exceed 2 GiB (protobuf's limit)
  kAlways,  // every initializer of at least ExportOptions::external_min_bytes
  kNever,   // never; a model over 2 GiB is then an error
};

struct ExportOptions {
  /// ai.onnx opset version written in the file: 13 to 17 (ONNX 1.12's newest).
  std::int64_t opset_version = 13;
  /// Batch dimension (dim 0 of the input, and of the output when it has the input's batch size) as
  /// dim_param "N"; false writes the sample's batch size.
  bool dynamic_batch = true;
  /// Name of the graph input for each sample input; empty: "input" (then "input_1", ... for more).
  std::vector<std::string> input_names = {};
  /// Name of the graph output; empty: "output".
  std::string output_name = {};
  ExternalData external_data = ExternalData::kAuto;
  /// With external data, initializers smaller than this stay inside the ModelProto.
  std::uint64_t external_min_bytes = 1024;
  /// Leaf cell types (type_name()) outside framework/nn whose forward uses only traced ops of
  /// framework/ops: they are trusted instead of rejected by the cell check.
  std::vector<std::string> custom_cell_types = {};
  /// fsync the file(s) and the directory before returning (AtomicFile's durable mode).
  bool durable = true;
  /// ModelProto.doc_string; empty: none.
  std::string doc_string = {};
};

/// What export_network wrote.
struct ExportInfo {
  std::string path;                 // the .onnx file (file_name with ".onnx" appended when missing)
  std::string data_path;            // the external data file, or empty
  std::int64_t num_nodes = 0;       // ONNX nodes in the graph
  std::int64_t num_initializers = 0;
  std::uint64_t initializer_bytes = 0;  // tensor bytes of all initializers
  std::uint64_t file_bytes = 0;         // size of the .onnx file
};

/// Exports `net` to `file_name` in `file_format` (case-insensitive; only "ONNX" is supported: "GEIR",
/// "AIR", "MINDIR" and anything else throw anvil::Error "unsupported format ... (supported: ONNX)").
/// ".onnx" is appended to file_name unless it already ends in it (MindSpore's rule). `sample_inputs`
/// are example inputs with the shapes and dtype (float32 or float64, matching the network's weights)
/// the graph is traced with; Cell::forward takes one input, so exactly one is required.
/// The network is traced in inference mode; every cell's train/eval mode is restored afterwards (also
/// on error), and no gradient graph is recorded.
/// Errors (anvil::Error, nothing written): unsupported format or options, a leaf cell that cannot be
/// exported ("export_network: cell 'head.loss' of type 'MSELoss' cannot be exported to ONNX: ..."), a
/// traced op without an ONNX form, a model over 2 GiB with ExternalData::kNever; FileError for I/O.
ExportInfo export_network(nn::Cell& net, const std::vector<Tensor>& sample_inputs, const std::string& file_name,
                          const std::string& file_format = "ONNX", const ExportOptions& options = {});

/// Same as export_network; the spelling of MindSpore's `mindspore.export` (`export` is a C++ keyword).
inline ExportInfo export_model(nn::Cell& net, const std::vector<Tensor>& sample_inputs, const std::string& file_name,
                               const std::string& file_format = "ONNX", const ExportOptions& options = {}) {
  return export_network(net, sample_inputs, file_name, file_format, options);
}

/// The formats export_network writes: {"ONNX"}.
std::vector<std::string> supported_export_formats();

/// Leaf cell types of framework/nn that export (the set the cell check accepts), sorted.
std::vector<std::string> onnx_exportable_cell_types();

/// `file_name` with ".onnx" appended unless it already ends in ".onnx".
std::string onnx_path(const std::string& file_name);

}  // namespace anvil
