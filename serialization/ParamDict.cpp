#include "serialization/ParamDict.h"

#include "serialization/TensorType.h"

namespace anvil {

Tensor append_value_tensor(const AppendValue& value) {
  return std::visit(
      [](const auto& v) -> Tensor {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::int64_t>) {
          Tensor t = Tensor::empty(Shape{}, DType::kI64);
          *t.data<std::int64_t>() = v;
          return t;
        } else if constexpr (std::is_same_v<V, double>) {
          return Tensor::scalar(v, DType::kF32);
        } else if constexpr (std::is_same_v<V, bool>) {
          Tensor t = Tensor::empty(Shape{}, DType::kBool);
          *static_cast<std::uint8_t*>(t.data_ptr()) = v ? 1 : 0;
          return t;
        } else if constexpr (std::is_same_v<V, Tensor>) {
          return v;
        } else {
          return Tensor();
        }
      },
      value);
}

ParamDict::ParamDict(const NamedTensors& tensors) {
  for (const auto& [name, t] : tensors) {
    ANVIL_CHECK(!contains(name), "ParamDict: name '{}' is given twice", name);
    set(name, t);
  }
}

void ParamDict::put(const std::string& name, Value value) {
  ANVIL_CHECK(!name.empty(), "ParamDict: empty entry name");
  auto it = index_.find(name);
  if (it != index_.end()) {
    entries_[it->second].value = std::move(value);
    return;
  }
  index_.emplace(name, entries_.size());
  entries_.push_back(Entry{name, std::move(value)});
}

void ParamDict::set(const std::string& name, Tensor value) {
  ANVIL_CHECK(value.defined(), "ParamDict: undefined tensor for '{}'", name);
  put(name, std::move(value));
}

void ParamDict::set(const std::string& name, std::string value) { put(name, std::move(value)); }

void ParamDict::set_append(const std::string& name, const AppendValue& value) {
  if (const auto* s = std::get_if<std::string>(&value))
    set(name, *s);
  else
    set(name, append_value_tensor(value));
}

const ParamDict::Entry* ParamDict::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

const Tensor& ParamDict::tensor(const std::string& name) const {
  const Entry* e = find(name);
  ANVIL_CHECK(e != nullptr, "ParamDict: no entry '{}'", name);
  ANVIL_CHECK(e->is_tensor(), "ParamDict: entry '{}' is a string, not a tensor", name);
  return std::get<Tensor>(e->value);
}

const std::string& ParamDict::string(const std::string& name) const {
  const Entry* e = find(name);
  ANVIL_CHECK(e != nullptr, "ParamDict: no entry '{}'", name);
  ANVIL_CHECK(e->is_string(), "ParamDict: entry '{}' is a tensor ({}), not a string", name,
              std::get<Tensor>(e->value).desc());
  return std::get<std::string>(e->value);
}

std::int64_t ParamDict::get_int(const std::string& name) const {
  const Tensor& t = tensor(name);
  ANVIL_CHECK(t.numel() == 1, "ParamDict: entry '{}' is {}, not a one-element tensor", name, t.desc());
  std::int64_t v = 0;
  if (t.dtype() == DType::kBool) return *static_cast<const std::uint8_t*>(t.data_ptr()) != 0;
  ANVIL_CHECK(is_integer_dtype(t.dtype()), "ParamDict: entry '{}' is {}, not an integer", name, t.desc());
  convert_elements(t.data_ptr(), t.dtype(), &v, DType::kI64, 1);
  return v;
}

double ParamDict::get_float(const std::string& name) const {
  const Tensor& t = tensor(name);
  ANVIL_CHECK(t.numel() == 1, "ParamDict: entry '{}' is {}, not a one-element tensor", name, t.desc());
  if (is_floating(t.dtype())) {
    double v = 0;
    convert_elements(t.data_ptr(), t.dtype(), &v, DType::kF64, 1);
    return v;
  }
  return static_cast<double>(get_int(name));
}

bool ParamDict::erase(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) return false;
  const std::size_t pos = it->second;
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(pos));
  index_.erase(it);
  for (auto& [n, i] : index_)
    if (i > pos) --i;
  return true;
}

std::vector<std::string> ParamDict::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) out.push_back(e.name);
  return out;
}

NamedTensors ParamDict::tensors() const {
  NamedTensors out;
  for (const auto& e : entries_)
    if (e.is_tensor()) out.emplace_back(e.name, std::get<Tensor>(e.value));
  return out;
}

}  // namespace anvil
