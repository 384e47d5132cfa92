#include "serialization/LoadParam.h"

#include <cstring>
#include <regex>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "framework/core/Log.h"
#include "framework/nn/Cell.h"
#include "framework/optim/Optimizer.h"
#include "serialization/TensorType.h"

namespace anvil {

std::string NameMapping::apply(const std::string& name) const {
  std::string s = name;
  for (const auto& p : strip_prefixes) {
    if (!p.empty() && s.compare(0, p.size(), p) == 0) {
      s.erase(0, p.size());
      break;
    }
  }
  for (const auto& [pattern, replacement] : regex_renames) {
    std::regex re;
    try {
      re = std::regex(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      ANVIL_THROW("invalid regex '{}' in NameMapping: {}", pattern, e.what());
    }
    s = std::regex_replace(s, re, replacement);
  }
  return add_prefix + s;
}

namespace {

std::string join(const std::vector<std::string>& v, std::size_t max_items = 50) {
  std::string out;
  for (std::size_t i = 0; i < v.size() && i < max_items; ++i) {
    out.append(i ? ", '" : "'");
    out.append(v[i]);
    out.push_back('\'');
  }
  if (v.size() > max_items) out += fmt::format(", ... ({} more)", v.size() - max_items);
  return out;
}

bool starts_with(const std::string& s, std::string_view p) { return s.compare(0, p.size(), p) == 0; }

// A checkpoint value offered for matching.
struct Source {
  std::string name;    // as in the checkpoint
  std::string mapped;  // after NameMapping
  bool is_string = false;
  DType dtype = DType::kF32;
  Shape shape;
};

struct Match {
  std::size_t target;
  std::size_t source;
  bool convert;
};

struct Plan {
  std::vector<Match> matches;
  std::vector<std::string> param_not_load;
  std::vector<bool> used;  // per source
};

// 0-d <-> [1], and checkpoint = target + trailing 1s.
bool shape_compatible(const Shape& ckpt, const Shape& target) {
  if (ckpt == target) return true;
  if (ckpt.rank() == 0 && target.rank() == 1 && target[0] == 1) return true;
  if (ckpt.rank() <= target.rank()) return false;
  for (std::size_t i = 0; i < ckpt.rank(); ++i) {
    const std::int64_t want = i < target.rank() ? target.dims()[i] : 1;
    if (ckpt.dims()[i] != want) return false;
  }
  return true;
}

// Matches targets to sources and validates every match (throws before anything is copied). `warn`:
// log MindSpore's "not loaded" warning and the conversion warning.
Plan make_plan(const char* who, const char* what, const NamedTensors& targets, const std::vector<Source>& sources,
               const LoadParamOptions& options, bool is_optimizer, bool warn = true) {
  Plan plan;
  plan.used.assign(sources.size(), false);
  std::unordered_map<std::string, std::size_t> by_name;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    auto [it, fresh] = by_name.emplace(sources[i].mapped, i);
    if (!fresh)
      throw Error(fmt::format("{}: checkpoint entries '{}' and '{}' both map to the name '{}'", who,
                              sources[it->second].name, sources[i].name, sources[i].mapped));
  }
  std::vector<std::size_t> src_of(targets.size(), SIZE_MAX);
  for (std::size_t t = 0; t < targets.size(); ++t) {
    auto it = by_name.find(targets[t].first);
    if (it != by_name.end() && !sources[it->second].is_string) {
      src_of[t] = it->second;
      plan.used[it->second] = true;
    }
  }
  if (options.suffix_fallback) {
    for (std::size_t t = 0; t < targets.size(); ++t) {
      if (src_of[t] != SIZE_MAX) continue;
      const std::string& name = targets[t].first;
      // The candidate with the shortest name wins; a tie is ambiguous and matches nothing.
      std::size_t found = SIZE_MAX;
      int count = 0;
      for (std::size_t i = 0; i < sources.size(); ++i) {
        if (plan.used[i] || sources[i].is_string) continue;
        const std::string& m = sources[i].mapped;
        const bool a = m.size() > name.size() && m.compare(m.size() - name.size(), name.size(), name) == 0 &&
                       m[m.size() - name.size() - 1] == '.';
        const bool b = name.size() > m.size() && name.compare(name.size() - m.size(), m.size(), m) == 0 &&
                       name[name.size() - m.size() - 1] == '.';
        if (!a && !b) continue;
        if (found == SIZE_MAX || m.size() < sources[found].mapped.size()) {
          found = i;
          count = 1;
        } else if (m.size() == sources[found].mapped.size()) {
          ++count;
        }
      }
      if (count == 1) {
        src_of[t] = found;
        plan.used[found] = true;
      }
    }
  }

  std::vector<std::string> shape_errors, dtype_errors, conversions, missing;
  for (std::size_t t = 0; t < targets.size(); ++t) {
    const auto& [name, tensor] = targets[t];
    if (src_of[t] == SIZE_MAX) {
      if (!starts_with(name, "accu_grads")) missing.push_back(name);
      continue;
    }
    const Source& s = sources[src_of[t]];
    const std::string label = s.name == name ? fmt::format("'{}'", name) : fmt::format("'{}' (from '{}')", name, s.name);
    if (!shape_compatible(s.shape, tensor.shape())) {
      shape_errors.push_back(fmt::format("{}: checkpoint {}, {} {}", label, s.shape.str(), what, tensor.shape().str()));
      continue;
    }
    bool convert = false;
    if (s.dtype != tensor.dtype()) {
      if (options.strict_load || !is_convertible_dtype(s.dtype, tensor.dtype())) {
        dtype_errors.push_back(fmt::format("{}: checkpoint {}, {} {}{}", label, dtype_name(s.dtype), what,
                                           dtype_name(tensor.dtype()),
                                           options.strict_load && is_convertible_dtype(s.dtype, tensor.dtype())
                                               ? " (strict_load forbids conversion)"
                                               : ""));
        continue;
      }
      convert = true;
      conversions.push_back(fmt::format("{} {} -> {}", label, dtype_name(s.dtype), dtype_name(tensor.dtype())));
    }
    plan.matches.push_back(Match{t, src_of[t], convert});
  }
  if (!shape_errors.empty()) {
    std::string msg;
    for (const auto& e : shape_errors) msg.append(msg.empty() ? "" : "; ").append(e);
    throw Error(fmt::format("{}: shape mismatch ({} should have the same shape as the checkpoint): {}", who, what, msg));
  }
  if (!dtype_errors.empty()) {
    std::string msg;
    for (const auto& e : dtype_errors) msg.append(msg.empty() ? "" : "; ").append(e);
    throw Error(fmt::format("{}: dtype mismatch: {}", who, msg));
  }
  if (!missing.empty()) {
    std::vector<std::string> required;
    for (const auto& m : missing)
      if (!(is_optimizer && m == "global_step")) required.push_back(m);
    if (options.strict_load && !required.empty())
      throw Error(fmt::format("{}: strict_load: {} {} of the {} are not in the checkpoint: {}", who, required.size(),
                              required.size() == 1 ? "entry" : "entries", what, join(required)));
    plan.param_not_load = missing;
    if (warn)
      log(LogLevel::kWarning,
        fmt::format("For '{}', {} parameters in the '{}' are not loaded, because they are not in the "
                    "'parameter_dict', please check whether the network structure is consistent when training and "
                    "loading checkpoint. Not loaded: {}",
                    who, missing.size(), is_optimizer ? "optimizer" : "net", join(missing)));
  }
  if (warn && !conversions.empty())
    log(LogLevel::kWarning, fmt::format("{}: converting {} value(s) to the {}'s dtype: {}", who, conversions.size(),
                                        what, fmt::join(conversions, ", ")));
  return plan;
}

std::vector<Source> sources_of(const ParamDict& params, const NameMapping& mapping) {
  std::vector<Source> out;
  out.reserve(params.size());
  for (const auto& e : params) {
    Source s;
    s.name = e.name;
    s.mapped = mapping.empty() ? e.name : mapping.apply(e.name);
    if (e.is_string()) {
      s.is_string = true;
    } else {
      const Tensor& t = std::get<Tensor>(e.value);
      s.dtype = t.dtype();
      s.shape = t.shape();
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<std::string> unused(const std::vector<Source>& sources, const std::vector<bool>& used) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < sources.size(); ++i)
    if (!used[i]) out.push_back(sources[i].name);
  return out;
}

// Calls fill(host_address) with dst's memory, or, for a tensor in GPU memory, with a host staging
// buffer of dst's shape and dtype that is then copied to the device (host code never writes device memory).
template <typename F>
void fill_through_host(const Tensor& dst, F&& fill) {
  if (dst.device().is_cpu()) {
    fill(dst.data_ptr());
    return;
  }
  Tensor staging = Tensor::empty(dst.shape(), dst.dtype());
  fill(staging.data_ptr());
  Tensor(dst).copy_from(staging);
}

// Copies (or converts) src's elements into dst's memory. Shapes are compatible (same numel). Either may
// live in GPU memory.
void assign(const Tensor& dst, const Tensor& src_any) {
  const Tensor src = src_any.to(Device::cpu());  // itself when already on the host
  fill_through_host(dst, [&](void* d) {
    convert_elements(src.data_ptr(), src.dtype(), d, dst.dtype(), static_cast<std::size_t>(dst.numel()));
  });
}

}  // namespace

LoadParamResult load_param_into_net(nn::Cell& net, const ParamDict& params, const LoadParamOptions& options) {
  const NamedTensors targets = net.state_dict();
  const std::vector<Source> sources = sources_of(params, options.name_mapping);
  Plan plan = make_plan("load_param_into_net", "network", targets, sources, options, false);
  for (const Match& m : plan.matches)
    assign(targets[m.target].second, std::get<Tensor>(params.entries()[m.source].value));
  return LoadParamResult{std::move(plan.param_not_load), unused(sources, plan.used)};
}

LoadParamResult load_param_into_net(nn::Cell& net, const ParamDict& params, bool strict_load) {
  LoadParamOptions o;
  o.strict_load = strict_load;
  return load_param_into_net(net, params, o);
}

LoadParamResult load_param_into_net(Optimizer& optimizer, const ParamDict& params, const LoadParamOptions& options) {
  const std::string who = "load_param_into_net(" + optimizer.name() + ")";
  const NamedTensors targets = optimizer.state_dict();
  const std::vector<Source> sources = sources_of(params, options.name_mapping);
  Plan plan = make_plan(who.c_str(), "optimizer state", targets, sources, options, true);
  // The complete state: loaded values (in the state's dtype and shape) or the current ones.
  NamedTensors state = targets;
  for (const Match& m : plan.matches) {
    const Tensor& want = targets[m.target].second;
    const Tensor& src = std::get<Tensor>(params.entries()[m.source].value);
    // load_state_dict converts between compute types itself, keeping e.g. a float64 learning rate
    // exact; other types are converted here.
    const bool native = is_floating(want.dtype()) ? is_compute_type(src.dtype())
                                                  : (src.dtype() == DType::kI32 || src.dtype() == DType::kI64);
    Tensor t = Tensor::empty(want.shape(), native ? src.dtype() : want.dtype());
    assign(t, src);
    state[m.target].second = t;
  }
  optimizer.load_state_dict(state);
  return LoadParamResult{std::move(plan.param_not_load), unused(sources, plan.used)};
}

LoadParamResult load_checkpoint_into_net(nn::Cell& net, const std::string& path, const LoadIntoNetOptions& options) {
  ReaderOptions ro;
  ro.strict = options.load.strict;
  ro.require_integrity = options.load.require_integrity;
  ro.warn_unverified = options.load.warn_unverified;
  ro.manifest_path = options.load.manifest_path;
  ro.context = "load_checkpoint_into_net";
  const CheckpointReader reader(path, ro);
  const NamePredicate keep = load_filter(options.load);

  std::vector<const CheckpointItem*> items;
  std::vector<Source> sources;
  for (const auto& item : reader.items()) {
    if (item.kind == CheckpointItem::Kind::kMapTensor || !keep(item.tag)) continue;
    Source s;
    s.name = item.tag;
    s.mapped = options.param.name_mapping.empty() ? item.tag : options.param.name_mapping.apply(item.tag);
    s.is_string = item.kind == CheckpointItem::Kind::kString;
    s.dtype = item.dtype;
    s.shape = item.shape;
    sources.push_back(std::move(s));
    items.push_back(&item);
  }
  if (sources.empty())
    throw_ckpt_error("load_checkpoint_into_net", CkptErrc::kFiltered, path,
                     fmt::format("the filters selected none of its {} entries", reader.items().size()));

  const NamedTensors targets = net.state_dict();
  Plan plan = make_plan("load_checkpoint_into_net", "network", targets, sources, options.param, false);
  std::vector<bool> used = plan.used;

  if (options.optimizer) {
    const std::string who = "load_checkpoint_into_net(" + options.optimizer->name() + ")";
    // Validation only (the load below re-plans on the selected entries and warns once).
    Plan oplan =
        make_plan(who.c_str(), "optimizer state", options.optimizer->state_dict(), sources, options.param, true, false);
    // Optimizer state is small next to the network's; read its entries and load them (validated by the
    // optimizer) before touching the network, so a rejected state changes nothing.
    ParamDict sub;
    for (std::size_t i = 0; i < sources.size(); ++i)
      if (oplan.used[i]) {
        sub.set(sources[i].name, reader.read_tensor(*items[i]));
        used[i] = true;
      }
    LoadParamOptions po = options.param;
    load_param_into_net(*options.optimizer, sub, po);
  }

  std::vector<unsigned char> scratch;
  for (const Match& m : plan.matches) {
    const Tensor& dst = targets[m.target].second;
    const CheckpointItem& item = *items[m.source];
    if (!m.convert) {
      fill_through_host(dst, [&](void* d) { reader.read_into(item, d); });  // straight into a host parameter
    } else {
      scratch.resize(static_cast<std::size_t>(item.nbytes));
      reader.read_into(item, scratch.data());
      fill_through_host(dst, [&](void* d) {
        convert_elements(scratch.data(), item.dtype, d, dst.dtype(), static_cast<std::size_t>(dst.numel()));
      });
    }
  }
  return LoadParamResult{std::move(plan.param_not_load), unused(sources, used)};
}

}  // namespace anvil
