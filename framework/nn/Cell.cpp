#include "framework/nn/Cell.h"

#include "framework/core/Context.h"

namespace anvil::nn {

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

SequentialCell::SequentialCell(std::vector<std::shared_ptr<Cell>> cells) {
  for (auto& c : cells) append(std::move(c));
}

void SequentialCell::append(std::shared_ptr<Cell> cell) {
  register_cell(std::to_string(children().size()), std::move(cell));
}

Tensor SequentialCell::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& [n, c] : children()) y = c->forward(y);
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
