#include "callbacks/TerminateOnNaN.h"

#include <cmath>
#include <iostream>

#include <fmt/format.h>

#include "callbacks/MonitorUtil.h"

namespace anvil {

std::ostream& TerminateOnNaN::default_stream() { return std::cout; }

void TerminateOnNaN::on_train_step_end(RunContext& ctx) {
  const std::optional<double> loss = cbutil::train_loss(ctx);
  if (!loss || std::isfinite(*loss)) return;
  triggered_ = true;
  *out_ << fmt::format("Batch {}: Invalid loss, terminating training", ctx.original_args().cur_step_num) << std::endl;
  ctx.request_stop();
}

}  // namespace anvil
