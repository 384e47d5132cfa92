// Internal to serialization/onnx: writes an onnx_export::Graph as an ONNX ModelProto file, streaming
// every initializer's bytes straight from its tensor's memory (protobuf's own serializer would need
// the whole message, weights included, in memory first).
#pragma once

#include <cstdint>
#include <string>

#include "serialization/onnx/Export.h"
#include "serialization/onnx/OnnxGraph.h"

namespace anvil::onnx_export {

/// Largest ModelProto written without external data under ExternalData::kAuto (protobuf refuses to
/// parse messages of 2 GiB or more; a margin is kept for the graph itself).
constexpr std::uint64_t kMaxInlineModelBytes = (std::uint64_t{1} << 31) - (std::uint64_t{1} << 20);

struct WriteOptions {
  std::int64_t opset_version = 13;
  ExternalData external_data = ExternalData::kAuto;
  std::uint64_t external_min_bytes = 1024;
  bool durable = true;
  std::string doc_string{};
  /// The ModelProto size limit (tests lower it to exercise kAuto and kNever without 2 GiB of weights).
  std::uint64_t max_inline_bytes = kMaxInlineModelBytes;
};

struct WriteResult {
  std::string data_path;  // external data file, or empty
  std::uint64_t file_bytes = 0;
  std::uint64_t initializer_bytes = 0;
};

/// Writes `graph` to `path` (and, with external data, "<path>.data"), each through an AtomicFile; the
/// data file is committed before the model. Throws anvil::Error for tensors not in host memory or a
/// model over 2 GiB with ExternalData::kNever; FileError for I/O.
WriteResult write_model(const Graph& graph, const std::string& path, const WriteOptions& options);

}  // namespace anvil::onnx_export
