#include "framework/train/CallbackList.h"

#include <fmt/format.h>

#include "framework/core/Error.h"
#include "framework/core/Log.h"

namespace anvil {

CallbackList::CallbackList(std::vector<std::shared_ptr<Callback>> callbacks) : callbacks_(std::move(callbacks)) {
  for (std::size_t i = 0; i < callbacks_.size(); ++i) {
    if (!callbacks_[i])
      throw Error(fmt::format("CallbackList: callback {} of {} is null", i, callbacks_.size()));
  }
}

void CallbackList::each(void (Callback::*hook)(RunContext&), RunContext& ctx) {
  for (auto& cb : callbacks_) ((*cb).*hook)(ctx);
}

void CallbackList::each_always(void (Callback::*hook)(RunContext&), const char* hook_name, RunContext& ctx) {
  std::exception_ptr first;
  for (auto& cb : callbacks_) {
    try {
      ((*cb).*hook)(ctx);
    } catch (const std::exception& e) {
      if (!first) {
        first = std::current_exception();
      } else {
        log(LogLevel::kError, fmt::format("{} of callback {} failed (an earlier error is propagated): {}", hook_name,
                                          cb->name(), e.what()));
      }
    } catch (...) {
      if (!first) {
        first = std::current_exception();
      } else {
        log(LogLevel::kError, fmt::format("{} of callback {} failed with a non-standard exception", hook_name,
                                          cb->name()));
      }
    }
  }
  if (first) std::rethrow_exception(first);
}

void CallbackList::on_before_train(Model& model, DataLoader& loader,
                                   const std::vector<std::shared_ptr<Callback>>& callbacks) {
  for (auto& cb : callbacks_) cb->on_before_train(model, loader, callbacks);
}

void CallbackList::on_train_begin(RunContext& ctx) { each(&Callback::on_train_begin, ctx); }
void CallbackList::on_train_end(RunContext& ctx) { each_always(&Callback::on_train_end, "on_train_end", ctx); }
void CallbackList::on_train_epoch_begin(RunContext& ctx) { each(&Callback::on_train_epoch_begin, ctx); }
void CallbackList::on_train_epoch_end(RunContext& ctx) { each(&Callback::on_train_epoch_end, ctx); }
void CallbackList::on_train_step_begin(RunContext& ctx) { each(&Callback::on_train_step_begin, ctx); }
void CallbackList::on_train_step_end(RunContext& ctx) { each(&Callback::on_train_step_end, ctx); }
void CallbackList::on_eval_begin(RunContext& ctx) { each(&Callback::on_eval_begin, ctx); }
void CallbackList::on_eval_end(RunContext& ctx) { each_always(&Callback::on_eval_end, "on_eval_end", ctx); }
void CallbackList::on_eval_epoch_begin(RunContext& ctx) { each(&Callback::on_eval_epoch_begin, ctx); }
void CallbackList::on_eval_epoch_end(RunContext& ctx) { each(&Callback::on_eval_epoch_end, ctx); }
void CallbackList::on_eval_step_begin(RunContext& ctx) { each(&Callback::on_eval_step_begin, ctx); }
void CallbackList::on_eval_step_end(RunContext& ctx) { each(&Callback::on_eval_step_end, ctx); }

void CallbackList::on_exception(RunContext& ctx, const std::exception& error) {
  for (auto& cb : callbacks_) {
    try {
      cb->on_exception(ctx, error);
    } catch (const std::exception& e) {
      log(LogLevel::kError, fmt::format("on_exception of callback {} failed (ignored; the original error '{}' "
                                        "propagates): {}",
                                        cb->name(), error.what(), e.what()));
    } catch (...) {
      log(LogLevel::kError, fmt::format("on_exception of callback {} failed with a non-standard exception "
                                        "(ignored; the original error '{}' propagates)",
                                        cb->name(), error.what()));
    }
  }
}

bool CallbackList::runs_in_fit_eval() const {
  for (const auto& cb : callbacks_)
    if (cb->runs_in_fit_eval()) return true;
  return false;
}

CallbackList CallbackList::filtered(const std::function<bool(const Callback&)>& keep) const {
  std::vector<std::shared_ptr<Callback>> kept;
  for (const auto& cb : callbacks_)
    if (keep(*cb)) kept.push_back(cb);
  return CallbackList(std::move(kept));
}

}  // namespace anvil
