#include "framework/train/Model.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "framework/autograd/Engine.h"
#include "framework/autograd/GradMode.h"
#include "framework/core/Context.h"
#include "framework/core/Error.h"
#include "framework/core/Log.h"
#include "framework/data/DataLoader.h"
#include "framework/metrics/Loss.h"
#include "framework/metrics/Metric.h"
#include "framework/nn/Cell.h"
#include "framework/nn/losses/LossCell.h"
#include "framework/backend/ComputePrecision.h"
#include "framework/optim/ClipGrad.h"
#include "framework/optim/Optimizer.h"
#include "framework/train/LossScaleManager.h"
#include "framework/train/CallbackList.h"
#include "framework/train/CallbackParams.h"
#include "framework/train/RunContext.h"

namespace anvil {
namespace {

bool is_loss_metric(const Metric& m) { return dynamic_cast<const Loss*>(&m) != nullptr; }

// Calls f with the exception held by `error` as a std::exception (a non-standard one is described by an
// anvil::Error), so that on_exception always gets a std::exception.
template <typename F>
void with_std_exception(const std::exception_ptr& error, F&& f) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    f(e);
  } catch (...) {
    f(Error("non-standard exception (not derived from std::exception)"));
  }
}

// Runs an end hook on the failure path: it must not replace the exception being propagated.
void end_hook_after_failure(CallbackList& list, void (CallbackList::*hook)(RunContext&), const char* hook_name,
                            RunContext& ctx) {
  try {
    (list.*hook)(ctx);
  } catch (const std::exception& e) {
    log(LogLevel::kError, fmt::format("{} failed while handling an earlier error (which propagates): {}",
                                      hook_name, e.what()));
  } catch (...) {
    log(LogLevel::kError,
        fmt::format("{} failed with a non-standard exception while handling an earlier error", hook_name));
  }
}

std::int64_t step_in_epoch(std::int64_t cur_step_num, std::int64_t batch_num) {
  if (cur_step_num <= 0 || batch_num <= 0) return cur_step_num;
  return (cur_step_num - 1) % batch_num + 1;
}

}  // namespace

Model::Model(std::shared_ptr<nn::Cell> network, std::shared_ptr<nn::LossCell> loss_fn,
             std::shared_ptr<Optimizer> optimizer, std::vector<std::shared_ptr<Metric>> metrics,
             ModelOptions options)
    : network_(std::move(network)),
      loss_fn_(std::move(loss_fn)),
      optimizer_(std::move(optimizer)),
      metrics_(std::move(metrics)),
      options_(std::move(options)) {
  if (!network_) throw Error("Model: network is null");
  const std::string& amp = options_.amp_level;
  if (amp != "O0" && amp != "O2" && amp != "O3")
    throw Error(fmt::format("Model: amp_level must be \"O0\", \"O2\" or \"O3\", got \"{}\"", amp));
  if (options_.accumulate_steps < 1)
    throw Error(fmt::format("Model: accumulate_steps must be >= 1, got {}", options_.accumulate_steps));
  if (!std::isfinite(options_.clip_grad_norm) || options_.clip_grad_norm < 0.0)
    throw Error(fmt::format("Model: clip_grad_norm must be finite and >= 0 (0 = off), got {}", options_.clip_grad_norm));
  if (!std::isfinite(options_.clip_grad_value) || options_.clip_grad_value < 0.0)
    throw Error(fmt::format("Model: clip_grad_value must be finite and >= 0 (0 = off), got {}",
                            options_.clip_grad_value));
  std::set<std::string> names;
  for (std::size_t i = 0; i < metrics_.size(); ++i) {
    if (!metrics_[i]) throw Error(fmt::format("Model: metric {} of {} is null", i, metrics_.size()));
    const std::string name = metrics_[i]->name();
    if (!names.insert(name).second)
      throw Error(fmt::format("Model: two metrics are named '{}' (metric names must be unique)", name));
    if (is_loss_metric(*metrics_[i]) && !loss_fn_)
      throw Error(fmt::format("Model: metric '{}' needs a loss function, but loss_fn is null", name));
  }
}

