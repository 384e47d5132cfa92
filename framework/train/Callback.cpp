#include "framework/train/Callback.h"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <typeinfo>

#include <fmt/format.h>

#include "framework/core/Log.h"

namespace anvil {

// The base aliases record that they ran, so that an eval hook can tell whether a subclass overrode the
// alias it is about to call (C++ offers no portable way to ask "is this virtual overridden?").
void Callback::begin(RunContext&) { alias_was_default_ = true; }
void Callback::end(RunContext&) { alias_was_default_ = true; }
void Callback::epoch_begin(RunContext&) { alias_was_default_ = true; }
void Callback::epoch_end(RunContext&) { alias_was_default_ = true; }
void Callback::step_begin(RunContext&) { alias_was_default_ = true; }
void Callback::step_end(RunContext&) { alias_was_default_ = true; }

void Callback::on_exception(RunContext&, const std::exception&) {}

void Callback::on_before_train(Model&, DataLoader&, const std::vector<std::shared_ptr<Callback>>&) {}

void Callback::run_alias_from_eval(void (Callback::*alias)(RunContext&), const char* hook, const char* alias_name,
                                   RunContext& ctx) {
  alias_was_default_ = false;
  (this->*alias)(ctx);
  if (!alias_was_default_ && !eval_alias_warned_) {
    eval_alias_warned_ = true;
    log(LogLevel::kWarning,
        fmt::format("callback {}: its legacy hook '{}' also runs during evaluation (from '{}'), as in MindSpore; "
                    "override the on_train_* hook instead to run in training only",
                    name(), alias_name, hook));
  }
}

void Callback::on_eval_begin(RunContext& ctx) { run_alias_from_eval(&Callback::begin, "on_eval_begin", "begin", ctx); }
void Callback::on_eval_end(RunContext& ctx) { run_alias_from_eval(&Callback::end, "on_eval_end", "end", ctx); }
void Callback::on_eval_epoch_begin(RunContext& ctx) {
  run_alias_from_eval(&Callback::epoch_begin, "on_eval_epoch_begin", "epoch_begin", ctx);
}
void Callback::on_eval_epoch_end(RunContext& ctx) {
  run_alias_from_eval(&Callback::epoch_end, "on_eval_epoch_end", "epoch_end", ctx);
}
void Callback::on_eval_step_begin(RunContext& ctx) {
  run_alias_from_eval(&Callback::step_begin, "on_eval_step_begin", "step_begin", ctx);
}
void Callback::on_eval_step_end(RunContext& ctx) {
  run_alias_from_eval(&Callback::step_end, "on_eval_step_end", "step_end", ctx);
}

std::string Callback::name() const {
  const char* mangled = typeid(*this).name();
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(abi::__cxa_demangle(mangled, nullptr, nullptr, &status),
                                                   std::free);
  return status == 0 && demangled ? std::string(demangled.get()) : std::string(mangled);
}

}  // namespace anvil
