// BackupAndRestore: keeps a full resume backup of the running train() and resumes an interrupted run
// from it (spec callbacks-and-checkpointing.md §2, §9; MindSpore BackupAndRestore restores weights only,
// Anvil restores the whole training position).
//
//   auto backup = std::make_shared<BackupAndRestore>("run/backup");
//   std::vector<std::shared_ptr<Callback>> cbs = {early_stopping, csv, backup};   // backup LAST
//   backup->restore(model, loader, cbs);      // resumes run/backup/backup.ckpt when present and valid
//   model.train(10, loader, cbs);             // continues where the interrupted run stopped
//
// Why restore() is a separate call: a resume must be requested before train() computes its first epoch
// (Model::resume_from), which happens before on_train_begin; on_train_begin therefore only checks that
// a backup present was restored, and throws otherwise (running from scratch would overwrite it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "framework/train/Callback.h"

namespace anvil {

class Model;
class DataLoader;

/// At the end of every `save_freq`-th training epoch (cur_epoch_num % save_freq == 0) writes
/// `<backup_dir>/backup.ckpt` with save_train_state(path, ctx): network, optimizer, counters, data
/// position, RNG streams and the state() of every callback of the loop that has a state_key — through
/// save_checkpoint's atomic, durable write (a crash leaves the previous backup intact). Put it after the
/// callbacks whose epoch-end state it must capture (EarlyStopping, History, CSVLogger, ...).
/// Train end: when the loop ended normally (no exception; a request_stop counts as normal) and
/// delete_checkpoint is set, the backup file is deleted. After an exception it stays for the next run.
class BackupAndRestore : public Callback {
 public:
  /// `save_freq` epochs between backups (MindSpore's "epoch" = 1).
  /// Errors: anvil::Error for an empty backup_dir or save_freq < 1.
  explicit BackupAndRestore(std::string backup_dir, int save_freq = 1, bool delete_checkpoint = true);

  /// When backup_path() exists, resumes it with serialization's resume(model, loader, path, callbacks)
  /// (integrity required; epoch, step, RNG, data position and callback states are restored) and returns
  /// true; returns false when there is no backup. Call before model.train(epoch, loader, callbacks)
  /// with the same callbacks. Errors: resume()'s (CheckpointError / anvil::Error) for an invalid backup.
  bool restore(Model& model, DataLoader& loader, const std::vector<std::shared_ptr<Callback>>& callbacks);

  /// Errors: anvil::Error when a backup exists and restore() was not called for this train (it would be
  /// overwritten by a run starting from scratch); creates backup_dir.
  void on_train_begin(RunContext& ctx) override;
  void on_train_epoch_end(RunContext& ctx) override;
  void on_train_end(RunContext& ctx) override;

  /// `<backup_dir>/backup.ckpt`.
  std::string backup_path() const;
  /// True when the last restore() resumed a backup.
  bool restored() const { return restored_; }

 private:
  std::string dir_;
  int save_freq_;
  bool delete_checkpoint_;
  bool restore_called_ = false;
  bool restored_ = false;
};

}  // namespace anvil