Model::~Model() = default;

void Model::place_on_context_device() {
  const Device target = default_device();
  if (target.is_cpu()) return;
  for (const auto& [name, t] : network_->state_dict())
    if (!t.device().is_cpu()) return;  // already placed by the program: leave it where it is
  log(LogLevel::kInfo, fmt::format("Model: moving the network to {} (set_context device_target)", target.str()));
  network_->to(target);
  if (loss_fn_) loss_fn_->to(target);
}

Tensor Model::train_step(const Batch& batch) {
  if (!loss_fn_) throw Error("Model::train_step: the Model has no loss_fn");
  if (!optimizer_) throw Error("Model::train_step: the Model has no optimizer");
  LossScaleManager* const scaler = options_.loss_scale_manager.get();
  const float scale = scaler ? scaler->get_loss_scale() : 1.0f;
  Tensor loss;
  {
    ComputePrecisionScope amp(compute_precision_for(options_.amp_level));
    Tensor logits = network_->forward(batch.data);  // [N, C]
    loss = (*loss_fn_)(logits, batch.label);        // 0-d
    // d(scale * loss) without an extra op: seed the backward pass with `scale`.
    autograd::backward(loss, scale == 1.0f ? Tensor() : Tensor::full(loss.shape(), scale, loss.dtype()));
  }
  // Detached so that holding the loss (net_outputs, a metric) does not keep the graph alive.
  Tensor out = loss.detach();
  if (++micro_step_ < options_.accumulate_steps) return out;
  micro_step_ = 0;
  const NamedTensors& params = optimizer_->parameters();
  const bool overflow = scaler && scaler->get_drop_overflow_update() && !grads_all_finite(params);
  if (scaler) scaler->update_loss_scale(overflow);
  last_step_skipped_ = overflow;
  if (overflow) {
    optimizer_->zero_grad();
    return out;
  }
  scale_grads(params, 1.0 / (static_cast<double>(scale) * options_.accumulate_steps));
  if (options_.clip_grad_value > 0.0) clip_grad_value(params, options_.clip_grad_value);
  if (options_.clip_grad_norm > 0.0) last_grad_norm_ = clip_grad_norm(params, options_.clip_grad_norm);
  optimizer_->step();
  optimizer_->zero_grad();
  return out;
}

void Model::restore_accumulation(std::int64_t micro_step, const NamedTensors& grads) {
  if (!optimizer_) throw Error("Model::restore_accumulation: the Model has no optimizer");
  if (micro_step < 0 || micro_step >= options_.accumulate_steps)
    throw Error(fmt::format("Model::restore_accumulation: micro_step {} is outside [0, accumulate_steps = {})",
                            micro_step, options_.accumulate_steps));
  if (micro_step == 0 && !grads.empty())
    throw Error("Model::restore_accumulation: accumulated gradients given with micro_step 0");
  const NamedTensors& params = optimizer_->parameters();
  std::vector<const Tensor*> src(params.size(), nullptr);
  for (const auto& [name, g] : grads) {
    auto it = std::find_if(params.begin(), params.end(), [&](const auto& p) { return p.first == name; });
    if (it == params.end())
      throw Error(fmt::format("Model::restore_accumulation: '{}' is not a parameter of the optimizer", name));
    const Tensor& p = it->second;
    if (!g.defined() || g.shape() != p.shape() || g.dtype() != p.dtype())
      throw Error(fmt::format("Model::restore_accumulation: gradient of '{}' is {}, the parameter is {}", name,
                              g.defined() ? g.desc() : std::string("undefined"), p.desc()));
    src[static_cast<std::size_t>(it - params.begin())] = &g;
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    Tensor p = params[i].second;
    if (src[i])
      p.set_grad(src[i]->clone());
    else
      p.zero_grad();
  }
  micro_step_ = micro_step;
}

