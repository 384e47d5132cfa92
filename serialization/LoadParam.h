// load_param_into_net: assigns checkpoint values to a network's parameters and buffers, or to an
// optimizer's state, with MindSpore 2.x semantics (specs/mindspore-ckpt.md §10):
//
//   * returns (param_not_load, ckpt_not_load): network names that got nothing, and checkpoint entries
//     that were not used (optimizer state, epoch_num, ... when loading a network);
//   * transactional: every match is validated before any value is copied;
//   * shapes must agree, except that 0-d and [1] are interchangeable and a checkpoint shape equal to
//     the network shape plus trailing 1s (e.g. [12,2048,1,1] into [12,2048]) is reshaped silently;
//     otherwise an error names the parameter and both shapes;
//   * dtypes: equal, or (non-strict) float <-> float and integer <-> integer converted with a warning;
//     strict mode, or any other pair, is an error;
//   * missing parameters: non-strict -> MindSpore's warning listing them; strict -> error. Names
//     starting with "accu_grads" (gradient accumulation) may be missing silently;
//   * string entries are never bound to parameters.
//
// NameMapping renames checkpoint entries before matching, for fine-tuning across naming schemes
// (strip "optimizer." / "network.", rename BatchNorm "gamma"/"beta" to "weight"/"bias", ...).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "serialization/Checkpoint.h"
#include "serialization/ParamDict.h"

namespace anvil {

class Optimizer;
namespace nn {
class Cell;
}

/// Rules that turn a checkpoint entry name into the name it is matched against, applied in this
/// order: remove the first matching prefix of strip_prefixes; apply every regex rename in order
/// (std::regex ECMAScript, std::regex_replace with "$1"-style references, all occurrences); prepend
/// add_prefix. An empty mapping leaves names unchanged.
/// Example: {.strip_prefixes = {"optimizer."}, .regex_renames = {{"\\.gamma$", ".weight"}, {"\\.beta$", ".bias"}}}
struct NameMapping {
  std::vector<std::string> strip_prefixes{};
  std::vector<std::pair<std::string, std::string>> regex_renames{};  // (pattern, replacement)
  std::string add_prefix{};

  bool empty() const { return strip_prefixes.empty() && regex_renames.empty() && add_prefix.empty(); }
  /// The mapped name. Throws anvil::Error naming the pattern when a regex is invalid.
  std::string apply(const std::string& checkpoint_name) const;
};

struct LoadParamOptions {
  /// Strict: every network parameter must be present (accu_grads* excepted) and dtypes must match.
  bool strict_load = false;
  /// Applied to checkpoint names before matching. Two entries mapping to one name is an error.
  NameMapping name_mapping{};
  /// MindSpore's prefix fallback, only when asked: a parameter left unmatched takes an unused entry
  /// whose (mapped) name ends with "." + its name, or whose name is its name's suffix after a "."; of
  /// several candidates the shortest name wins ("optimizer.network.fc.weight" over
  /// "optimizer.moment1.network.fc.weight"), and a tie matches nothing.
  bool suffix_fallback = false;
};

/// (param_not_load, ckpt_not_load); structured bindings work: auto [missing, unused] = ...
struct LoadParamResult {
  std::vector<std::string> param_not_load;  // network (or optimizer state) names that received nothing
  std::vector<std::string> ckpt_not_load;   // checkpoint entry names (original spelling) not used
};

/// Loads `params` into every parameter and buffer of `net` (Cell::state_dict() names), in place (the
/// existing tensors' memory is overwritten; handles held by layers and optimizers stay valid).
/// Errors (anvil::Error, nothing changed): shape mismatches (all listed, each with the parameter and
/// both shapes), dtype mismatches that may not be converted, strict-mode missing parameters, mapping
/// collisions, invalid regexes.
LoadParamResult load_param_into_net(nn::Cell& net, const ParamDict& params, const LoadParamOptions& options = {});
/// Same, with only strict_load given (MindSpore's signature).
LoadParamResult load_param_into_net(nn::Cell& net, const ParamDict& params, bool strict_load);

/// Loads an optimizer's state (names as Optimizer::state_dict() gives them: "moments.fc1.weight",
/// "learning_rate", "global_step", ...) from `params` through Optimizer::load_state_dict. Entries of
/// the state that the dict lacks keep their current values (non-strict; listed in param_not_load) or
/// are an error (strict; "global_step" may always be absent, as in MindSpore Momentum files).
/// Values are converted to the state's dtypes under the rules above. Errors: as above, plus
/// Optimizer::load_state_dict's value checks (nothing changed).
LoadParamResult load_param_into_net(Optimizer& optimizer, const ParamDict& params,
                                    const LoadParamOptions& options = {});

struct LoadIntoNetOptions {
  LoadOptions load{};          // filters, strict parse, require_integrity, manifest
  LoadParamOptions param{};    // strict_load, name mapping, suffix fallback
  Optimizer* optimizer = nullptr;  // also load this optimizer's state from the same file
};

/// load_checkpoint + load_param_into_net without materialising the file: the file is validated
/// (including its CRC trailer) and every match is checked first; then each matched entry is read
/// straight from the file into the parameter's existing buffer (through a temporary only when its dtype
/// must be converted). With options.optimizer, its state is loaded too, and optimizer entries are not
/// reported in ckpt_not_load. Returns the network's (param_not_load, ckpt_not_load).
/// Errors: CheckpointError (file) and anvil::Error (matching), both before anything is changed; an I/O
/// error while copying (the file changed on disk) can leave parameters partly loaded.
LoadParamResult load_checkpoint_into_net(nn::Cell& net, const std::string& path,
                                         const LoadIntoNetOptions& options = {});

}  // namespace anvil
