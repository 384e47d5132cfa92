// CheckPoint: see CheckPoint.h and specs/oneflow-vardir.md §7.
#include "serialization/oneflow/CheckPoint.h"

#include "framework/core/Log.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <map>
#include <set>

namespace anvil::oneflow {
namespace {

std::string enum_name(DType d) {
  int v = data_type_for(d, true, "");
  return std::string(data_type_name(v));
}
std::string dtype_label(DType d) {
  try {
    return enum_name(d);
  } catch (const Error&) {
    return dtype_name(d);
  }
}

void check_against(const std::string& name, const Tensor& ckpt, const Tensor& model) {
  if (ckpt.dtype() != model.dtype())
    throw Error(fmt::format("dtype mismatch for \"{}\": checkpoint {} vs model {}", name, dtype_label(ckpt.dtype()),
                            dtype_label(model.dtype())));
  if (ckpt.shape() != model.shape())
    throw Error(fmt::format("shape mismatch for \"{}\": checkpoint {} vs model {}", name, shape_str(ckpt.shape().dims()),
                            shape_str(model.shape().dims())));
}

// dst may be a variable in GPU memory; src is a host tensor read from the directory (same dtype and shape).
void assign(const Tensor& dst, const Tensor& src) { Tensor(dst).copy_from(src); }

bool is_train_step(const std::string& n) { return n.rfind("System-Train-TrainStep", 0) == 0; }

}  // namespace

CheckPoint::CheckPoint(nn::oneflow::VariableStore& store, std::string job, std::ostream* out)
    : store_(store), job_(std::move(job)), out_(out ? out : &std::cout) {}

void CheckPoint::init() {
  for (auto* v : store_.variables(job_)) store_.initialize(v->name, job_);
}

void CheckPoint::save(const std::string& path, const SaveOptions& options) const {
  save_variable_directory(path, store_.named_tensors(job_), options);
}

NamedTensors CheckPoint::get_all_variables() const { return store_.named_tensors(job_); }

LoadReport CheckPoint::load(const std::string& path, const LoadOptions& options) {
  VarDirInfo info = scan_variable_directory(path);
  LoadReport rep;
  rep.warnings = info.warnings;
  for (const auto& w : info.warnings) log(LogLevel::kWarning, w);
  auto vars = store_.variables(job_);
  // name -> entry on disk
  std::map<std::string, const VarEntry*> entries;
  if (info.layout == Layout::kPickle) {
    std::map<std::string, const VarEntry*> by_dir;
    for (auto& e : info.variables) by_dir[e.name] = &e;
    if (info.pickle_names) {
      for (auto& [key, dir] : *info.pickle_names) {
        auto it = by_dir.find(dir);
        if (it == by_dir.end())
          throw Error(fmt::format("'{}': pickled_data maps \"{}\" to '{}', which has no tensor data", path, key, dir));
        entries[key] = it->second;
      }
    } else if (options.bind_by_order) {
      if (info.variables.size() != vars.size())
        throw Error(fmt::format("bind_by_order '{}': {} tensors vs {} model variables", path, info.variables.size(),
                                vars.size()));
      for (std::size_t i = 0; i < vars.size(); ++i) entries[vars[i]->name] = &info.variables[i];
    } else {
      throw Error(fmt::format("'{}' is a pickle-era OneFlow save (flow.save v0.6\u2013v0.9): parameter names are stored "
                              "only in Python pickle 'pickled_data'; use load_raw_tensors() or enable the state-dict "
                              "pickle reader (the restricted reader refused it: {})",
                              path, info.pickle_error));
    }
  } else {
    for (auto& e : info.variables) entries[e.name] = &e;
  }
  // Phase 1: read and validate everything.
  std::vector<std::pair<const nn::oneflow::Variable*, Tensor>> staged;
  std::vector<const nn::oneflow::Variable*> missing;
  std::set<std::string> used;
  for (auto* v : vars) {
    auto it = entries.find(v->name);
    if (it == entries.end()) {
      if (!v->initializer) throw Error("ERROR! variable must has initializer when load failed.");
      missing.push_back(v);
      continue;
    }
    used.insert(v->name);
    Tensor t = read_variable(*it->second, v->tensor.shape(), v->dtype);
    check_against(v->name, t, v->tensor);
    staged.emplace_back(v, t);
  }
  for (auto& [n, e] : entries)
    if (!used.count(n)) rep.unused.push_back(n);
  // Phase 2: assign, then initialize the missing ones with the warning line.
  for (auto& [v, t] : staged) {
    assign(v->tensor, t);
    if (options.reset_train_step && is_train_step(v->name)) {
      Tensor zeros = Tensor::empty(v->tensor.shape(), v->tensor.dtype());  // zero bytes, whatever the dtype
      if (zeros.nbytes()) std::memset(zeros.data_ptr(), 0, zeros.nbytes());
      Tensor(v->tensor).copy_from(zeros);
    }
    rep.loaded.push_back(v->name);
  }
  for (auto* v : missing) {
    std::string p = path;
    *out_ << "WARNING! CANNOT find variable path in : " << p << "/" << v->name << "/out. It will be initialized. \n";
    store_.initialize(v->name, job_);
    rep.initialized.push_back(v->name);
  }
  out_->flush();
  return rep;
}

LoadReport CheckPoint::load_variables(const NamedTensors& dict, bool ignore_mismatch) {
  LoadReport rep;
  std::vector<std::pair<const nn::oneflow::Variable*, Tensor>> staged;
  std::set<std::string> given;
  for (auto& [name, t] : dict) {
    const nn::oneflow::Variable* v = store_.find(name, job_);
    if (!v) {
      if (!ignore_mismatch) throw Error(fmt::format("\"{}\" is not a variable name", name));
      rep.unused.push_back(name);
      continue;
    }
    if (!t.defined()) throw Error(fmt::format("load_variables: \"{}\" is an undefined tensor", name));
    check_against(name, t, v->tensor);
    staged.emplace_back(v, t.clone());
    given.insert(name);
  }
  for (auto& [v, t] : staged) {
    assign(v->tensor, t);
    rep.loaded.push_back(v->name);
  }
  for (auto* v : store_.variables(job_))
    if (!given.count(v->name)) rep.untouched.push_back(v->name);
  return rep;
}

}  // namespace anvil::oneflow