void Model::train(int epoch, DataLoader& train_dataset, std::vector<std::shared_ptr<Callback>> callbacks,
                  int initial_epoch) {
  run_train("Model::train", epoch, train_dataset, nullptr, std::move(callbacks), 1, initial_epoch);
}

void Model::fit(int epoch, DataLoader& train_dataset, DataLoader& valid_dataset,
                std::vector<std::shared_ptr<Callback>> callbacks, int valid_frequency, int initial_epoch) {
  run_train("Model::fit", epoch, train_dataset, &valid_dataset, std::move(callbacks), valid_frequency,
            initial_epoch);
}

void Model::run_train(const char* who, int epoch, DataLoader& train_dataset, DataLoader* valid_dataset,
                      std::vector<std::shared_ptr<Callback>> callbacks, int valid_frequency, int initial_epoch) {
  if (!loss_fn_) throw Error(fmt::format("{}: the Model has no loss_fn", who));
  if (!optimizer_) throw Error(fmt::format("{}: the Model has no optimizer", who));
  if (epoch < 1) throw Error(fmt::format("{}: epoch must be >= 1, got {}", who, epoch));
  if (initial_epoch < 0 || initial_epoch > epoch)
    throw Error(fmt::format("{}: initial_epoch must be in [0, epoch = {}], got {}", who, epoch, initial_epoch));
  if (valid_frequency < 1)
    throw Error(fmt::format("{}: valid_frequency must be >= 1, got {}", who, valid_frequency));
  CallbackList list(std::move(callbacks));  // a null callback is an argument error
  place_on_context_device();
  // Pre-train hooks: they may request a resume (Model::resume_from) before the start is computed. A
  // failure here propagates at once (nothing has begun) and drops a pending resume request.
  try {
    list.on_before_train(*this, train_dataset, list.callbacks());
  } catch (...) {
    resume_.reset();
    throw;
  }
  // A pending resume_from(): where the first epoch starts and whether it continues mid-way.
  int first_epoch = initial_epoch + 1;
  const bool resuming = resume_.has_value();
  bool continue_first = false;
  std::int64_t first_step_in_epoch = 0;
  std::int64_t start_step = 0;
  if (resume_) {
    const TrainProgress r = *resume_;
    if (initial_epoch != 0 && initial_epoch != r.initial_epoch)
      throw Error(fmt::format("{}: initial_epoch {} conflicts with the resumed run's initial_epoch {} (pass 0)", who,
                              initial_epoch, r.initial_epoch));
    const std::int64_t done = r.epoch_finished ? r.epoch : (r.epoch > 0 ? r.epoch - 1 : r.initial_epoch);
    if (done > epoch)
      throw Error(fmt::format("{}: epoch = {} is before the resumed position ({} epochs finished)", who, epoch, done));
    initial_epoch = static_cast<int>(r.initial_epoch);
    start_step = r.global_step;
    if (r.epoch == 0 || r.epoch_finished) {
      first_epoch = static_cast<int>(std::max<std::int64_t>(r.epoch, r.initial_epoch)) + 1;
    } else {
      first_epoch = static_cast<int>(r.epoch);
      continue_first = true;
      first_step_in_epoch = r.step_in_epoch;
    }
    resume_.reset();
  }
  CallbackList eval_list = list.filtered([](const Callback& cb) { return cb.runs_in_fit_eval(); });

  CallbackParams p;
  p.mode = "train";
  p.model = this;
  p.network = network_.get();
  p.train_network = network_.get();
  p.loss_fn = loss_fn_.get();
  p.optimizer = optimizer_.get();
  p.train_dataset = &train_dataset;
  p.list_callback = &list;
  p.epoch_num = epoch - initial_epoch;
  p.initial_epoch = initial_epoch;
  p.batch_num = train_dataset.num_batches();
  p.cur_epoch_num = first_epoch - 1;
  p.cur_step_num = start_step;
  RunContext ctx(p);
  if (!resuming) progress_ = TrainProgress{0, 0, 0, initial_epoch, false};

  network_->set_train(true);
  try {
    list.on_train_begin(ctx);
    for (int e = first_epoch; e <= epoch; ++e) {
      p.cur_epoch_num = e;
      const bool resumed_epoch = continue_first && e == first_epoch;
      progress_.epoch = e;
      progress_.epoch_finished = false;
      if (resumed_epoch) {
        // Continue the saved run's epoch with its next batch (its epoch-begin hooks already ran).
        p.step_in_epoch = first_step_in_epoch;
        progress_.step_in_epoch = first_step_in_epoch;
        const DataPosition pos{e - 1, first_step_in_epoch, train_dataset.options().seed};
        if (train_dataset.position() != pos) train_dataset.seek(pos);
      } else {
        p.step_in_epoch = 0;
        progress_.step_in_epoch = 0;
        train_dataset.start_epoch(e - 1);
        list.on_train_epoch_begin(ctx);
      }
      while (auto batch = train_dataset.next()) {
        ++p.cur_step_num;
        ++p.step_in_epoch;
        p.train_dataset_element = std::move(*batch);
        list.on_train_step_begin(ctx);
        p.net_outputs = train_step(p.train_dataset_element);
        progress_.global_step = p.cur_step_num;
        progress_.step_in_epoch = p.step_in_epoch;
        list.on_train_step_end(ctx);
        if (ctx.get_stop_requested()) break;
      }
      if (valid_dataset && e % valid_frequency == 0) fit_eval(*valid_dataset, eval_list, p, ctx);
      progress_.epoch_finished = true;
      list.on_train_epoch_end(ctx);
      p.metrics.clear();
      p.eval_results.clear();
      if (ctx.get_stop_requested()) break;
    }
  } catch (...) {
    p.exception = std::current_exception();
    with_std_exception(p.exception, [&](const std::exception& e) { list.on_exception(ctx, e); });
    end_hook_after_failure(list, &CallbackList::on_train_end, "on_train_end", ctx);
    std::rethrow_exception(p.exception);
  }
  try {
    list.on_train_end(ctx);  // runs on every callback even when one throws
  } catch (...) {
    p.exception = std::current_exception();
    with_std_exception(p.exception, [&](const std::exception& e) { list.on_exception(ctx, e); });
    throw;
  }
}

