#include "callbacks/OnRequestExit.h"

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include "callbacks/SignalRegistry.h"
#include "framework/core/Error.h"
#include "framework/core/Log.h"
#include "framework/nn/Cell.h"
#include "framework/optim/Optimizer.h"
#include "serialization/Checkpoint.h"
#include "serialization/LoadParam.h"

namespace anvil {

OnRequestExit::OnRequestExit(Options options) : options_(std::move(options)) {
  if (options_.file_name.empty()) throw Error("OnRequestExit: file_name must not be empty");
  for (int sig : options_.signals)
    if (sig <= 0 || sig > 64 || sig == SIGKILL || sig == SIGSTOP)
      throw Error(fmt::format("OnRequestExit: signal {} cannot be handled (SIGKILL/SIGSTOP or out of range)", sig));
}

std::string OnRequestExit::checkpoint_file(bool train) const {
  return (std::filesystem::path(options_.directory) / "rank_0" /
          fmt::format("{}_{}.ckpt", options_.file_name, train ? "train" : "eval"))
      .string();
}

void OnRequestExit::acquire_signals() {
  if (acquired_++ > 0) return;
  for (int sig : options_.signals) {
    SignalRegistry::clear(sig);
    SignalRegistry::acquire(sig);
  }
}

void OnRequestExit::release_signals() {
  if (acquired_ == 0 || --acquired_ > 0) return;
  for (int sig : options_.signals) SignalRegistry::release(sig);
}

bool OnRequestExit::request_arrived() {
  bool any = false;
  for (int sig : options_.signals) any = SignalRegistry::take(sig) || any;
  if (!any && !options_.config_file.empty() && std::filesystem::exists(options_.config_file)) {
    std::ifstream in(options_.config_file);
    std::stringstream ss;
    ss << in.rdbuf();
    static const std::regex kExit(R"re("GracefulExit"\s*:\s*1\b)re");
    any = std::regex_search(ss.str(), kExit);
  }
  return any;
}

void OnRequestExit::save_and_stop(RunContext& ctx, bool train) {
  requested_ = true;
  const CallbackParams& p = ctx.original_args();
  if (options_.save_ckpt && p.network != nullptr) {
    const std::string path = checkpoint_file(train);
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    SaveOptions so;
    so.optimizer = train ? p.optimizer : nullptr;
    so.append_info = {{"epoch_num", std::int64_t{p.cur_epoch_num}},
                      {"step_num", std::int64_t{p.cur_step_num}},
                      {"batch_num", std::int64_t{p.step_in_epoch}}};
    save_checkpoint(*p.network, path, so);
    log(LogLevel::kInfo, fmt::format("OnRequestExit: exit requested; saved '{}', stopping", path));
  }
  ctx.request_stop();
}

void OnRequestExit::on_train_begin(RunContext& ctx) {
  requested_ = false;
  const CallbackParams& p = ctx.original_args();
  const std::string path = checkpoint_file(true);
  if (p.network != nullptr && std::filesystem::exists(path)) {
    const ParamDict dict = load_checkpoint(path);
    load_param_into_net(*p.network, dict, false);
    if (p.optimizer != nullptr) load_param_into_net(*p.optimizer, dict);
    log(LogLevel::kInfo, fmt::format("OnRequestExit: reloaded '{}'", path));
  }
  acquire_signals();
}

void OnRequestExit::on_train_step_end(RunContext& ctx) {
  if (request_arrived()) save_and_stop(ctx, true);
}

void OnRequestExit::on_train_end(RunContext&) { release_signals(); }

void OnRequestExit::on_eval_begin(RunContext&) { acquire_signals(); }

void OnRequestExit::on_eval_step_end(RunContext& ctx) {
  if (request_arrived()) save_and_stop(ctx, false);
}

void OnRequestExit::on_eval_end(RunContext&) { release_signals(); }

}  // namespace anvil
