#include "framework/optim/Optimizer.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>

#include <fmt/format.h>

#include "framework/backend/Backend.h"
#include "framework/core/Error.h"

namespace anvil {
namespace {

constexpr const char* kGlobalStep = "global_step";
constexpr const char* kLearningRate = "learning_rate";

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += "'" + n + "'";
  }
  return out;
}

constexpr const char* kGroupLearningRate = "learning_rate_group_";

std::string group_lr_name(std::size_t g) {
  std::string name = kGroupLearningRate;  // (+= rather than "literal" + std::string: g++ 12 -Wrestrict)
  name += std::to_string(g);
  return name;
}

bool is_scalar_shape(const Shape& s) { return s.numel() == 1 && s.rank() <= 1; }

void check_rate(const std::string& who, const char* what, double lr) {
  if (!std::isfinite(lr) || lr < 0.0)
    throw Error(fmt::format("{}: {} must be finite and >= 0, got {}", who, what, lr));
}

}  // namespace

bool mindspore_decay_filter(const std::string& name) {
  return name.find("beta") == std::string::npos && name.find("gamma") == std::string::npos;
}

Optimizer::~Optimizer() = default;

Optimizer::Optimizer(std::string who, OptimizerParams given, LearningRate learning_rate, double weight_decay,
                     const ParamFilter& decay_filter)
    : who_(std::move(who)), weight_decay_(weight_decay) {
  if (!std::isfinite(weight_decay) || weight_decay < 0.0)
    throw Error(fmt::format("{}: weight_decay must be finite and >= 0, got {}", who_, weight_decay));
  if (!given.grouped()) {
    params_ = given.params();
    groups_.push_back(Group{false, 0.0, nullptr, weight_decay});
    param_group_.assign(params_.size(), 0);
  } else {
    // Groups: frozen parameters are dropped; order_params (when given) fixes the order.
    const auto& groups = given.groups();
    if (groups.empty()) throw Error(fmt::format("{}: the list of parameter groups is empty", who_));
    std::unordered_map<const TensorImpl*, std::size_t> group_of;
    NamedTensors by_group;
    std::vector<std::size_t> by_group_index;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const ParamGroup& pg = groups[g];
      Group gr;
      if (pg.lr) {
        gr.own_lr = true;
        group_lr_ = true;
        if (pg.lr->is_schedule()) {
          if (!pg.lr->schedule())
            throw Error(fmt::format("{}: the learning-rate schedule of parameter group {} is null", who_, g));
          gr.schedule = pg.lr->schedule();
        } else {
          check_rate(who_, fmt::format("the learning rate of parameter group {}", g).c_str(), pg.lr->value());
          gr.lr = pg.lr->value();
        }
      }
      gr.weight_decay = pg.weight_decay.value_or(weight_decay);
      if (!std::isfinite(gr.weight_decay) || gr.weight_decay < 0.0)
        throw Error(fmt::format("{}: weight_decay of parameter group {} must be finite and >= 0, got {}", who_, g,
                                gr.weight_decay));
      groups_.push_back(std::move(gr));
      for (const auto& [name, t] : pg.params) {
        if (t.defined() && !t.requires_grad()) continue;  // frozen: no state, never updated
        if (t.defined()) {
          auto [it, fresh] = group_of.emplace(t.impl(), g);
          if (!fresh)
            throw Error(fmt::format("{}: parameter '{}' is in parameter groups {} and {} (a parameter may belong "
                                    "to one group only)", who_, name, it->second, g));
        }
        by_group.emplace_back(name, t);
        by_group_index.push_back(g);
      }
    }
    if (given.order_params().empty()) {
      params_ = std::move(by_group);
      param_group_ = std::move(by_group_index);
    } else {
      std::size_t n_order = 0;
      for (const auto& [name, t] : given.order_params()) {
        if (t.defined() && !t.requires_grad()) continue;
        auto it = t.defined() ? group_of.find(t.impl()) : group_of.end();
        if (it == group_of.end())
          throw Error(fmt::format("{}: order_params entry '{}' is not in any parameter group", who_, name));
        params_.emplace_back(name, t);
        param_group_.push_back(it->second);
        ++n_order;
      }
      if (n_order < by_group.size()) {
        std::unordered_map<const TensorImpl*, bool> in_order;
        for (const auto& [name, t] : params_) in_order[t.impl()] = true;
        for (const auto& [name, t] : by_group)
          if (!in_order.count(t.impl()))
            throw Error(fmt::format("{}: parameter '{}' of the groups is missing from order_params", who_, name));
      }
    }
    if (params_.empty())
      throw Error(fmt::format("{}: the parameter groups hold no trainable parameter", who_));
  }
  if (params_.empty()) throw Error(fmt::format("{}: the parameter list is empty", who_));
  std::unordered_map<std::string, std::size_t> by_name;
  std::unordered_map<const TensorImpl*, std::size_t> by_impl;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, t] = params_[i];
    if (name.empty()) throw Error(fmt::format("{}: parameter {} has an empty name", who_, i));
    if (auto [it, fresh] = by_name.emplace(name, i); !fresh)
      throw Error(fmt::format("{}: duplicate parameter name '{}' (entries {} and {})", who_, name, it->second, i));
    if (!t.defined()) throw Error(fmt::format("{}: parameter '{}' is an undefined tensor", who_, name));
    if (auto [it, fresh] = by_impl.emplace(t.impl(), i); !fresh)
      throw Error(fmt::format("{}: parameters '{}' and '{}' are the same tensor", who_, params_[it->second].first,
                              name));
    if (!t.is_leaf())
      throw Error(fmt::format("{}: parameter '{}' ({}) is not a leaf tensor (it has a grad_fn)", who_, name,
                              t.desc()));
    if (!t.requires_grad())
      throw Error(fmt::format(
          "{}: parameter '{}' ({}) does not require grad; pass only trainable parameters (Cell::trainable_params())",
          who_, name, t.desc()));
  }
  if (learning_rate.is_schedule()) {
    if (!learning_rate.schedule()) throw Error(fmt::format("{}: the learning-rate schedule is null", who_));
    schedule_ = learning_rate.schedule();
  } else {
    check_rate(who_, "learning rate", learning_rate.value());
    lr_ = learning_rate.value();
  }
  decays_.reserve(params_.size());
  for (const auto& [name, t] : params_)
    decays_.push_back(given.grouped() ? true : (decay_filter ? decay_filter(name) : mindspore_decay_filter(name)));
}