void Model::resume_from(const TrainProgress& progress) {
  const TrainProgress& r = progress;
  if (r.global_step < 0 || r.epoch < 0 || r.step_in_epoch < 0 || r.initial_epoch < 0)
    throw Error(fmt::format("Model::resume_from: negative counter (global_step {}, epoch {}, step_in_epoch {}, "
                            "initial_epoch {})", r.global_step, r.epoch, r.step_in_epoch, r.initial_epoch));
  if (r.step_in_epoch > r.global_step)
    throw Error(fmt::format("Model::resume_from: step_in_epoch {} exceeds global_step {}", r.step_in_epoch,
                            r.global_step));
  if (r.epoch > 0 && r.epoch <= r.initial_epoch)
    throw Error(fmt::format("Model::resume_from: epoch {} is not after initial_epoch {}", r.epoch, r.initial_epoch));
  progress_ = r;
  resume_ = r;
}

void Model::fit_eval(DataLoader& dataset, CallbackList& list, CallbackParams& p, RunContext& ctx) {
  // The pass borrows the train loop's params and context; what it changes is put back afterwards, also
  // when it fails, so that on_exception / on_train_end see the train loop's state.
  const std::string mode = p.mode;
  const std::int64_t batch_num = p.batch_num, cur_step_num = p.cur_step_num, step = p.step_in_epoch;
  const Tensor net_outputs = p.net_outputs;
  CallbackList* const list_callback = p.list_callback;
  const bool stop = ctx.stop_requested_;
  auto restore = [&] {
    ctx.stop_requested_ = stop;
    p.mode = mode;
    p.batch_num = batch_num;
    p.cur_step_num = cur_step_num;
    p.step_in_epoch = step;
    p.net_outputs = net_outputs;
    p.list_callback = list_callback;
    p.eval_dataset_element = Batch{};
    network_->set_train(true);
  };
  ctx.stop_requested_ = false;
  try {
    run_eval(dataset, list, p, ctx, /*in_fit=*/true);
  } catch (...) {
    restore();
    throw;
  }
  restore();
}

