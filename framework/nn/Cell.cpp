#include "framework/nn/Cell.h"

#include <algorithm>
#include <array>
#include <map>
#include <utility>

#include <fmt/format.h>

#include "framework/autograd/GradMode.h"
#include "framework/core/Context.h"
#include "framework/ops/Trace.h"

namespace anvil::nn {
namespace {

// Output shapes collected by summary(sample): by cell, with the order in which they were recorded.
struct ShapeRecord {
  Shape shape;
  std::int64_t seq = 0;
};
struct SummaryRecorder {
  std::map<const Cell*, ShapeRecord> shapes;
  std::int64_t seq = 0;
  void record(const Cell* c, const Shape& s) { shapes[c] = ShapeRecord{s, ++seq}; }
};
// Active only inside summary(sample) on this thread (SequentialCell::forward reports its children).
thread_local SummaryRecorder* t_recorder = nullptr;

// Attributes traced ops to the cell that owns one of their inputs (a parameter or buffer).
class OwnerTracer final : public ops::OpTracer {
 public:
  OwnerTracer(SummaryRecorder& rec, std::map<const TensorImpl*, const Cell*> owners)
      : rec_(rec), owners_(std::move(owners)) {}
  void on_op(const ops::TracedOp& op) override {
    if (!op.output.defined()) return;
    for (const auto& in : op.inputs) {
      if (!in.defined()) continue;
      auto it = owners_.find(in.impl());
      if (it != owners_.end()) {
        rec_.record(it->second, op.output.shape());
        return;
      }
    }
  }

 private:
  SummaryRecorder& rec_;
  std::map<const TensorImpl*, const Cell*> owners_;
};

std::int64_t numel_of(const NamedTensors& list) {
  std::int64_t n = 0;
  for (const auto& [name, t] : list) n += t.numel();
  return n;
}

}  // namespace

void Cell::check_new_name(const std::string& name) const {
  ANVIL_CHECK(!name.empty(), "{}: empty name", type_name());
  ANVIL_CHECK(name.find('.') == std::string::npos, "{}: name '{}' must not contain '.'", type_name(), name);
  auto taken = [&](const auto& list) {
    for (const auto& [n, v] : list)
      if (n == name) return true;
    return false;
  };
  ANVIL_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), "{}: name '{}' is already registered",
              type_name(), name);
}

Tensor Cell::register_parameter(const std::string& name, Tensor value, bool requires_grad) {
  check_new_name(name);
  ANVIL_CHECK(value.defined(), "{}: parameter '{}' is undefined", type_name(), name);
  value.set_requires_grad(requires_grad);
  params_.emplace_back(name, value);
  return value;
}

Tensor Cell::register_buffer(const std::string& name, Tensor value) {
  check_new_name(name);
  ANVIL_CHECK(value.defined(), "{}: buffer '{}' is undefined", type_name(), name);
  buffers_.emplace_back(name, value);
  return value;
}

void Cell::add_child(const std::string& name, std::shared_ptr<Cell> cell) {
  check_new_name(name);
  ANVIL_CHECK(cell != nullptr, "{}: child '{}' is null", type_name(), name);
  children_.emplace_back(name, std::move(cell));
}

void Cell::collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const {
  if (params)
    for (const auto& [n, t] : params_) out.emplace_back(prefix + n, t);
  if (buffers)
    for (const auto& [n, t] : buffers_) out.emplace_back(prefix + n, t);
  for (const auto& [n, c] : children_) c->collect(prefix + n + ".", params, buffers, out);
}

NamedTensors Cell::parameters_and_names() const {
  NamedTensors out;
  collect("", true, false, out);
  return out;
}

NamedTensors Cell::trainable_params() const {
  NamedTensors out;
  for (auto& [n, t] : parameters_and_names())
    if (t.requires_grad()) out.emplace_back(n, t);
  return out;
}

NamedTensors Cell::buffers_and_names() const {
  NamedTensors out;
  collect("", false, true, out);
  return out;
}

