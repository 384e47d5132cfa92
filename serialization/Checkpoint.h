// MindSpore-compatible checkpoints: save_checkpoint and load_checkpoint (mindspore.save_checkpoint /
// mindspore.load_checkpoint), on top of CheckpointWriter and CheckpointReader.
//
//   anvil::save_checkpoint(net, "lenet", {.optimizer = &opt, .append_info = {{"epoch_num", std::int64_t{3}}}});
//   anvil::ParamDict params = anvil::load_checkpoint("lenet.ckpt", {.filter_prefix = {"moments."}});
//   auto [param_not_load, ckpt_not_load] = anvil::load_param_into_net(net, params);   // LoadParam.h
//
// File layout, slicing, integrity trailer and the reader's checks: specs/mindspore-ckpt.md.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "serialization/CheckpointReader.h"
#include "serialization/CheckpointWriter.h"
#include "serialization/ParamDict.h"

namespace anvil {

class Optimizer;
namespace nn {
class Cell;
}

/// Chooses entries by name (true = keep).
using NamePredicate = std::function<bool(const std::string& name)>;

struct SaveOptions {
  /// Optimizer whose state_dict() (MindSpore names: "moments.<p>", "learning_rate", ...) follows the
  /// network's entries. Only for the Cell overload.
  const Optimizer* optimizer = nullptr;
  /// Extra entries written last, in order (MindSpore append_dict; ModelCheckpoint adds epoch_num and
  /// step_num here).
  AppendInfo append_info{};
  /// Saves only the network/optimizer entries it accepts (MindSpore choice_func); append_info is
  /// always written. Empty = everything.
  NamePredicate choice_func{};
  bool crc_check = true;             // append the integrity trailer (MindSpore's default is off)
  bool legacy_scalar_dims = false;   // dims [0] for 0-d tensors (MindSpore <= 2.2 readers)
  std::uint64_t slice_bytes = kDefaultSliceBytes;
  bool durable = true;               // fsync file and directory (off only for tests and scratch files)
  unsigned file_mode = 0400;         // permission bits of the file (MindSpore >= 2.4: read-only)
};

/// `path` with ".ckpt" appended unless it already ends in ".ckpt" (MindSpore's rule).
std::string checkpoint_path(const std::string& path);

/// Writes every parameter and buffer of `net` (Cell::state_dict(): definition order, hierarchical
/// names), then options.optimizer's state, then options.append_info, to checkpoint_path(path),
/// atomically and durably. Everything is validated before the file is created: names must be unique
/// across the three groups (anvil::Error listing the repeats), tensors defined and in host memory.
/// Returns what was written. Errors: anvil::Error (invalid input), FileError (I/O, naming the path;
/// the previous file under that name is then untouched).
CheckpointFileInfo save_checkpoint(const nn::Cell& net, const std::string& path, const SaveOptions& options = {});
/// Writes `entries` in order (MindSpore's list-of-dicts form), then options.append_info.
/// options.optimizer must be null. Same errors.
CheckpointFileInfo save_checkpoint(const NamedTensors& entries, const std::string& path,
                                   const SaveOptions& options = {});
/// Writes a ParamDict (tensor and string entries, in order), then options.append_info.
CheckpointFileInfo save_checkpoint(const ParamDict& dict, const std::string& path, const SaveOptions& options = {});

struct LoadOptions {
  /// Load only entries whose name starts with one of these (plain starts-with).
  std::vector<std::string> specify_prefix{};
  /// Skip entries whose name starts with one of these. Applied after specify_prefix.
  std::vector<std::string> filter_prefix{};
  /// Keep an entry when it returns true. Ignored (with a warning) when a prefix list is given.
  NamePredicate choice_func{};
  /// Strict parse: non-adjacent repeated tags and map tensors are errors (see ReaderOptions).
  bool strict = false;
  /// The file must prove it is complete (CRC trailer or matching manifest), else CKPT_UNVERIFIED.
  /// Set it for files you wrote yourself (resume, ModelCheckpoint-managed loads).
  bool require_integrity = false;
  /// Warn when a foreign file without trailer or manifest is loaded.
  bool warn_unverified = true;
  /// Sidecar manifest; empty = "<path>.manifest.json" if it exists.
  std::string manifest_path{};
};

/// Reads a .ckpt file into a ParamDict (file order; string entries as strings; slices joined;
/// legacy scalar dims [0] as 0-d tensors; every storage dtype as is). `path` is used as given.
/// Errors: CheckpointError with the codes of specs/mindspore-ckpt.md §9 (see CheckpointReader), and
/// CKPT_EMPTY_AFTER_FILTER when the filters leave nothing.
ParamDict load_checkpoint(const std::string& path, const LoadOptions& options = {});

/// The filter load_checkpoint applies, as a predicate (true = keep). Exposed for loaders that stream.
NamePredicate load_filter(const LoadOptions& options);

}  // namespace anvil
