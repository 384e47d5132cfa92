// Conversion .ckpt <-> OneFlow variable directory: see Convert.h.
#include "serialization/oneflow/Convert.h"

#include <algorithm>

#include "serialization/Checkpoint.h"
#include "serialization/ParamDict.h"

namespace anvil::oneflow {

ConvertReport ckpt_to_variable_directory(const std::string& ckpt_path, const std::string& dir,
                                         const SaveOptions& options) {
  ParamDict dict = load_checkpoint(ckpt_path);
  ConvertReport rep;
  NamedTensors ts;
  for (const auto& e : dict) {
    if (e.is_string()) {
      rep.skipped.push_back(e.name);
      continue;
    }
    ts.emplace_back(e.name, std::get<Tensor>(e.value));
  }
  save_variable_directory(dir, ts, options);
  rep.tensors = ts.size();
  return rep;
}

ConvertReport variable_directory_to_ckpt(const std::string& dir, const std::string& ckpt_path) {
  ConvertReport rep;
  rep.warnings = scan_variable_directory(dir).warnings;
  NamedTensors ts = load_named_tensors(dir);
  anvil::SaveOptions o;
  save_checkpoint(ts, ckpt_path, o);
  rep.tensors = ts.size();
  return rep;
}

std::string describe_variable_directory(const std::string& dir) {
  VarDirInfo info = scan_variable_directory(dir);
  const char* layout = info.layout == Layout::kSingleVariable ? "single variable"
                       : info.layout == Layout::kPickle      ? "pickle-era flow.save directory (tensor_N)"
                                                             : "variable directory";
  std::string s = fmt::format("directory  {}\nformat     OneFlow {}\nmarker     {}\nvariables  {}\n", dir, layout,
                              info.has_snapshot_done ? "snapshot_done" : "none", info.variables.size());
  if (info.layout == Layout::kPickle)
    s += info.pickle_names ? fmt::format("names      {} from pickled_data\n", info.pickle_names->size())
                           : fmt::format("names      unavailable: {}\n", info.pickle_error);
  for (const auto& w : info.warnings) s += fmt::format("warning    {}\n", w);
  std::size_t w = 4;
  for (const auto& v : info.variables) w = std::max(w, v.name.size());
  s += fmt::format("\n{:<{}}  {:<10}  {:<18}  {:>10}  {}\n", "name", w, "data_type", "shape", "bytes", "");
  for (const auto& v : info.variables) {
    std::string type = "?", shape = "?", note;
    if (v.meta) {
      type = std::string(data_type_name(v.meta->data_type));
      shape = shape_str(v.meta->shape);
      auto dt = dtype_from_data_type(v.meta->data_type);
      std::int64_t n = 1;
      for (auto d : v.meta->shape) n *= d;
      std::uint64_t need = static_cast<std::uint64_t>(n) * dtype_size(*dt);
      if (need != v.out_size) note = fmt::format("SIZE MISMATCH: meta needs {} bytes", need);
    } else {
      note = "no meta (shape and dtype come from the model)";
    }
    s += fmt::format("{:<{}}  {:<10}  {:<18}  {:>10}  {}\n", v.name, w, type, shape, v.out_size, note);
  }
  return s;
}

}  // namespace anvil::oneflow
