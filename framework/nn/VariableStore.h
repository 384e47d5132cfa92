// VariableStore and get_variable (specs/oneflow-vardir.md §9): OneFlow-style named variables with
// initializers, held by an explicit store object (no global registry).
//
// A store holds variables per job (OneFlow: per job function / model). Names get the active name
// scopes as a prefix ("Resnet-conv1-weight"). The same name in the same job with reuse=true returns the
// existing variable; with reuse=false it is an error. The same name in another job gets its own handle
// on shared storage (how train and eval jobs share weights) after a configuration check.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/core/Random.h"
#include "framework/nn/OneFlowInitializers.h"
#include "framework/tensor/Tensor.h"

namespace anvil::nn::oneflow {

/// Arguments of get_variable (OneFlow's keyword arguments and defaults).
struct VariableArgs {
  std::optional<Shape> shape;           // required when the variable is created
  std::optional<DType> dtype;           // float32 when unset at creation
  InitializerPtr initializer;           // the job's default initializer when null
  bool trainable = true;
  std::string model_name = "weight";
  std::optional<std::uint64_t> random_seed;
  bool reuse = true;
};

/// One variable as the store keeps it.
struct Variable {
  std::string name;                     // effective name (scope prefix + name)
  std::string job;
  Tensor tensor;
  DType dtype = DType::kF32;
  InitializerPtr initializer;
  bool trainable = true;
  std::string model_name;
  std::uint64_t seed = 0;               // the seed its initializer draws with
  bool seed_given = false;
};

class VariableStore {
 public:
  /// `seed` seeds the stream from which variables without random_seed draw their seeds.
  explicit VariableStore(std::uint64_t seed = 0);

  /// Creates or returns variable `name` (prefixed by the active scopes) of `job` with the semantics of
  /// spec §9. A new variable is initialized at once with its initializer and seed. Throws anvil::Error:
  /// empty name, name exists with reuse=false ("... already exists ..."), explicit shape/dtype
  /// conflicting with the existing variable, no shape at creation, no initializer and no job default,
  /// or (other job) a configuration that differs from the shared variable's.
  Tensor get_variable(const std::string& name, const VariableArgs& args = {}, const std::string& job = "");

  /// Sets the initializer used by `job` when get_variable gets none.
  void set_default_initializer(const std::string& job, InitializerPtr init);

  /// Pushes a name scope: later names get "<scope>-" prefixed (scopes nest).
  void push_name_scope(const std::string& scope);
  /// Pops the innermost scope; throws when none is active.
  void pop_name_scope();
  /// The current prefix ("" or "a-b-").
  std::string scope_prefix() const;

  /// Variables of `job` in definition order.
  std::vector<const Variable*> variables(const std::string& job = "") const;
  /// The variable `name` of `job`, or nullptr.
  const Variable* find(const std::string& name, const std::string& job = "") const;
  /// (name, tensor) of `job` in definition order.
  NamedTensors named_tensors(const std::string& job = "") const;
  /// Re-runs the initializer of variable `name` of `job` with its seed (in place).
  void initialize(const std::string& name, const std::string& job = "");

 private:
  Generator seeds_;
  std::vector<std::string> scopes_;
  std::map<std::string, InitializerPtr> default_init_;
  std::map<std::string, std::vector<std::unique_ptr<Variable>>> jobs_;
};

/// RAII name scope: pushes on construction, pops on destruction.
class NameScope {
 public:
  NameScope(VariableStore& store, const std::string& scope) : store_(store) { store_.push_name_scope(scope); }
  ~NameScope() { store_.pop_name_scope(); }
  NameScope(const NameScope&) = delete;
  NameScope& operator=(const NameScope&) = delete;

 private:
  VariableStore& store_;
};

/// get_variable on an explicit store (the OneFlow spelling).
inline Tensor get_variable(VariableStore& store, const std::string& name, const VariableArgs& args = {},
                           const std::string& job = "") {
  return store.get_variable(name, args, job);
}

}  // namespace anvil::nn::oneflow
