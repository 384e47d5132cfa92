#include "callbacks/TensorBoard.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>

#include <fmt/format.h>

#include "callbacks/MonitorUtil.h"
#include "callbacks/TfRecord.h"
#include "framework/core/Error.h"
#include "framework/optim/Optimizer.h"

namespace anvil {
namespace {

double wall_time_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

}  // namespace

TensorBoard::TensorBoard(std::string log_dir, std::int64_t update_freq_steps)
    : log_dir_(std::move(log_dir)), update_freq_steps_(update_freq_steps) {
  if (log_dir_.empty()) throw Error("TensorBoard: log_dir must not be empty");
  if (update_freq_steps_ < 0)
    throw Error(fmt::format("TensorBoard: update_freq_steps must be >= 0, got {}", update_freq_steps_));
}

void TensorBoard::on_train_begin(RunContext&) {
  if (file_.is_open()) file_.close();
  std::error_code ec;
  std::filesystem::create_directories(log_dir_, ec);
  if (ec) throw Error(fmt::format("TensorBoard: cannot create '{}': {}", log_dir_, ec.message()));
  const double now = wall_time_now();
  const std::string base = fmt::format("events.out.tfevents.{}.{}", static_cast<std::int64_t>(now), host_name());
  path_ = (std::filesystem::path(log_dir_) / base).string();
  // A second train() within the same second must not append to the first file's name: add a suffix.
  for (int i = 1; std::filesystem::exists(path_); ++i)
    path_ = (std::filesystem::path(log_dir_) / fmt::format("{}.{}", base, i)).string();
  file_.open(path_, std::ios::binary | std::ios::trunc);
  if (!file_) throw Error(fmt::format("TensorBoard: cannot create '{}'", path_));
  file_ << tfrecord::frame_record(tfrecord::encode_file_version_event(now, 0, "brain.Event:2"));
  file_.flush();
  if (!file_) throw Error(fmt::format("TensorBoard: cannot write '{}'", path_));
}

std::vector<std::pair<std::string, float>> TensorBoard::train_scalars(const RunContext& ctx) const {
  std::vector<std::pair<std::string, float>> s;
  if (auto loss = cbutil::train_loss(ctx)) s.emplace_back("train/loss", static_cast<float>(*loss));
  if (const Optimizer* opt = ctx.original_args().optimizer)
    s.emplace_back("train/lr", static_cast<float>(opt->current_learning_rate()));
  if (const Optimizer* opt = ctx.original_args().optimizer; opt && opt->num_groups() > 1) {
    const std::vector<double> lrs = opt->current_learning_rates();
    for (std::size_t g = 0; g < lrs.size(); ++g)
      s.emplace_back(fmt::format("train/lr_group{}", g), static_cast<float>(lrs[g]));
  }
  return s;
}

void TensorBoard::write_scalars(std::int64_t step, const std::vector<std::pair<std::string, float>>& scalars) {
  if (!file_.is_open() || scalars.empty()) return;
  file_ << tfrecord::frame_record(tfrecord::encode_scalars_event(wall_time_now(), step, scalars));
  if (!file_) throw Error(fmt::format("TensorBoard: cannot write '{}'", path_));
}

void TensorBoard::on_train_step_end(RunContext& ctx) {
  const std::int64_t step = ctx.original_args().cur_step_num;
  if (update_freq_steps_ > 0 && step % update_freq_steps_ == 0) write_scalars(step, train_scalars(ctx));
}

void TensorBoard::on_train_epoch_end(RunContext& ctx) {
  const CallbackParams& p = ctx.original_args();
  std::vector<std::pair<std::string, float>> s;
  if (update_freq_steps_ == 0) s = train_scalars(ctx);
  for (const auto& [name, value] : p.eval_results) s.emplace_back("eval/" + name, static_cast<float>(value));
  write_scalars(p.cur_step_num, s);
  if (file_.is_open()) {
    file_.flush();
    if (!file_) throw Error(fmt::format("TensorBoard: cannot write '{}'", path_));
  }
}

void TensorBoard::on_train_end(RunContext&) {
  if (file_.is_open()) {
    file_.flush();
    file_.close();
  }
}

}  // namespace anvil
