// ParamDict: what load_checkpoint returns and save_checkpoint can take — an ordered dictionary of
// checkpoint entries, name -> tensor or string (MindSpore's parameter dict, with "str" entries kept as
// strings). Order is insertion order (file order when loaded), as a Python dict keeps it.
//
// Also defines AppendValue / AppendInfo, MindSpore's `append_dict`: extra entries written after the
// parameters (int -> Int64 0-d, float -> Float32 0-d, bool -> Bool 0-d, string -> "str", tensor as is).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "framework/tensor/Tensor.h"

namespace anvil {

/// One append_info value. Construct from std::int64_t (or int), double, bool, std::string or Tensor:
/// `{"epoch_num", std::int64_t{3}}`, `{"lr", 0.01}`, `{"note", std::string("x")}`.
using AppendValue = std::variant<std::int64_t, double, bool, std::string, Tensor>;
/// Ordered append_info entries.
using AppendInfo = std::vector<std::pair<std::string, AppendValue>>;

/// The entry MindSpore writes for an append value: an int64/float32/bool 0-d tensor, the tensor itself,
/// or (for strings) an undefined Tensor — callers check std::holds_alternative<std::string> first.
Tensor append_value_tensor(const AppendValue& value);

class ParamDict {
 public:
  using Value = std::variant<Tensor, std::string>;
  struct Entry {
    std::string name;
    Value value;
    bool is_tensor() const { return std::holds_alternative<Tensor>(value); }
    bool is_string() const { return std::holds_alternative<std::string>(value); }
  };

  ParamDict() = default;
  /// From (name, tensor) pairs in order. Throws anvil::Error on an empty or repeated name.
  explicit ParamDict(const NamedTensors& tensors);

  /// Inserts `name` at the end, or replaces the value of an existing `name` in place (keeping its
  /// position, like a Python dict). Precondition: name non-empty (throws otherwise); tensors defined.
  void set(const std::string& name, Tensor value);
  void set(const std::string& name, std::string value);
  /// Inserts an append_info value converted as MindSpore does (see AppendValue).
  void set_append(const std::string& name, const AppendValue& value);

  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  /// The entry, or nullptr.
  const Entry* find(const std::string& name) const;
  /// The tensor under `name`. Throws anvil::Error when absent or a string entry.
  const Tensor& tensor(const std::string& name) const;
  /// The string under `name`. Throws anvil::Error when absent or a tensor entry.
  const std::string& string(const std::string& name) const;
  /// The value of a one-element integer or bool tensor entry (e.g. "epoch_num"). Throws otherwise.
  std::int64_t get_int(const std::string& name) const;
  /// The value of a one-element float or integer tensor entry, as double. Throws otherwise.
  double get_float(const std::string& name) const;

  /// Removes `name`; returns whether it was present. O(n).
  bool erase(const std::string& name);

  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const std::vector<Entry>& entries() const { return entries_; }
  std::vector<Entry>::const_iterator begin() const { return entries_.begin(); }
  std::vector<Entry>::const_iterator end() const { return entries_.end(); }
  /// Every name in order.
  std::vector<std::string> names() const;
  /// The tensor entries in order (string entries skipped).
  NamedTensors tensors() const;

 private:
  void put(const std::string& name, Value value);
  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace anvil
