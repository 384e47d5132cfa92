// CallbackList: an ordered list of callbacks that is itself a Callback (MindSpore _ListCallback).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "framework/train/Callback.h"

namespace anvil {

/// Dispatches every hook to its callbacks in list order.
///
/// Failures: for begin, epoch and step hooks the first exception stops the dispatch and propagates (the
/// loop then runs on_exception and the end hook). The end hooks (on_train_end, on_eval_end) run on EVERY
/// callback even when one throws: the first exception is rethrown after all ran, later ones are logged.
/// on_exception runs on every callback and never throws: errors inside it are logged.
class CallbackList : public Callback {
 public:
  /// Errors: anvil::Error naming the index of the first null element.
  explicit CallbackList(std::vector<std::shared_ptr<Callback>> callbacks = {});

  /// Calls on_before_train(model, loader, callbacks) on every element in list order (the same
  /// `callbacks` for each); the first exception stops the dispatch and propagates.
  void on_before_train(Model& model, DataLoader& loader,
                       const std::vector<std::shared_ptr<Callback>>& callbacks) override;
  void on_train_begin(RunContext& ctx) override;
  void on_train_end(RunContext& ctx) override;
  void on_train_epoch_begin(RunContext& ctx) override;
  void on_train_epoch_end(RunContext& ctx) override;
  void on_train_step_begin(RunContext& ctx) override;
  void on_train_step_end(RunContext& ctx) override;
  void on_eval_begin(RunContext& ctx) override;
  void on_eval_end(RunContext& ctx) override;
  void on_eval_epoch_begin(RunContext& ctx) override;
  void on_eval_epoch_end(RunContext& ctx) override;
  void on_eval_step_begin(RunContext& ctx) override;
  void on_eval_step_end(RunContext& ctx) override;
  /// Never throws (see the class comment).
  void on_exception(RunContext& ctx, const std::exception& error) override;

  /// True when any element takes part in fit's evaluation pass.
  bool runs_in_fit_eval() const override;

  /// The elements for which `keep` returns true, in order (e.g. those with runs_in_fit_eval()).
  CallbackList filtered(const std::function<bool(const Callback&)>& keep) const;

  const std::vector<std::shared_ptr<Callback>>& callbacks() const { return callbacks_; }
  std::size_t size() const { return callbacks_.size(); }
  bool empty() const { return callbacks_.empty(); }

 private:
  void each(void (Callback::*hook)(RunContext&), RunContext& ctx);
  void each_always(void (Callback::*hook)(RunContext&), const char* hook_name, RunContext& ctx);

  std::vector<std::shared_ptr<Callback>> callbacks_;
};

}  // namespace anvil
