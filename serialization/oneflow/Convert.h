// Conversion between MindSpore .ckpt files and OneFlow variable directories (same network state:
// names, shapes, dtypes and bytes).
#pragma once

#include <string>
#include <vector>

#include "serialization/oneflow/VarDir.h"

namespace anvil::oneflow {

struct ConvertReport {
  std::size_t tensors = 0;               // entries converted
  std::vector<std::string> skipped;      // .ckpt string entries (no variable-directory equivalent)
  std::vector<std::string> warnings;     // scan warnings of the variable directory
};

/// Reads the .ckpt `ckpt_path` and saves its tensor entries as a variable directory at `dir`
/// (save_variable_directory rules: `dir` new or empty; atomic). String entries are skipped and
/// reported. Throws anvil::Error for a dtype the format cannot hold (naming the entry).
ConvertReport ckpt_to_variable_directory(const std::string& ckpt_path, const std::string& dir,
                                         const SaveOptions& options = {});

/// Reads the variable directory `dir` (load_named_tensors: every era with meta; era D needs names
/// from pickled_data) and writes a .ckpt at `ckpt_path` (atomic, with the integrity trailer).
ConvertReport variable_directory_to_ckpt(const std::string& dir, const std::string& ckpt_path);

/// A human-readable description of a variable directory: layout, marker, warnings, and per variable
/// its name, DataType, shape and `out` size (what `anvil ckpt info DIR` prints).
std::string describe_variable_directory(const std::string& dir);

}  // namespace anvil::oneflow
