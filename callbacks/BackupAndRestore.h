// BackupAndRestore: keeps a full resume backup of the running train() and resumes an interrupted run
// from it (spec callbacks-and-checkpointing.md §2, §9; MindSpore BackupAndRestore restores weights only,
// Anvil restores the whole training position).
//
//   auto backup = std::make_shared<BackupAndRestore>("run/backup");
//   std::vector<std::shared_ptr<Callback>> cbs = {early_stopping, csv, backup};   // backup LAST
//   model.train(10, loader, cbs);   // resumes run/backup/backup.ckpt when present, then continues
//
// The resume is automatic: Model::train / Model::fit call Callback::on_before_train before they compute
// the first epoch, and this callback restores its backup there (network, optimizer, epoch, step, RNG,
// data position and the callbacks' states), so the loop continues where the interrupted run stopped.
// restore() stays public for an explicit resume before train() (e.g. to inspect the restored state);
// the following train() then does not restore a second time.
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
  /// true; returns false when there is no backup. Optional: the next train()/fit() calls it by itself
  /// (on_before_train); after an explicit call that train() does not restore again. Call it before
  /// model.train(epoch, loader, callbacks) with the same callbacks.
  /// Errors: resume()'s (CheckpointError / anvil::Error) for an invalid backup (nothing is deleted).
  bool restore(Model& model, DataLoader& loader, const std::vector<std::shared_ptr<Callback>>& callbacks);

  /// Automatic resume: calls restore(model, loader, callbacks) unless restore() was already called
  /// explicitly for this train()/fit(). Errors: restore()'s — an invalid backup fails the train() call
  /// before any other hook (it is kept, never overwritten by a run starting from scratch).
  void on_before_train(Model& model, DataLoader& loader,
                       const std::vector<std::shared_ptr<Callback>>& callbacks) override;
  /// Creates backup_dir and reports a resumed backup in cb_params resumed_from.
  /// Errors: anvil::Error when a backup exists but neither restore() nor on_before_train ran for this
  /// train (a loop that does not call on_before_train would overwrite it starting from scratch);
  /// anvil::Error when backup_dir cannot be created.
  void on_train_begin(RunContext& ctx) override;
  /// Writes the backup at every save_freq-th epoch end (see the class comment).
  void on_train_epoch_end(RunContext& ctx) override;
  /// Deletes the backup after a normal end when delete_checkpoint is set (see the class comment).
  void on_train_end(RunContext& ctx) override;

  /// `<backup_dir>/backup.ckpt`.
  std::string backup_path() const;
  /// True when the last restore() (explicit or automatic) resumed a backup; false again after train end.
  bool restored() const { return restored_; }

 private:
  std::string dir_;
  int save_freq_;
  bool delete_checkpoint_;
  bool restore_called_ = false;
  bool restored_ = false;
};

}  // namespace anvil