std::map<std::string, double> Model::eval(DataLoader& valid_dataset, std::vector<std::shared_ptr<Callback>> callbacks) {
  CallbackList list(std::move(callbacks));
  place_on_context_device();
  CallbackParams p;
  p.model = this;
  p.network = network_.get();
  p.loss_fn = loss_fn_.get();
  p.optimizer = optimizer_.get();
  RunContext ctx(p);
  return run_eval(valid_dataset, list, p, ctx, /*in_fit=*/false);
}

std::map<std::string, double> Model::run_eval(DataLoader& dataset, CallbackList& list, CallbackParams& p,
                                              RunContext& ctx, bool in_fit) {
  network_->set_train(false);
  NoGradGuard no_grad;
  p.mode = "eval";
  p.eval_network = network_.get();
  p.valid_dataset = &dataset;
  p.list_callback = &list;
  p.batch_num = dataset.num_batches();
  p.cur_step_num = 0;
  p.step_in_epoch = 0;
  p.metrics.clear();
  for (auto& m : metrics_) m->clear();

  std::map<std::string, double> results;
  list.on_eval_begin(ctx);
  try {
    list.on_eval_epoch_begin(ctx);
    double loss_sum = 0.0;  // sum over samples of the per-sample loss (batch mean * batch size)
    double loss_count = 0.0;
    dataset.start_epoch(0);
    while (auto batch = dataset.next()) {
      ++p.cur_step_num;
      p.step_in_epoch = step_in_epoch(p.cur_step_num, p.batch_num);
      p.eval_dataset_element = std::move(*batch);
      const Batch& b = p.eval_dataset_element;
      list.on_eval_step_begin(ctx);
      Tensor logits;  // [N, C]
      {
        ComputePrecisionScope amp(compute_precision_for(options_.amp_level));
        logits = network_->forward(b.data);
      }
      Tensor loss;
      if (loss_fn_) {
        loss = (*loss_fn_)(logits, b.label);
        const double n = b.label.defined() && b.label.rank() >= 1 ? static_cast<double>(b.label.dim(0)) : 1.0;
        loss_sum += loss.item() * n;
        loss_count += n;
      }
      for (auto& m : metrics_) m->update(is_loss_metric(*m) ? loss : logits, b.label);
      p.net_outputs = loss.defined() ? loss : logits;
      list.on_eval_step_end(ctx);
      if (ctx.get_stop_requested()) break;
    }
    list.on_eval_epoch_end(ctx);
    for (auto& m : metrics_) results[m->name()] = m->eval();
    p.metrics = results;
    if (in_fit) {
      p.eval_results = results;
      if (loss_count > 0) p.eval_results["eval_loss"] = loss_sum / loss_count;
    }
  } catch (...) {
    if (!in_fit) {
      p.exception = std::current_exception();
      with_std_exception(p.exception, [&](const std::exception& e) { list.on_exception(ctx, e); });
    }
    end_hook_after_failure(list, &CallbackList::on_eval_end, "on_eval_end", ctx);
    throw;
  }
  try {
    list.on_eval_end(ctx);
  } catch (...) {
    if (!in_fit) {
      p.exception = std::current_exception();
      with_std_exception(p.exception, [&](const std::exception& e) { list.on_exception(ctx, e); });
    }
    throw;
  }
  return results;
}

Tensor Model::predict(const Tensor& input) {
  place_on_context_device();
  network_->set_train(false);
  NoGradGuard no_grad;
  ComputePrecisionScope amp(compute_precision_for(options_.amp_level));
  return network_->forward(input);
}

std::string Model::summary() const { return network_->summary(); }

std::string Model::summary(const Tensor& sample) const { return network_->summary(sample); }

}  // namespace anvil