NamedTensors Cell::state_dict() const {
  NamedTensors out = parameters_and_names();
  NamedTensors b = buffers_and_names();
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

std::vector<std::pair<std::string, Cell*>> Cell::cells_and_names() {
  std::vector<std::pair<std::string, Cell*>> out;
  std::vector<std::pair<std::string, Cell*>> stack{{"", this}};
  while (!stack.empty()) {
    auto [name, cell] = stack.back();
    stack.pop_back();
    out.emplace_back(name, cell);
    for (auto it = cell->children_.rbegin(); it != cell->children_.rend(); ++it)
      stack.emplace_back(name.empty() ? it->first : name + "." + it->first, it->second.get());
  }
  return out;
}

void Cell::set_train(bool mode) {
  for (auto& [n, c] : cells_and_names()) {
    c->training_ = mode;
    c->on_train_mode_changed();
  }
}

void Cell::to_dtype(DType dtype) {
  ANVIL_CHECK(is_compute_type(dtype), "{}: cells compute in float32 or float64, not {}", type_name(),
              dtype_name(dtype));
  for (auto& [n, t] : state_dict())
    if (t.dtype() != dtype) t.set_data(t.to(dtype));
}

Cell& Cell::child(const std::string& name) const {
  std::string names;
  for (const auto& [n, c] : children_) {
    if (n == name) return *c;
    names += (names.empty() ? "" : ", ") + n;
  }
  ANVIL_THROW("{} has no child '{}' (children: {})", type_name(), name, names);
}

std::string Cell::summary_table(const std::vector<std::pair<const Cell*, std::string>>& shapes) const {
  // cells_and_names() is non-const only because it hands out mutable pointers; nothing is modified here.
  const auto cells = const_cast<Cell*>(this)->cells_and_names();
  std::vector<std::array<std::string, 4>> rows;
  rows.push_back({"Layer (path)", "Type", "Output shape", "Param #"});
  for (const auto& [path, cell] : cells) {
    std::string shape = "-";
    for (const auto& [c, text] : shapes)
      if (c == cell) shape = text;
    rows.push_back({path.empty() ? "(root)" : path, cell->type_name(), shape, std::to_string(numel_of(cell->params_))});
  }
  std::array<std::size_t, 4> width{};
  for (const auto& r : rows)
    for (std::size_t i = 0; i < 4; ++i) width[i] = std::max(width[i], r[i].size());
  std::size_t total_width = 0;
  for (std::size_t w : width) total_width += w;
  total_width += 3 * 2;
  const std::string rule(total_width, '=');
  std::string out;
  for (std::size_t k = 0; k < rows.size(); ++k) {
    const auto& r = rows[k];
    out += fmt::format("{:<{}}  {:<{}}  {:<{}}  {:>{}}\n", r[0], width[0], r[1], width[1], r[2], width[2], r[3], width[3]);
    if (k == 0) out += rule + "\n";
  }
  out += rule + "\n";
  const NamedTensors params = parameters_and_names();
  const std::int64_t total = numel_of(params);
  const std::int64_t trainable = numel_of(trainable_params());
  out += fmt::format("Total params: {}\nTrainable params: {}\nNon-trainable params: {}\nBuffers: {}\n", total,
                     trainable, total - trainable, numel_of(buffers_and_names()));
  return out;
}

std::string Cell::summary() const { return summary_table({}); }

std::string Cell::summary(const Tensor& sample) {
  const auto cells = cells_and_names();
  // Inference mode for the pass; each cell's own flag comes back afterwards (also on error).
  std::vector<std::pair<Cell*, bool>> modes;
  for (const auto& [path, c] : cells) modes.emplace_back(c, c->training_);
  auto restore = [&] {
    for (auto& [c, mode] : modes)
      if (c->training_ != mode) {
        c->training_ = mode;
        c->on_train_mode_changed();
      }
  };
  std::map<const TensorImpl*, const Cell*> owners;
  for (const auto& [path, c] : cells) {
    for (const auto& [n, t] : c->params_) owners[t.impl()] = c;
    for (const auto& [n, t] : c->buffers_) owners[t.impl()] = c;
  }
  SummaryRecorder rec;
  Tensor out;
  set_train(false);
  try {
    autograd::NoGradGuard no_grad;
    OwnerTracer tracer(rec, std::move(owners));
    ops::TraceScope scope(tracer);
    SummaryRecorder* previous = std::exchange(t_recorder, &rec);
    try {
      out = forward(sample);
    } catch (...) {
      t_recorder = previous;
      throw;
    }
    t_recorder = previous;
  } catch (...) {
    restore();
    throw;
  }
  restore();
  rec.record(this, out.shape());

  // Containers without a shape of their own: the descendant recorded last.
  std::vector<std::pair<const Cell*, std::string>> shapes;
  for (const auto& [path, c] : cells) {
    auto it = rec.shapes.find(c);
    if (it != rec.shapes.end()) {
      shapes.emplace_back(c, it->second.shape.str());
      continue;
    }
    const ShapeRecord* best = nullptr;
    for (const auto& [sub_path, d] : c->cells_and_names()) {
      auto jt = rec.shapes.find(d);
      if (d != c && jt != rec.shapes.end() && (!best || jt->second.seq > best->seq)) best = &jt->second;
    }
    if (best) shapes.emplace_back(c, best->shape.str());
  }
  return summary_table(shapes);
}

SequentialCell::SequentialCell(std::vector<std::shared_ptr<Cell>> cells) {
  for (auto& c : cells) append(std::move(c));
}

void SequentialCell::append(std::shared_ptr<Cell> cell) {
  register_cell(std::to_string(children().size()), std::move(cell));
}

Tensor SequentialCell::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& [n, c] : children()) {
    y = c->forward(y);
    if (t_recorder) t_recorder->record(c.get(), y.shape());  // only inside summary(sample)
  }
  return y;
}

Cell& Cell::to(const Device& device) {
  for (auto& [n, t] : state_dict()) {
    if (t.device() != device) t.set_data(t.to(device));
    const Tensor g = t.grad();
    if (g.defined() && g.device() != device) t.set_grad(g.to(device));
  }
  return *this;
}

Cell& Cell::to() { return to(default_device()); }

}  // namespace anvil::nn
