#include "serialization/onnx/OnnxGraph.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "framework/core/Error.h"

namespace anvil::onnx_export {
namespace {

const char* op_kind_name(ops::OpKind k) {
  switch (k) {
    case ops::OpKind::kLinear: return "linear";
    case ops::OpKind::kMatmul: return "matmul";
    case ops::OpKind::kConv2d: return "conv2d";
    case ops::OpKind::kPool2d: return "pool2d";
    case ops::OpKind::kEltwise: return "eltwise";
    case ops::OpKind::kSoftmax: return "softmax";
    case ops::OpKind::kBinary: return "binary";
    case ops::OpKind::kReduce: return "reduce";
    case ops::OpKind::kReshape: return "reshape";
    case ops::OpKind::kBatchNorm: return "batch_norm";
    case ops::OpKind::kDropout: return "dropout";
    case ops::OpKind::kSoftmaxCrossEntropy: return "softmax_cross_entropy";
    case ops::OpKind::kLayerNorm: return "layer_norm";
    case ops::OpKind::kEmbedding: return "embedding";
  }
  return "?";
}

Attr int_attr(std::string name, std::int64_t v) { return {.name = std::move(name), .kind = Attr::Kind::kInt, .i = v}; }
Attr float_attr(std::string name, double v) {
  return {.name = std::move(name), .kind = Attr::Kind::kFloat, .f = static_cast<float>(v)};
}
Attr ints_attr(std::string name, std::vector<std::int64_t> v) {
  return {.name = std::move(name), .kind = Attr::Kind::kInts, .ints = std::move(v)};
}

}  // namespace

int onnx_data_type(DType dtype) {
  // Codes of onnx.proto's TensorProto.DataType.
  switch (dtype) {
    case DType::kF32: return 1;
    case DType::kU8: return 2;
    case DType::kI8: return 3;
    case DType::kU16: return 4;
    case DType::kI16: return 5;
    case DType::kI32: return 6;
    case DType::kI64: return 7;
    case DType::kBool: return 9;
    case DType::kF16: return 10;
    case DType::kF64: return 11;
    case DType::kU32: return 12;
    case DType::kU64: return 13;
    case DType::kComplex64: return 14;
    case DType::kComplex128: return 15;
    case DType::kBF16: return 16;
  }
  ANVIL_EXPORT_THROW("dtype {} has no ONNX element type", dtype_name(dtype));
}

GraphBuilder::GraphBuilder(const nn::Cell& net, std::int64_t opset, std::string context)
    : opset_(opset), context_(std::move(context)) {
  for (const auto& group : {net.parameters_and_names(), net.buffers_and_names()})
    for (const auto& [name, t] : group) {
      if (!t.defined()) continue;
      params_.emplace(t.impl(), name);  // a tensor registered twice keeps its first name
      param_names_.insert(name);
      used_names_.insert(name);
    }
  graph_.name = "anvil";
}

std::string GraphBuilder::fresh(const std::string& base) {
  std::string name = base;
  for (int k = 1; used_names_.count(name); ++k) name = base + "_" + std::to_string(k);
  used_names_.insert(name);
  return name;
}

void GraphBuilder::bind(const Tensor& t, const std::string& name) {
  values_[t.impl()] = Value{t.impl_ptr(), name};
  const auto& st = t.impl()->storage;
  if (st) traced_storage_[st.get()] = st;
}

void GraphBuilder::add_input(const Tensor& x, const std::string& name, bool dynamic_batch) {
  ANVIL_EXPORT_CHECK(x.defined(), "sample input '{}' is undefined", name);
  ANVIL_EXPORT_CHECK(!used_names_.count(name), "input name '{}' collides with a parameter or another input", name);
  used_names_.insert(name);
  graph_input_names_.insert(name);
  bind(x, name);
  if (sample_batch_ < 0 && x.rank() > 0) sample_batch_ = x.dim(0);
  graph_.inputs.push_back({.name = name, .dtype = x.dtype(), .dims = x.shape().dims(),
                           .dynamic_batch = dynamic_batch && x.rank() > 0});
}

bool GraphBuilder::derived_from_traced(const Tensor& t) const {
  const auto& st = t.impl()->storage;
  if (!st) return false;
  auto it = traced_storage_.find(st.get());
  return it != traced_storage_.end() && !it->second.expired();
}

std::string GraphBuilder::value_name(const Tensor& t) {
  if (!t.defined()) return "";
  const TensorImpl* key = t.impl();
  if (auto p = params_.find(key); p != params_.end()) {
    if (initializer_names_.insert(p->second).second) initializers_.push_back({p->second, t});
    return p->second;
  }
  if (auto v = values_.find(key); v != values_.end()) {
    // A live weak reference proves the address still belongs to the tensor we named.
    if (auto alive = v->second.impl.lock(); alive && alive.get() == key) return v->second.name;
    values_.erase(v);
  }
  if (auto c = consts_.find(key); c != consts_.end()) return c->second;
  ANVIL_EXPORT_CHECK(!derived_from_traced(t),
              "in the forward of {}: tensor {} shares memory with the input or a traced result but was not produced "
              "by a traced op (a view or in-place edit outside framework/ops cannot be exported)",
              context_, t.desc());
  ANVIL_EXPORT_CHECK(t.device().is_cpu(), "in the forward of {}: constant {} is not in host memory", context_, t.desc());
  // A tensor the forward created itself: frozen as a constant. The initializer holds the handle, which
  // also keeps the address from being reused by a later tensor during the trace.
  const std::string name = fresh("const_" + std::to_string(consts_.size()));
  consts_.emplace(key, name);
  initializer_names_.insert(name);
  initializers_.push_back({name, t});
  return name;
}

std::string GraphBuilder::scalar_const(double value, DType dtype) {
  auto key = std::make_pair(value, static_cast<int>(dtype));
  if (auto it = scalar_consts_.find(key); it != scalar_consts_.end()) return it->second;
  const std::string name = fresh("const_" + std::to_string(scalar_consts_.size() + consts_.size()) + "_scalar");
  initializer_names_.insert(name);
  initializers_.push_back({name, Tensor::full(Shape{}, value, dtype)});
  scalar_consts_.emplace(key, name);
  return name;
}

std::string GraphBuilder::ints_const(const std::vector<std::int64_t>& values) {
  const std::string name = fresh("const_shape_" + std::to_string(counter_));
  initializer_names_.insert(name);
  initializers_.push_back({name, Tensor::from_vector<std::int64_t>(values, Shape{static_cast<std::int64_t>(values.size())})});
  return name;
}

Node& GraphBuilder::add_node(const std::string& op_type, std::vector<std::string> inputs,
                             std::vector<std::string> outputs) {
  graph_.nodes.push_back({.op_type = op_type, .name = fresh(op_type + "_" + std::to_string(counter_++)),
                          .inputs = std::move(inputs), .outputs = std::move(outputs)});
  return graph_.nodes.back();
}

std::string GraphBuilder::new_output(const std::string& op_type) {
  return fresh(op_type + "_" + std::to_string(counter_) + "_out");
}

void GraphBuilder::unsupported(const std::string& what) const {
  ANVIL_EXPORT_THROW("in the forward of {}: {} has no ONNX form", context_, what);
}

void GraphBuilder::on_op(const ops::TracedOp& op) {
  using ops::OpKind;
  std::vector<std::string> in;
  for (const Tensor& t : op.inputs) in.push_back(value_name(t));
  const DType dt = op.output.dtype();
  std::string out;
  switch (op.kind) {
    case OpKind::kLinear: {  // y [N, O] = x [N, I] · wᵀ + b
      out = new_output("Gemm");
      std::vector<std::string> args{in[0], in[1]};
      if (!in[2].empty()) args.push_back(in[2]);
      add_node("Gemm", args, {out}).attrs = {int_attr("transB", 1)};
      break;
    }
    case OpKind::kMatmul: {
      std::string a = in[0], b = in[1];
      auto transposed = [&](const std::string& v, std::size_t rank) {
        std::vector<std::int64_t> perm(rank);
        std::iota(perm.begin(), perm.end(), 0);
        std::swap(perm[rank - 1], perm[rank - 2]);
        std::string t = fresh("Transpose_" + std::to_string(counter_) + "_out");
        add_node("Transpose", {v}, {t}).attrs = {ints_attr("perm", perm)};
        return t;
      };
      if (op.trans_a) a = transposed(a, op.inputs[0].rank());
      if (op.trans_b) b = transposed(b, op.inputs[1].rank());
      out = new_output("MatMul");
      add_node("MatMul", {a, b}, {out});
      break;
    }
    case OpKind::kConv2d: {  // x [N, C, H, W], w [K, C/g, R, S]
      const auto& p = op.conv;
      const Shape& w = op.inputs[1].shape();
      out = new_output("Conv");
      std::vector<std::string> args{in[0], in[1]};
      if (!in[2].empty()) args.push_back(in[2]);
      add_node("Conv", args, {out}).attrs = {
          ints_attr("kernel_shape", {w[2], w[3]}), ints_attr("strides", {p.stride_h, p.stride_w}),
          ints_attr("pads", {p.pad_top, p.pad_left, p.pad_bottom, p.pad_right}),
          ints_attr("dilations", {p.dilation_h, p.dilation_w}), int_attr("group", p.groups)};
      break;
    }
    case OpKind::kPool2d: {
      const auto& p = op.pool;
      // ONNX Runtime rejects pads >= kernel; Anvil's pad modes never produce them.
      if (p.pad_top >= p.kernel_h || p.pad_bottom >= p.kernel_h || p.pad_left >= p.kernel_w ||
          p.pad_right >= p.kernel_w)
        unsupported(fmt::format("pool2d with padding ({},{},{},{}) not smaller than its {}x{} window", p.pad_top,
                                p.pad_left, p.pad_bottom, p.pad_right, p.kernel_h, p.kernel_w));
      const bool max = p.kind == PoolKind::kMax;
      const std::string type = max ? "MaxPool" : "AveragePool";
      out = new_output(type);
      Node& n = add_node(type, {in[0]}, {out});
      n.attrs = {ints_attr("kernel_shape", {p.kernel_h, p.kernel_w}), ints_attr("strides", {p.stride_h, p.stride_w}),
                 ints_attr("pads", {p.pad_top, p.pad_left, p.pad_bottom, p.pad_right})};
      if (!max) n.attrs.push_back(int_attr("count_include_pad", p.count_include_pad ? 1 : 0));
      break;
    }
    case OpKind::kEltwise: {
      auto unary = [&](const std::string& type) {
        out = new_output(type);
        add_node(type, {in[0]}, {out});
      };
      switch (op.eltwise) {
        case EltwiseKind::kRelu:
          if (op.alpha == 0) {
            unary("Relu");
          } else {
            out = new_output("LeakyRelu");
            add_node("LeakyRelu", {in[0]}, {out}).attrs = {float_attr("alpha", op.alpha)};
          }
          break;
        case EltwiseKind::kSigmoid: unary("Sigmoid"); break;
        case EltwiseKind::kTanh: unary("Tanh"); break;
        case EltwiseKind::kExp: unary("Exp"); break;
        case EltwiseKind::kLog: unary("Log"); break;
        case EltwiseKind::kSqrt: unary("Sqrt"); break;
        case EltwiseKind::kAbs: unary("Abs"); break;
        case EltwiseKind::kSquare:
          out = new_output("Mul");
          add_node("Mul", {in[0], in[0]}, {out});
          break;
        case EltwiseKind::kGelu: {
          // Opsets <= 17 have no Gelu: 0.5 · x · (1 + erf(x / √2)), the exact form Anvil computes.
          const std::string s = fresh("Gelu_" + std::to_string(counter_) + "_div");
          add_node("Div", {in[0], scalar_const(std::sqrt(2.0), dt)}, {s});
          const std::string e = fresh("Gelu_" + std::to_string(counter_) + "_erf");
          add_node("Erf", {s}, {e});
          const std::string a = fresh("Gelu_" + std::to_string(counter_) + "_add");
          add_node("Add", {e, scalar_const(1.0, dt)}, {a});
          const std::string m = fresh("Gelu_" + std::to_string(counter_) + "_mul");
          add_node("Mul", {in[0], a}, {m});
          out = new_output("Gelu");
          add_node("Mul", {m, scalar_const(0.5, dt)}, {out});
          break;
        }
        case EltwiseKind::kLinear: {  // alpha · x + beta
          std::string v = in[0];
          if (op.alpha != 1.0) {
            const std::string t = fresh("Mul_" + std::to_string(counter_) + "_out");
            add_node("Mul", {v, scalar_const(op.alpha, dt)}, {t});
            v = t;
          }
          if (op.beta != 0.0) {
            const std::string t = fresh("Add_" + std::to_string(counter_) + "_out");
            add_node("Add", {v, scalar_const(op.beta, dt)}, {t});
            v = t;
          }
          if (v == in[0]) {
            out = new_output("Identity");
            add_node("Identity", {v}, {out});
          } else {
            out = v;
          }
          break;
        }
      }
      break;
    }
    case OpKind::kSoftmax: {
      const std::string type = op.log ? "LogSoftmax" : "Softmax";
      out = new_output(type);
      add_node(type, {in[0]}, {out}).attrs = {int_attr("axis", op.axis)};
      break;
    }
    case OpKind::kBinary: {
      const char* type = "Add";
      switch (op.binary) {
        case BinaryKind::kAdd: type = "Add"; break;
        case BinaryKind::kSub: type = "Sub"; break;
        case BinaryKind::kMul: type = "Mul"; break;
        case BinaryKind::kDiv: type = "Div"; break;
        case BinaryKind::kMax: type = "Max"; break;
        case BinaryKind::kMin: type = "Min"; break;
      }
      out = new_output(type);
      add_node(type, {in[0], in[1]}, {out});
      break;
    }
    case OpKind::kReduce: {
      const bool mean = op.reduce == ReduceKind::kMean;
      if (!mean && op.reduce != ReduceKind::kSum) unsupported("a max/min reduction");
      const std::int64_t keep = op.keepdim ? 1 : 0;
      if (mean) {  // opsets 13..17: axes is an attribute
        out = new_output("ReduceMean");
        add_node("ReduceMean", {in[0]}, {out}).attrs = {ints_attr("axes", op.axes), int_attr("keepdims", keep)};
      } else {  // opset >= 13: axes is an input
        const std::string axes = ints_const(op.axes);
        out = new_output("ReduceSum");
        add_node("ReduceSum", {in[0], axes}, {out}).attrs = {int_attr("keepdims", keep)};
      }
      break;
    }
    case OpKind::kReshape: {
      const Shape& xs = op.inputs[0].shape();
      const Shape& ys = op.output.shape();
      if (xs.rank() >= 2 && ys.rank() == 2 && xs[0] == ys[0]) {  // [N, ...] -> [N, prod(...)]
        out = new_output("Flatten");
        add_node("Flatten", {in[0]}, {out}).attrs = {int_attr("axis", 1)};
        break;
      }
      std::vector<std::int64_t> target = ys.dims();
      // Keep the batch dimension symbolic: 0 copies the input's dim 0 when the batch passes through
      // unchanged; otherwise the batch is assumed to be folded into the new dim 0 (-1, inferred).
      if (!target.empty() && xs.rank() > 0) {
        if (xs[0] == ys[0]) target[0] = 0;
        else if (xs[0] == sample_batch_) target[0] = -1;
      }
      const std::string shape = ints_const(target);
      out = new_output("Reshape");
      add_node("Reshape", {in[0], shape}, {out});
      break;
    }
    case OpKind::kBatchNorm: {
      if (op.training)
        unsupported("batch_norm in training mode (a cell forces training in its forward; export runs in inference "
                    "mode)");
      out = new_output("BatchNormalization");
      add_node("BatchNormalization", {in[0], in[1], in[2], in[3], in[4]}, {out}).attrs = {
          float_attr("epsilon", op.eps), float_attr("momentum", op.momentum)};
      break;
    }
    case OpKind::kLayerNorm: {  // x [..., D...] normalized over the dims from op.axis on; gamma, beta [D...]
      const auto rank = static_cast<std::int64_t>(op.inputs[0].rank());
      if (opset_ >= 17) {
        out = new_output("LayerNormalization");
        add_node("LayerNormalization", {in[0], in[1], in[2]}, {out}).attrs = {int_attr("axis", op.axis),
                                                                              float_attr("epsilon", op.eps)};
        break;
      }
      // Opsets < 17 have no LayerNormalization: (x - mean) / sqrt(var + eps) * gamma + beta.
      std::vector<std::int64_t> axes;
      for (std::int64_t a = op.axis; a < rank; ++a) axes.push_back(a);
      auto tmp = [&](const char* what) { return fresh("LayerNorm_" + std::to_string(counter_) + "_" + what); };
      const std::string mean = tmp("mean");
      add_node("ReduceMean", {in[0]}, {mean}).attrs = {ints_attr("axes", axes), int_attr("keepdims", 1)};
      const std::string d = tmp("centered");
      add_node("Sub", {in[0], mean}, {d});
      const std::string d2 = tmp("squared");
      add_node("Mul", {d, d}, {d2});
      const std::string var = tmp("var");
      add_node("ReduceMean", {d2}, {var}).attrs = {ints_attr("axes", axes), int_attr("keepdims", 1)};
      const std::string ve = tmp("var_eps");
      add_node("Add", {var, scalar_const(op.eps, dt)}, {ve});
      const std::string sd = tmp("std");
      add_node("Sqrt", {ve}, {sd});
      const std::string xhat = tmp("normalized");
      add_node("Div", {d, sd}, {xhat});
      const std::string scaled = tmp("scaled");
      add_node("Mul", {xhat, in[1]}, {scaled});
      out = new_output("LayerNorm");
      add_node("Add", {scaled, in[2]}, {out});
      break;
    }
    case OpKind::kEmbedding: {  // table [V, E], indices [S...] -> [S..., E]
      out = new_output("Gather");
      add_node("Gather", {in[0], in[1]}, {out}).attrs = {int_attr("axis", 0)};
      break;
    }
    case OpKind::kDropout:
      unsupported("dropout in training mode (a cell forces training in its forward)");
    case OpKind::kSoftmaxCrossEntropy:
      unsupported("softmax_cross_entropy (a loss is not part of an inference graph; export the network without "
                  "its loss cell)");
    default:
      unsupported(std::string("op ") + op_kind_name(op.kind));
  }
  bind(op.output, out);
}

Graph GraphBuilder::finish(const Tensor& y, const std::string& name, bool dynamic_batch) {
  ANVIL_EXPORT_CHECK(y.defined(), "the forward of {} returned an undefined tensor", context_);
  std::string result = value_name(y);
  const bool produced_by_node =
      std::any_of(graph_.nodes.begin(), graph_.nodes.end(),
                  [&](const Node& n) { return std::find(n.outputs.begin(), n.outputs.end(), result) != n.outputs.end(); });
  ANVIL_EXPORT_CHECK(!param_names_.count(name) && !graph_input_names_.count(name),
              "output name '{}' collides with a parameter, buffer or input name", name);
  if (!produced_by_node) {
    // The output is an input, a parameter or a constant: ONNX needs a node that produces it.
    used_names_.insert(name);
    graph_.nodes.push_back({.op_type = "Identity", .name = fresh("Identity_out"), .inputs = {result}, .outputs = {name}});
  } else {
    for (Node& n : graph_.nodes) {
      for (auto& s : n.inputs)
        if (s == result) s = name;
      for (auto& s : n.outputs)
        if (s == result) s = name;
    }
  }
  // Keep only what the output depends on.
  std::set<std::string> needed{name};
  std::vector<bool> keep(graph_.nodes.size(), false);
  for (std::size_t i = graph_.nodes.size(); i-- > 0;) {
    const Node& n = graph_.nodes[i];
    for (const auto& o : n.outputs)
      if (needed.count(o)) keep[i] = true;
    if (keep[i])
      for (const auto& s : n.inputs)
        if (!s.empty()) needed.insert(s);
  }
  std::vector<Node> nodes;
  for (std::size_t i = 0; i < graph_.nodes.size(); ++i)
    if (keep[i]) nodes.push_back(std::move(graph_.nodes[i]));
  graph_.nodes = std::move(nodes);
  for (auto& init : initializers_)
    if (needed.count(init.name)) graph_.initializers.push_back(std::move(init));
  initializers_.clear();
  const bool batch_out = dynamic_batch && y.rank() > 0 && sample_batch_ >= 0 && y.dim(0) == sample_batch_;
  graph_.outputs.push_back({.name = name, .dtype = y.dtype(), .dims = y.shape().dims(), .dynamic_batch = batch_out});
  values_.clear();
  return std::move(graph_);
}

}  // namespace anvil::onnx_export
