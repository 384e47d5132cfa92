// OneFlow variable directories (specs/oneflow-vardir.md): the on-disk model format of OneFlow's
// check_point / flow.save(dir) / nn.Graph save. One sub-directory per variable holding `out` (raw
// little-endian C-order element bytes, no header) and `meta` (protobuf text of VariableMetaInfo),
// with an empty `snapshot_done` marker written last.
//
// Reader: every era of spec §1 (A legacy out-only, B out+meta, C state-dict names, G nn.Graph
// prefixes, D pickle-era `tensor_N` directories whose names come from a restricted `pickled_data`
// reader that never executes anything). The single-file pickle format (E) is refused.
// Writer: canonical meta bytes identical to OneFlow's, atomic (temporary sibling directory, fsync of
// every file and directory, rename), refusing a non-empty target.
//
// Errors are anvil::Error (FileError for system calls) naming the path, the variable and the shapes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/core/DType.h"
#include "framework/tensor/Tensor.h"

namespace anvil::oneflow {

// ---------------------------------------------------------------- DataType enum (spec §4)

/// OneFlow's DataType enum name for value `v` ("kFloat", ...); "" when `v` is not in 0..21.
std::string_view data_type_name(int v);
/// The enum value of a name ("kFloat" -> 2); nullopt for an unknown name.
std::optional<int> data_type_from_name(std::string_view name);
/// The Anvil dtype an enum value reads as (kFloat, kDouble, kInt8, kChar (as int8), kInt32, kInt64,
/// kUInt8, kFloat16, kBool, kInt16, kBFloat16); nullopt for anything else.
std::optional<DType> dtype_from_data_type(int v);
/// The enum value written for `dtype`. kBool, kInt16 and kBFloat16 only when `allow_extended`
/// (OneFlow <= 0.3 cannot read them). Throws anvil::Error naming `what` (a variable) otherwise.
int data_type_for(DType dtype, bool allow_extended, std::string_view what);
/// "(3, 4)", "()" for a 0-d shape: the shape notation of OneFlow's messages.
std::string shape_str(const std::vector<std::int64_t>& dims);

// ---------------------------------------------------------------- meta (spec §3)

struct VarMeta {
  std::vector<std::int64_t> shape;  // empty = 0-d tensor
  int data_type = 0;                // DataType enum value
};

/// Parses the protobuf text of a meta file. `path` names the file in errors (missing data_type,
/// repeated field, unknown field or enum name, negative dim, syntax error).
VarMeta parse_meta(std::string_view text, const std::string& path);
/// The canonical bytes OneFlow writes: "shape {\n  dim: 3\n}\ndata_type: kFloat\n".
std::string format_meta(const std::vector<std::int64_t>& shape, int data_type);

// ---------------------------------------------------------------- restricted pickle reader (spec §8)

/// Reads a pickle-era `pickled_data` (flow.save v0.6–v0.9) and returns the state dict it describes as
/// (key, "tensor_N") pairs in pickle order. Only the opcode subset of spec §8 is understood and only
/// the globals collections.OrderedDict, oneflow.nn.Parameter and oneflow._oneflow_internal.Tensor are
/// accepted; nothing is executed. Anything else throws anvil::Error naming `path` and the offending
/// opcode or class.
std::vector<std::pair<std::string, std::string>> read_pickled_state_dict(const std::string& bytes,
                                                                         const std::string& path);

// ---------------------------------------------------------------- reading (spec §1, §2, §7)

enum class Layout {
  kSingleVariable,  // the path itself is one variable directory (holds `out`)
  kVariables,       // eras A/B/C/G: sub-directories are variables
  kPickle,          // era D: `pickled_data` + tensor_N
};

/// One variable found on disk.
struct VarEntry {
  std::string name;                 // directory name (tensor_N for era D)
  std::string dir;                  // <root>/<name>
  std::optional<VarMeta> meta;      // absent for era A
  std::uint64_t out_size = 0;       // bytes of `out`
};

struct VarDirInfo {
  std::string path;                 // as given
  Layout layout = Layout::kVariables;
  bool has_snapshot_done = false;
  std::vector<VarEntry> variables;  // sorted by name (tensor_N by N for era D)
  /// Era D: (state-dict key, tensor_N) from pickled_data when the restricted reader accepted it.
  std::optional<std::vector<std::pair<std::string, std::string>>> pickle_names;
  /// Why the pickle reader refused pickled_data (era D), for error messages.
  std::string pickle_error;
  std::vector<std::string> warnings;  // skipped sub-directories, missing marker
};

/// Scans `path` (detection of spec §1): parses every meta, but reads no `out`. Throws for a regular
/// file (single-file pickle or not a variable directory), a missing path or a bad meta.
VarDirInfo scan_variable_directory(const std::string& path);

/// Reads one variable. With a meta the size must equal prod(shape) × elem_size ("unexpected model
/// snapshot size, path: <dir>/out (file F bytes; meta <shape> <dtype> needs M bytes)"). Without a meta
/// (era A) `model_shape`/`model_dtype` must be given (else an error saying so) and give the layout.
Tensor read_variable(const VarEntry& entry, const std::optional<Shape>& model_shape = std::nullopt,
                     std::optional<DType> model_dtype = std::nullopt);

/// Every variable of a directory keyed by its directory name (tensor_N for era D), all validated
/// before returning. Every variable must have a meta.
NamedTensors load_raw_tensors(const std::string& path);

/// The state dict a directory holds: keyed by directory name for eras A-C/G, by the pickled_data keys
/// for era D (error when the restricted reader refuses it). Every variable must have a meta.
NamedTensors load_named_tensors(const std::string& path);

// ---------------------------------------------------------------- writing (spec §5, §6)

struct SaveOptions {
  /// Write kBool, kInt16 and kBFloat16 (OneFlow <= 0.3 cannot read them).
  bool allow_extended_dtypes = false;
  /// fsync files and directories (tests may turn it off for speed).
  bool durable = true;
};

/// Throws anvil::Error when `name` is not a valid variable directory name (empty, "." or "..",
/// contains '/' or NUL, or is snapshot_done / pickled_data).
void check_variable_name(const std::string& name);

/// Saves `tensors` (host, contiguous) as a variable directory at `path`: refuses a file or non-empty
/// directory ("<path> is a file or non-empty directory!"), writes into `<parent>/.<base>.tmp-<random>`
/// (each `out` and `meta` fsynced, `snapshot_done` last), renames it to `path` and fsyncs the parent.
/// On error the temporary directory is removed and `path` is untouched. Stale temporaries of earlier
/// crashed saves to the same target are removed first.
void save_variable_directory(const std::string& path, const NamedTensors& tensors, const SaveOptions& options = {});

/// The name of the train-step counter variable: "System-Train-TrainStep-<job>", or
/// "System-Train-TrainStep" when `job` is empty (nn.Graph).
std::string train_step_name(const std::string& job);
/// A kInt64 [1] tensor holding `step` (what the train-step counter's `out` stores).
Tensor train_step_tensor(std::int64_t step);

}  // namespace anvil::oneflow
