#include "callbacks/BackupAndRestore.h"

#include <filesystem>

#include <fmt/format.h>

#include "framework/core/Error.h"
#include "framework/core/Log.h"
#include "framework/train/Model.h"
#include "serialization/Resume.h"

namespace anvil {

BackupAndRestore::BackupAndRestore(std::string backup_dir, int save_freq, bool delete_checkpoint)
    : dir_(std::move(backup_dir)), save_freq_(save_freq), delete_checkpoint_(delete_checkpoint) {
  if (dir_.empty()) throw Error("BackupAndRestore: backup_dir must not be empty");
  if (save_freq_ < 1) throw Error(fmt::format("BackupAndRestore: save_freq must be >= 1, got {}", save_freq_));
}

std::string BackupAndRestore::backup_path() const { return (std::filesystem::path(dir_) / "backup.ckpt").string(); }

bool BackupAndRestore::restore(Model& model, DataLoader& loader, const std::vector<std::shared_ptr<Callback>>& callbacks) {
  restore_called_ = true;
  restored_ = false;
  if (!std::filesystem::exists(backup_path())) return false;
  const ResumeResult r = resume(model, loader, backup_path(), callbacks);
  log(LogLevel::kInfo, fmt::format("BackupAndRestore: resumed '{}' at global step {}", r.path, r.progress.global_step));
  restored_ = true;
  return true;
}

void BackupAndRestore::on_before_train(Model& model, DataLoader& loader,
                                       const std::vector<std::shared_ptr<Callback>>& callbacks) {
  // Restored explicitly for this train() (its resume request is still pending): never twice. An
  // explicit restore() that found no backup, or whose request a failed train() dropped, is redone.
  if (restore_called_ && restored_ && model.resume_pending()) return;
  restore(model, loader, callbacks);
}

void BackupAndRestore::on_train_begin(RunContext& ctx) {
  const bool called = restore_called_;
  restore_called_ = false;
  if (!called && std::filesystem::exists(backup_path()))
    throw Error(fmt::format("BackupAndRestore: '{}' holds a backup of an interrupted run, but it was not restored (this "
                            "loop did not call on_before_train); call restore(model, loader, callbacks) before "
                            "training (or delete it to start over)", backup_path()));
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw Error(fmt::format("BackupAndRestore: cannot create '{}': {}", dir_, ec.message()));
  if (restored_) ctx.original_args().resumed_from = backup_path();
}

void BackupAndRestore::on_train_epoch_end(RunContext& ctx) {
  if (ctx.original_args().cur_epoch_num % save_freq_ != 0) return;
  save_train_state(backup_path(), ctx);
}

void BackupAndRestore::on_train_end(RunContext& ctx) {
  restored_ = false;
  if (ctx.original_args().exception || !delete_checkpoint_) return;
  std::error_code ec;
  std::filesystem::remove(backup_path(), ec);
  if (ec) log(LogLevel::kWarning, fmt::format("BackupAndRestore: cannot delete '{}': {}", backup_path(), ec.message()));
}

}  // namespace anvil
