// CheckPoint (specs/oneflow-vardir.md §7): init / save / load of a VariableStore's variables as a
// OneFlow variable directory, fine-tune partial loads with OneFlow's warning line, get_all_variables and
// a transactional load_variables.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "framework/nn/VariableStore.h"
#include "serialization/oneflow/VarDir.h"

namespace anvil::oneflow {

struct LoadOptions {
  /// Zero the train-step counter variables (System-Train-TrainStep*) after loading (fine-tuning).
  bool reset_train_step = false;
  /// Era D without names: bind tensor_N (sorted by N) to the variables in definition order; every
  /// shape and dtype must match pair by pair.
  bool bind_by_order = false;
};

/// What a load did.
struct LoadReport {
  std::vector<std::string> loaded;       // variables assigned from the checkpoint
  std::vector<std::string> initialized;  // variables missing from the checkpoint, initialized
  std::vector<std::string> unused;       // checkpoint entries that match no variable (ignored)
  std::vector<std::string> untouched;    // load_variables: variables absent from the dict
  std::vector<std::string> warnings;     // scan warnings (missing marker, skipped directories)
};

class CheckPoint {
 public:
  /// Works on the variables of `job` in `store` (which must outlive this object). Warning lines go to
  /// `out` (standard output by default).
  explicit CheckPoint(nn::oneflow::VariableStore& store, std::string job = "", std::ostream* out = nullptr);

  /// Re-initializes every variable with its initializer and seed.
  void init();
  /// Saves every variable to the new or empty directory `path` (save_variable_directory rules).
  void save(const std::string& path, const SaveOptions& options = {}) const;
  /// Loads `path` into the variables (definition order). A variable whose `<path>/<name>/out` is absent
  /// gets the line "WARNING! CANNOT find variable path in : <path>/<name>/out. It will be initialized. "
  /// on the output stream and is initialized. Transactional: everything is read and checked (size,
  /// dtype, shape: errors name the variable and both shapes) before anything is assigned. Scan warnings
  /// (no snapshot_done marker, sub-directories without `out`) go to the log (stderr) and the report.
  LoadReport load(const std::string& path, const LoadOptions& options = {});
  /// (name, tensor) of every variable, sharing storage with the variables.
  NamedTensors get_all_variables() const;
  /// Assigns dict entries to the variables of the same name. A name that is no variable is skipped
  /// (ignore_mismatch) or an error "\"<name>\" is not a variable name"; shape or dtype mismatches are
  /// always errors. Transactional: a failure changes nothing.
  LoadReport load_variables(const NamedTensors& dict, bool ignore_mismatch = true);

 private:
  nn::oneflow::VariableStore& store_;
  std::string job_;
  std::ostream* out_;
};

}  // namespace anvil::oneflow
