#include "serialization/Checkpoint.h"

#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>

#include "framework/core/Log.h"
#include "framework/nn/Cell.h"
#include "framework/optim/Optimizer.h"

namespace anvil {
namespace {

CheckpointWriterOptions writer_options(const SaveOptions& o) {
  CheckpointWriterOptions w;
  w.crc_check = o.crc_check;
  w.legacy_scalar_dims = o.legacy_scalar_dims;
  w.slice_bytes = o.slice_bytes;
  w.file.durable = o.durable;
  w.file.mode = o.file_mode;
  return w;
}

// One entry to save: a tensor, or a string.
struct SaveItem {
  std::string name;
  Tensor tensor;
  const std::string* text = nullptr;
};

CheckpointFileInfo write_all(const char* who, std::vector<SaveItem> items, const std::string& path_in,
                             const SaveOptions& options) {
  const std::string path = checkpoint_path(path_in);
  std::vector<std::string> append_strings;  // keeps converted append values alive
  std::vector<Tensor> append_tensors;
  for (const auto& [name, value] : options.append_info) {
    if (const auto* s = std::get_if<std::string>(&value)) {
      items.push_back(SaveItem{name, Tensor(), s});
    } else {
      items.push_back(SaveItem{name, append_value_tensor(value), nullptr});
    }
  }
  // Validate everything before the file exists.
  std::unordered_map<std::string, int> seen;
  std::vector<std::string> repeats;
  for (const auto& it : items) {
    if (it.name.empty()) throw Error(fmt::format("{}: an entry for '{}' has an empty name", who, path));
    if (seen[it.name]++ == 1) repeats.push_back(it.name);
    if (!it.text) {
      if (!it.tensor.defined()) throw Error(fmt::format("{}: entry '{}' is an undefined tensor", who, it.name));
    }
  }
  if (!repeats.empty()) {
    std::string list;
    for (const auto& r : repeats) list.append(list.empty() ? "'" : ", '").append(r).append("'");
    throw Error(fmt::format("{}: names given more than once (network, optimizer and append_info entries share one "
                            "namespace): {}",
                            who, list));
  }
  CheckpointWriter w(path, writer_options(options));
  for (const auto& it : items) {
    if (it.text)
      w.write_string(it.name, *it.text);
    else
      w.write_tensor(it.name, it.tensor);
  }
  return w.commit();
}

}  // namespace

std::string checkpoint_path(const std::string& path) {
  constexpr std::string_view kSuffix = ".ckpt";
  if (path.size() >= kSuffix.size() && path.compare(path.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0)
    return path;
  return path + std::string(kSuffix);
}

CheckpointFileInfo save_checkpoint(const nn::Cell& net, const std::string& path, const SaveOptions& options) {
  std::vector<SaveItem> items;
  for (auto& [name, t] : net.state_dict())
    if (!options.choice_func || options.choice_func(name)) items.push_back(SaveItem{name, t, nullptr});
  if (options.optimizer)
    for (auto& [name, t] : options.optimizer->state_dict())
      if (!options.choice_func || options.choice_func(name)) items.push_back(SaveItem{name, t, nullptr});
  return write_all("save_checkpoint", std::move(items), path, options);
}

CheckpointFileInfo save_checkpoint(const NamedTensors& entries, const std::string& path, const SaveOptions& options) {
  ANVIL_CHECK(options.optimizer == nullptr,
              "save_checkpoint: SaveOptions::optimizer applies to the Cell overload only; append its "
              "state_dict() to the list instead (file '{}')",
              path);
  std::vector<SaveItem> items;
  for (const auto& [name, t] : entries)
    if (!options.choice_func || options.choice_func(name)) items.push_back(SaveItem{name, t, nullptr});
  return write_all("save_checkpoint", std::move(items), path, options);
}

CheckpointFileInfo save_checkpoint(const ParamDict& dict, const std::string& path, const SaveOptions& options) {
  ANVIL_CHECK(options.optimizer == nullptr,
              "save_checkpoint: SaveOptions::optimizer applies to the Cell overload only (file '{}')", path);
  std::vector<SaveItem> items;
  for (const auto& e : dict) {
    if (options.choice_func && !options.choice_func(e.name)) continue;
    if (e.is_tensor())
      items.push_back(SaveItem{e.name, std::get<Tensor>(e.value), nullptr});
    else
      items.push_back(SaveItem{e.name, Tensor(), &std::get<std::string>(e.value)});
  }
  return write_all("save_checkpoint", std::move(items), path, options);
}

NamePredicate load_filter(const LoadOptions& options) {
  const bool prefixes = !options.specify_prefix.empty() || !options.filter_prefix.empty();
  if (prefixes && options.choice_func)
    log(LogLevel::kWarning, "load_checkpoint: choice_func is ignored because specify_prefix/filter_prefix is given");
  if (!prefixes) {
    if (options.choice_func) return options.choice_func;
    return [](const std::string&) { return true; };
  }
  return [spec = options.specify_prefix, filt = options.filter_prefix](const std::string& name) {
    auto starts = [&](const std::string& p) { return name.compare(0, p.size(), p) == 0; };
    if (!spec.empty() && std::none_of(spec.begin(), spec.end(), starts)) return false;
    return std::none_of(filt.begin(), filt.end(), starts);
  };
}

ParamDict load_checkpoint(const std::string& path, const LoadOptions& options) {
  ReaderOptions ro;
  ro.strict = options.strict;
  ro.require_integrity = options.require_integrity;
  ro.warn_unverified = options.warn_unverified;
  ro.manifest_path = options.manifest_path;
  ro.context = "load_checkpoint";
  CheckpointReader reader(path, ro);
  const NamePredicate keep = load_filter(options);
  ParamDict dict;
  for (const auto& item : reader.items()) {
    if (!keep(item.tag)) continue;
    if (item.kind == CheckpointItem::Kind::kString)
      dict.set(item.tag, reader.read_string(item));
    else if (item.kind == CheckpointItem::Kind::kTensor)
      dict.set(item.tag, reader.read_tensor(item));
  }
  if (dict.empty())
    throw_ckpt_error("load_checkpoint", CkptErrc::kFiltered, path,
                     fmt::format("the filters selected none of its {} entries", reader.items().size()));
  return dict;
}

}  // namespace anvil