std::size_t Optimizer::add_slot(const std::string& prefix) {
  Slot s;
  s.prefix = prefix;
  s.buffers.reserve(params_.size());
  // On the parameter's device: a network moved to a GPU before the optimizer is built gets its state
  // there at once (a backend also adopts host state at the first update).
  for (const auto& [name, p] : params_) s.buffers.push_back(Tensor::zeros(p.shape(), p.dtype()).to(p.device()));
  slots_.push_back(std::move(s));
  return slots_.size() - 1;
}

Tensor& Optimizer::slot(std::size_t slot_index, std::size_t param_index) {
  return slots_.at(slot_index).buffers.at(param_index);
}

void Optimizer::step() {
  // Validate everything first, so that a bad gradient leaves parameters and state untouched.
  std::vector<Tensor> grads(params_.size());
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (g.dtype() != p.dtype() || g.shape() != p.shape())
      throw Error(fmt::format("{}.step: gradient of '{}' is {} but the parameter is {}", who_, name, g.desc(),
                              p.desc()));
    grads[i] = std::move(g);
  }
  const std::vector<double> lrs = current_learning_rates();
  for (std::size_t g = 0; g < lrs.size(); ++g) {
    if (!std::isfinite(lrs[g]) || lrs[g] < 0.0)
      throw Error(fmt::format("{}.step: the learning-rate schedule{} returned {} at global step {}", who_,
                              groups_.size() > 1 ? fmt::format(" of parameter group {}", g) : std::string(), lrs[g],
                              global_step_));
  }
  begin_step();
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!grads[i].defined()) continue;
    Tensor& p = params_[i].second;
    const std::size_t g = param_group_[i];
    update_parameter(backend_for(p.device()), i, p, grads[i], lrs[g], decays_[i] ? groups_[g].weight_decay : 0.0);
  }
  ++global_step_;
}

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

double Optimizer::current_learning_rate() const { return schedule_ ? (*schedule_)(global_step_) : lr_; }

double Optimizer::group_rate(std::size_t g) const {
  const Group& gr = groups_[g];
  if (!gr.own_lr) return current_learning_rate();
  return gr.schedule ? (*gr.schedule)(global_step_) : gr.lr;
}

std::vector<double> Optimizer::current_learning_rates() const {
  std::vector<double> out;
  out.reserve(groups_.size());
  for (std::size_t g = 0; g < groups_.size(); ++g) out.push_back(group_rate(g));
  return out;
}

double Optimizer::group_weight_decay(std::size_t group) const {
  if (group >= groups_.size())
    throw Error(fmt::format("{}.group_weight_decay: group {} out of range ({} groups)", who_, group, groups_.size()));
  return groups_[group].weight_decay;
}

