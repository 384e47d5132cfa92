#include "callbacks/LearningRateScheduler.h"

#include "framework/core/Error.h"
#include "framework/optim/Optimizer.h"

namespace anvil {

LearningRateScheduler::LearningRateScheduler(Fn fn) : fn_(std::move(fn)) {
  if (!fn_) throw Error("LearningRateScheduler: the function must not be empty");
}

void LearningRateScheduler::on_train_begin(RunContext& ctx) {
  Optimizer* opt = ctx.original_args().optimizer;
  if (opt == nullptr) throw Error("LearningRateScheduler: the training loop has no optimizer");
  if (opt->learning_rate_schedule())
    throw Error("LearningRateScheduler: the optimizer uses a dynamic learning-rate schedule; use a fixed rate");
}

void LearningRateScheduler::on_train_step_end(RunContext& ctx) {
  Optimizer* opt = ctx.original_args().optimizer;
  if (opt == nullptr) return;
  const double lr = opt->current_learning_rate();
  const double next = fn_(lr, ctx.original_args().cur_step_num);
  if (next != lr) opt->set_learning_rate(next);
}

}  // namespace anvil
