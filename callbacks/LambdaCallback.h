// LambdaCallback: a callback made of plain functions, one per hook (MindSpore LambdaCallback).
//
//   auto cb = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
//       .on_train_step_end = [](RunContext& ctx) { if (ctx.original_args().cur_step_num == 4) ctx.request_stop(); }});
#pragma once

#include <exception>
#include <functional>

#include "framework/train/Callback.h"

namespace anvil {

/// Each hook calls its function when set and does nothing otherwise (unset hooks do NOT fall back to
/// the legacy aliases: a LambdaCallback never runs a function from a hook it was not given for).
/// Exceptions thrown by a function propagate like those of any hook.
class LambdaCallback : public Callback {
 public:
  using Hook = std::function<void(RunContext&)>;
  using ExceptionHook = std::function<void(RunContext&, const std::exception&)>;

  /// The functions, for designated initializers.
  struct Hooks {
    Hook on_train_begin = {}, on_train_end = {};
    Hook on_train_epoch_begin = {}, on_train_epoch_end = {};
    Hook on_train_step_begin = {}, on_train_step_end = {};
    Hook on_eval_begin = {}, on_eval_end = {};
    Hook on_eval_epoch_begin = {}, on_eval_epoch_end = {};
    Hook on_eval_step_begin = {}, on_eval_step_end = {};
    ExceptionHook on_exception = {};
    /// What runs_in_fit_eval() returns.
    bool runs_in_fit_eval = false;
  };

  explicit LambdaCallback(Hooks hooks) : hooks_(std::move(hooks)) {}

  void on_train_begin(RunContext& ctx) override { call(hooks_.on_train_begin, ctx); }
  void on_train_end(RunContext& ctx) override { call(hooks_.on_train_end, ctx); }
  void on_train_epoch_begin(RunContext& ctx) override { call(hooks_.on_train_epoch_begin, ctx); }
  void on_train_epoch_end(RunContext& ctx) override { call(hooks_.on_train_epoch_end, ctx); }
  void on_train_step_begin(RunContext& ctx) override { call(hooks_.on_train_step_begin, ctx); }
  void on_train_step_end(RunContext& ctx) override { call(hooks_.on_train_step_end, ctx); }
  void on_eval_begin(RunContext& ctx) override { call(hooks_.on_eval_begin, ctx); }
  void on_eval_end(RunContext& ctx) override { call(hooks_.on_eval_end, ctx); }
  void on_eval_epoch_begin(RunContext& ctx) override { call(hooks_.on_eval_epoch_begin, ctx); }
  void on_eval_epoch_end(RunContext& ctx) override { call(hooks_.on_eval_epoch_end, ctx); }
  void on_eval_step_begin(RunContext& ctx) override { call(hooks_.on_eval_step_begin, ctx); }
  void on_eval_step_end(RunContext& ctx) override { call(hooks_.on_eval_step_end, ctx); }
  void on_exception(RunContext& ctx, const std::exception& error) override {
    if (hooks_.on_exception) hooks_.on_exception(ctx, error);
  }
  bool runs_in_fit_eval() const override { return hooks_.runs_in_fit_eval; }

  const Hooks& hooks() const { return hooks_; }

 private:
  static void call(const Hook& f, RunContext& ctx) {
    if (f) f(ctx);
  }
  Hooks hooks_;
};

}  // namespace anvil