std::size_t Optimizer::param_group(std::size_t index) const {
  if (index >= param_group_.size())
    throw Error(fmt::format("{}.param_group: index {} out of range ({} parameters)", who_, index,
                            param_group_.size()));
  return param_group_[index];
}

void Optimizer::set_group_learning_rate(std::size_t group, double lr) {
  if (!group_lr_)
    throw Error(fmt::format("{}.set_group_learning_rate: the optimizer has no per-group learning rates; use "
                            "set_learning_rate", who_));
  if (group >= groups_.size())
    throw Error(fmt::format("{}.set_group_learning_rate: group {} out of range ({} groups)", who_, group,
                            groups_.size()));
  check_rate(who_, "learning rate", lr);
  groups_[group].own_lr = true;
  groups_[group].schedule = nullptr;
  groups_[group].lr = lr;
}

void Optimizer::set_learning_rate(double lr) {
  if (schedule_)
    throw Error(fmt::format(
        "{}.set_learning_rate: the learning rate is a schedule; replace it with set_learning_rate_schedule()", who_));
  check_rate(who_, "learning rate", lr);
  lr_ = lr;
}

void Optimizer::set_learning_rate_schedule(std::shared_ptr<const LearningRateSchedule> schedule) {
  if (!schedule) throw Error(fmt::format("{}.set_learning_rate_schedule: the schedule is null", who_));
  schedule_ = std::move(schedule);
}

void Optimizer::set_global_step(std::int64_t step) {
  if (step < 0) throw Error(fmt::format("{}.set_global_step: step must be >= 0, got {}", who_, step));
  global_step_ = step;
}

bool Optimizer::decays_weight(std::size_t index) const {
  if (index >= decays_.size())
    throw Error(fmt::format("{}.decays_weight: index {} out of range ({} parameters)", who_, index, decays_.size()));
  return decays_[index];
}

void Optimizer::append_scalar_state(NamedTensors&) const {}

void Optimizer::check_scalar_state(const std::string& name, double) const {
  throw Error(fmt::format("{}: no scalar state entry '{}'", who_, name));
}

void Optimizer::set_scalar_state(const std::string& name, const Tensor&) {
  throw Error(fmt::format("{}: no scalar state entry '{}'", who_, name));
}

double Optimizer::keep_exact_if_same(double current, const Tensor& loaded) {
  const double v = loaded.item();
  if (v == current) return current;
  if (loaded.dtype() == DType::kF32 && static_cast<float>(v) == static_cast<float>(current)) return current;
  return v;
}

NamedTensors Optimizer::state_dict() const {
  if (global_step_ > std::numeric_limits<std::int32_t>::max())
    throw Error(fmt::format("{}.state_dict: global_step {} does not fit MindSpore's int32 global_step", who_,
                            global_step_));
  NamedTensors out;
  out.emplace_back(kGlobalStep, Tensor::full(Shape{1}, static_cast<double>(global_step_), DType::kI32));
  if (group_lr_) {
    for (std::size_t g = 0; g < groups_.size(); ++g)
      out.emplace_back(group_lr_name(g), Tensor::scalar(group_rate(g), DType::kF32));
  } else {
    out.emplace_back(kLearningRate, Tensor::scalar(current_learning_rate(), DType::kF32));
  }
  append_scalar_state(out);
  for (const auto& s : slots_)
    for (std::size_t i = 0; i < params_.size(); ++i) out.emplace_back(s.prefix + "." + params_[i].first, s.buffers[i]);
  return out;
}

