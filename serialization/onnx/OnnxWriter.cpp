#include "serialization/onnx/OnnxWriter.h"

#include <bit>
#include <filesystem>
#include <optional>

#include <onnx/onnx_pb.h>

#include "framework/core/Error.h"
#include "serialization/AtomicFile.h"

namespace anvil::onnx_export {
namespace {

// Protobuf wire format pieces for the fields written by hand (the repeated initializers).
constexpr std::uint8_t kTagModelGraph = (7 << 3) | 2;        // ModelProto.graph
constexpr std::uint8_t kTagGraphInitializer = (5 << 3) | 2;  // GraphProto.initializer
constexpr std::uint8_t kTagTensorRawData = (9 << 3) | 2;     // TensorProto.raw_data
constexpr std::uint64_t kExternalAlign = 4096;
// ONNX raw_data is little-endian; tensors are written straight from memory.
static_assert(std::endian::native == std::endian::little, "the ONNX writer assumes a little-endian host");

std::size_t varint_size(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void fill_value_info(onnx::ValueInfoProto* vi, const ValueInfo& v) {
  vi->set_name(v.name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx_data_type(v.dtype));
  auto* shape = tt->mutable_shape();  // the checker wants a shape on every graph input and output
  for (std::size_t i = 0; i < v.dims.size(); ++i) {
    auto* d = shape->add_dim();
    if (i == 0 && v.dynamic_batch)
      d->set_dim_param("N");
    else
      d->set_dim_value(v.dims[i]);
  }
}

void fill_node(onnx::NodeProto* np, const Node& n) {
  np->set_op_type(n.op_type);
  np->set_name(n.name);
  for (const auto& s : n.inputs) np->add_input(s);
  for (const auto& s : n.outputs) np->add_output(s);
  for (const Attr& a : n.attrs) {
    auto* ap = np->add_attribute();
    ap->set_name(a.name);
    switch (a.kind) {
      case Attr::Kind::kInt:
        ap->set_type(onnx::AttributeProto::INT);
        ap->set_i(a.i);
        break;
      case Attr::Kind::kFloat:
        ap->set_type(onnx::AttributeProto::FLOAT);
        ap->set_f(a.f);
        break;
      case Attr::Kind::kInts:
        ap->set_type(onnx::AttributeProto::INTS);
        for (auto v : a.ints) ap->add_ints(v);
        break;
    }
  }
}

// One initializer's TensorProto without its bytes, plus where the bytes go.
struct InitPlan {
  const Initializer* init = nullptr;
  std::string header;        // serialized TensorProto fields except raw_data
  std::uint64_t nbytes = 0;  // tensor bytes
  bool external = false;
  std::uint64_t offset = 0;  // in the data file, when external
  // Bytes of the GraphProto.initializer entry in the model file (tag + length + body).
  std::uint64_t entry_size() const {
    const std::uint64_t body = header.size() + (external ? 0 : 1 + varint_size(nbytes) + nbytes);
    return 1 + varint_size(body) + body;
  }
};

std::string tensor_header(const Initializer& init, const std::optional<std::pair<std::string, std::uint64_t>>& ext) {
  onnx::TensorProto tp;
  tp.set_name(init.name);
  for (auto d : init.tensor.shape().dims()) tp.add_dims(d);
  tp.set_data_type(onnx_data_type(init.tensor.dtype()));
  if (ext) {
    tp.set_data_location(onnx::TensorProto::EXTERNAL);
    auto add = [&](const char* k, const std::string& v) {
      auto* e = tp.add_external_data();
      e->set_key(k);
      e->set_value(v);
    };
    add("location", ext->first);
    add("offset", std::to_string(ext->second));
    add("length", std::to_string(init.tensor.nbytes()));
  }
  return tp.SerializeAsString();
}

}  // namespace

WriteResult write_model(const Graph& graph, const std::string& path, const WriteOptions& o) {
  // ---- everything but the initializers, through protobuf ----
  onnx::ModelProto model;
  model.set_ir_version(onnx::IR_VERSION);  // 8 in ONNX 1.12
  model.set_producer_name("anvil");
  model.set_producer_version("0.1.0");
  if (!o.doc_string.empty()) model.set_doc_string(o.doc_string);
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(o.opset_version);
  onnx::GraphProto g;
  g.set_name(graph.name);
  for (const Node& n : graph.nodes) fill_node(g.add_node(), n);
  for (const ValueInfo& v : graph.inputs) fill_value_info(g.add_input(), v);
  for (const ValueInfo& v : graph.outputs) fill_value_info(g.add_output(), v);
  const std::string model_bytes = model.SerializeAsString();  // no graph field yet
  const std::string graph_bytes = g.SerializeAsString();      // no initializers yet

  // ---- plan the initializers: inline or external ----
  std::vector<InitPlan> plans;
  std::uint64_t total_tensor_bytes = 0;
  for (const Initializer& init : graph.initializers) {
    ANVIL_EXPORT_CHECK(init.tensor.defined() && init.tensor.device().is_cpu(), "initializer '{}' is not in host memory",
                init.name);
    plans.push_back({.init = &init, .header = tensor_header(init, std::nullopt), .nbytes = init.tensor.nbytes()});
    total_tensor_bytes += init.tensor.nbytes();
  }
  auto model_size = [&] {
    std::uint64_t body = graph_bytes.size();
    for (const auto& p : plans) body += p.entry_size();
    return model_bytes.size() + 1 + varint_size(body) + body;
  };
  bool external = o.external_data == ExternalData::kAlways;
  if (o.external_data != ExternalData::kAlways && model_size() > o.max_inline_bytes) {
    ANVIL_EXPORT_CHECK(o.external_data == ExternalData::kAuto,
                "{}: the model needs {} bytes, more than a protobuf message may hold (2 GiB), and external data is "
                "off (ExternalData::kNever)",
                path, model_size());
    external = true;
  }
  WriteResult result;
  result.initializer_bytes = total_tensor_bytes;
  const std::string data_path = path + ".data";
  const std::string data_location = std::filesystem::path(data_path).filename().string();
  std::uint64_t data_size = 0;
  if (external) {
    for (auto& p : plans) {
      if (p.nbytes < o.external_min_bytes || p.nbytes == 0) continue;
      data_size = (data_size + kExternalAlign - 1) / kExternalAlign * kExternalAlign;
      p.external = true;
      p.offset = data_size;
      p.header = tensor_header(*p.init, std::make_pair(data_location, p.offset));
      data_size += p.nbytes;
    }
    ANVIL_EXPORT_CHECK(model_size() <= o.max_inline_bytes,
                "{}: {} bytes stay inside the model even with external data (lower external_min_bytes)",
                path, model_size());
  }

  AtomicFileOptions fo{.durable = o.durable};
  // ---- external data first, so that a committed model never points to a missing file ----
  std::optional<AtomicFile> data_file;
  if (external) {
    data_file.emplace(data_path, fo);
    static const std::vector<char> zeros(kExternalAlign, 0);
    std::uint64_t pos = 0;
    for (const auto& p : plans) {
      if (!p.external) continue;
      data_file->write(zeros.data(), static_cast<std::size_t>(p.offset - pos));
      data_file->write(p.init->tensor.data_ptr(), static_cast<std::size_t>(p.nbytes));
      pos = p.offset + p.nbytes;
    }
    data_file->finish();
  }

  // ---- the model: ModelProto fields, then one graph field written by hand ----
  AtomicFile file(path, fo);
  file.write(model_bytes);
  std::uint64_t graph_body = graph_bytes.size();
  for (const auto& p : plans) graph_body += p.entry_size();
  std::string head;
  head.push_back(static_cast<char>(kTagModelGraph));
  put_varint(head, graph_body);
  file.write(head);
  file.write(graph_bytes);
  for (const auto& p : plans) {
    const std::uint64_t body = p.header.size() + (p.external ? 0 : 1 + varint_size(p.nbytes) + p.nbytes);
    std::string pre;
    pre.push_back(static_cast<char>(kTagGraphInitializer));
    put_varint(pre, body);
    pre += p.header;
    if (!p.external) {
      pre.push_back(static_cast<char>(kTagTensorRawData));
      put_varint(pre, p.nbytes);
    }
    file.write(pre);
    // Little-endian host (x86-64, aarch64): the tensor's memory is ONNX's raw_data layout.
    if (!p.external && p.nbytes) file.write(p.init->tensor.data_ptr(), static_cast<std::size_t>(p.nbytes));
  }
  ANVIL_EXPORT_CHECK(file.size() == model_size(), "internal error: wrote {} bytes, planned {}", file.size(), model_size());
  if (data_file) data_file->commit();
  file.commit();
  result.file_bytes = file.size();
  if (external) result.data_path = data_path;
  return result;
}

}  // namespace anvil::onnx_export