void Optimizer::load_state_dict(const NamedTensors& state) {
  const std::string where = who_ + ".load_state_dict";
  NamedTensors expected = state_dict();
  std::size_t n_scalars = expected.size();
  for (const auto& s : slots_) n_scalars -= s.buffers.size();

  std::unordered_map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < expected.size(); ++i) index.emplace(expected[i].first, i);

  // 1. Match names: unknown and repeated names.
  std::vector<const Tensor*> given(expected.size(), nullptr);
  std::vector<std::string> unknown;
  for (const auto& [name, t] : state) {
    auto it = index.find(name);
    if (it == index.end()) {
      unknown.push_back(name);
      continue;
    }
    if (given[it->second]) throw Error(fmt::format("{}: entry '{}' is given twice", where, name));
    given[it->second] = &t;
  }
  if (!unknown.empty()) {
    std::string known;
    for (std::size_t i = 0; i < n_scalars; ++i) known += "'" + expected[i].first + "', ";
    for (const auto& s : slots_) known += "'" + s.prefix + ".<parameter>', ";
    known.resize(known.size() - 2);
    throw Error(fmt::format("{}: {} entr{} not part of the {} state: {} (its entries are {})", where, unknown.size(),
                            unknown.size() == 1 ? "y is" : "ies are", who_, join(unknown), known));
  }

  // 2. Missing entries ("global_step" is optional).
  std::vector<std::string> missing;
  for (std::size_t i = 0; i < expected.size(); ++i)
    if (!given[i] && expected[i].first != kGlobalStep) missing.push_back(expected[i].first);
  if (!missing.empty())
    throw Error(fmt::format("{}: {} entr{} missing from the given state: {}", where, missing.size(),
                            missing.size() == 1 ? "y is" : "ies are", join(missing)));

  // 3. Tensors: defined, shapes, dtypes, scalar values.
  std::vector<std::string> shape_errors;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (!given[i]) continue;
    const auto& name = expected[i].first;
    const Tensor& want = expected[i].second;
    const Tensor& got = *given[i];
    if (!got.defined()) throw Error(fmt::format("{}: entry '{}' is an undefined tensor", where, name));
    const bool scalar = i < n_scalars;
    const bool shape_ok = scalar ? is_scalar_shape(got.shape()) : got.shape() == want.shape();
    if (!shape_ok) {
      shape_errors.push_back(
          fmt::format("'{}': given {}, expected {}", name, got.shape().str(), want.shape().str()));
      continue;
    }
    const bool want_float = is_compute_type(want.dtype());
    const bool got_ok = want_float ? is_compute_type(got.dtype())
                                   : (got.dtype() == DType::kI32 || got.dtype() == DType::kI64);
    if (!got_ok)
      throw Error(fmt::format("{}: entry '{}' has dtype {}, expected {}{}", where, name, dtype_name(got.dtype()),
                              dtype_name(want.dtype()), want_float ? " (or another float type)" : " or int64"));
    if (!scalar) continue;
    const double v = got.item();
    if (name == kGlobalStep) {
      if (v < 0) throw Error(fmt::format("{}: entry 'global_step' must be >= 0, got {}", where, v));
    } else if (name == kLearningRate || name.rfind(kGroupLearningRate, 0) == 0) {
      if (!std::isfinite(v) || v < 0.0)
        throw Error(fmt::format("{}: entry '{}' must be finite and >= 0, got {}", where, name, v));
    } else {
      check_scalar_state(name, v);
    }
  }
  if (!shape_errors.empty()) {
    std::string msg;
    for (const auto& e : shape_errors) msg += (msg.empty() ? "" : "; ") + e;
    throw Error(fmt::format("{}: shape mismatch for {}", where, msg));
  }

  // 4. Apply (nothing below throws for validated input).
  // Groups without their own rate follow the optimizer-level one. The saved run may have given some of
  // them their own rate (set_group_learning_rate), which the file does not record: the shared rate is
  // the current one when a saved value matches it, else the first such group's; groups whose saved rate
  // differs from the shared one keep it as their own from now on. Every group's rate is restored.
  std::optional<double> base_rate;
  if (!schedule_) {
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const auto& name = expected[i].first;
      if (name.rfind(kGroupLearningRate, 0) != 0 || groups_[std::stoul(name.substr(std::strlen(kGroupLearningRate)))].own_lr)
        continue;
      const double v = keep_exact_if_same(lr_, *given[i]);
      if (v == lr_) base_rate = lr_;
      if (!base_rate) base_rate = v;
      if (v == lr_) break;
    }
  }
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& name = expected[i].first;
    if (i >= n_scalars) {
      expected[i].second.copy_from(*given[i]);  // live slot buffer
    } else if (name == kGlobalStep) {
      global_step_ = given[i] ? static_cast<std::int64_t>(given[i]->item()) : 0;
    } else if (name == kLearningRate) {
      if (!schedule_) lr_ = keep_exact_if_same(lr_, *given[i]);
    } else if (name.rfind(kGroupLearningRate, 0) == 0) {
      const std::size_t g = std::stoul(name.substr(std::strlen(kGroupLearningRate)));
      Group& gr = groups_[g];
      if (!gr.own_lr) {
        // Follows the shared rate (base_rate above) or, when its saved rate differs, keeps that one.
        if (base_rate) {
          const double v = keep_exact_if_same(*base_rate, *given[i]);
          if (v == *base_rate) {
            lr_ = *base_rate;
          } else {
            gr.own_lr = true;
            gr.lr = v;
          }
        }
      } else if (!gr.schedule) {
        gr.lr = keep_exact_if_same(gr.lr, *given[i]);
      }
    } else {
      set_scalar_state(name, *given[i]);
    }
  }
}

}  // namespace anvil
