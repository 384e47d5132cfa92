// ModelCheckpoint: saves checkpoints during training and prunes old ones (MindSpore
// mindspore.train.ModelCheckpoint). Spec callbacks-and-checkpointing.md §4–§8.
//
//   auto ckpt = std::make_shared<ModelCheckpoint>("lenet", "ckpts",
//       CheckpointConfig{.save_checkpoint_steps = 100, .keep_checkpoint_max = 3});
//   model.train(10, loader, {ckpt});
//
// Files in `directory` (for the effective prefix P, see prefix()):
//   P-<epoch>_<step_in_epoch>.ckpt           a checkpoint, named exactly as MindSpore names it
//   P-<epoch>_<step_in_epoch>.ckpt.manifest.json
//                                            its manifest (JSON, spec §5): size, CRC-32 and entry count
//                                            of the file (load_checkpoint verifies them), owner id, run
//                                            id, prefix, global step, epoch, step, recorded wall time
//                                            (trigger and commit), the run's first start time, trigger,
//                                            metrics, and the trigger state a resumed run adopts
//   P-graph.meta                             JSON description of the network, written once per prefix
//                                            and never deleted: {"format": "anvil-graph-meta",
//                                            "version": 1, "network": <type>, "cells": [{name, type,
//                                            extra_repr}], "parameters": [{name, shape, dtype}],
//                                            "buffers": [...], "optimizer_state": [...]}
//   P.latest                                 one line: the basename of the newest committed checkpoint
//                                            (replaced atomically)
//   P'-<epoch>_<step_in_epoch>_breakpoint.ckpt
//                                            the exception save (exception_save); P' is de-collided over
//                                            breakpoint files only. Never deleted, not in P.latest
// Temporary files are dot-files ".<name>.tmp-<owner>-<seq>" (never "*.ckpt").
//
// Content of a checkpoint: every parameter and buffer of the train network (or config.saved_network) in
// state_dict() order, then the optimizer's state (not with saved_network), then "epoch_num" /
// "step_num" when listed in append_info (Int64 0-d: cur_epoch_num, and initial_epoch * batch_num +
// cur_step_num), then the append_info dict, then (config.save_resume_state, not with saved_network) the
// exact-resume entries of serialization/Resume.h (train_state_append_info of capture_train_state(ctx):
// "epoch_num"/"step_num" unless already written, "__resume__.trainer", "__resume__.data.train",
// "__resume__.rng.*", "__resume__.callback.*"), so anvil::resume(model, loader, file_or_directory)
// continues bit-exactly from any periodic checkpoint. The manifest records "resume_state" and
// "exact_resume" (false for breakpoint files: the failed step may be partly applied). When the state
// cannot be captured, checkpoints are written without it (one warning).
//
// Commit protocol (§5), for checkpoint X: the data goes to ".X.tmp-O-<seq>" (fsync, mode 0400), the
// manifest to ".X.manifest.json.tmp-O-<seq>" (fsync); if X exists and is not owned by this
// ModelCheckpoint the save fails; then the manifest is renamed to "X.manifest.json", the data to X, and
// the directory is fsynced. X is committed once it exists and matches its manifest. Then P.latest is
// replaced, then retention runs.
//
// Triggers (OR'ed; never two saves at one global step):
//   steps:   global_step - last steps-triggered save >= save_checkpoint_steps;
//   seconds: clock now - recorded trigger time of the last committed save of any trigger (train begin
//            before the first) > save_checkpoint_seconds;
//   end:     at on_train_end (not after an exception) when a periodic trigger is configured and the final
//            step was not saved;
//   exception: in on_exception when exception_save (synchronous; the exception then propagates);
//   signal:  config.save_on_signals (spec §8): on_train_begin installs SignalRegistry's flag-only
//            handler for each signal (shared with OnRequestExit; the previous disposition comes back at
//            on_train_end, also after an exception). At the first step end after one arrived: a normal
//            checkpoint of that step (trigger "signal"; same name, manifest, latest pointer and
//            retention; committed before the hook returns, also with async_save, and never skipped),
//            then request_stop(); the end hooks run and no second (end) save is made for that step.
//            The flag is read, not consumed, so an OnRequestExit for the same signal also sees it.
//            A second signal while that save runs restores the default disposition and re-raises (the
//            process exits at once; the commit protocol leaves only temporaries, earlier checkpoints
//            stay). The flag is polled at train step end and at train end: a checkpoint is exact only
//            at a step boundary, so a signal arriving at step begin, during fit's evaluation or a data
//            wait is handled at the end of the step that follows, or by the train-end save (trigger
//            "signal", also without a periodic trigger) when no step follows.
// Without a periodic trigger (e.g. (0,0,5,0)) nothing is saved except exception and signal saves
// (warned at construction).
//
// Retention (§6) runs after each committed periodic save: the candidates are rediscovered from disk (the
// manifests owned by this instance with this prefix whose file exists with the recorded size), the
// policy is retention_to_delete() (Retention.h) with keep_checkpoint_max, keep_checkpoint_per_n_minutes
// (grid from the run's first start) and keep_best_k; a deleted checkpoint loses its file, then its
// manifest. Never deleted: breakpoint files, graph.meta, other prefixes, files of other owners (e.g. an
// earlier run in the same directory), files without a manifest. A failed deletion warns and is retried
// at the next save.
//
// Prefix de-collision (MindSpore's rule, at construction): when the directory already holds checkpoints
// of `prefix` (P-..., P_1-..., ...) the prefix becomes P_<n>; prefixes held by live ModelCheckpoint
// instances of this process are reserved too. So a fresh run never writes over, nor deletes, an earlier
// run's files. With config.resume an earlier run's manifest with this original prefix is adopted
// instead — the one "<prefix>.latest" names (what anvil::resume restores from), else the newest by
// (global step, recorded time): its owner id, prefix, first start time and trigger state (so retention
// and the seconds cadence continue as in an uninterrupted run); temporaries and uncommitted manifests of
// that owner are removed (and temporaries of this prefix whose owner committed nothing here: a run
// killed during its first save), and retention runs once at the first on_train_begin (a killed run may have left
// a committed checkpoint it had no time to prune). Restore the training state itself with anvil::resume
// (serialization/Resume.h); if the first step shows training continuing before the adopted checkpoint,
// a warning is logged and the steps schedule is rebased on the real position.
//
// Async (config.async_save = kThread): at a trigger the training thread copies every tensor to save
// (a snapshot, always in host memory: tensors on a GPU are copied down on the training thread), then
// one background thread writes, commits and runs retention. The snapshot buffers of
// one save are reused by the next (no allocation, no page faults on the training thread), so during
// train() the callback holds one extra copy of the saved tensors; they are released at on_train_end. At most one save is in flight:
// a trigger while one is running waits for it (async_pending "wait") or is dropped with a warning
// ("skip"; a dropped steps-triggered save still restarts the steps count, so the next one is due N steps
// later; the end save is never dropped). A writer error is rethrown on the training thread at this callback's next hook that finds
// the writer done, and at on_train_end, which waits for the writer. The destructor waits and logs.
//
// cb_params: last_save_ckpt_step (global step) and latest_ckpt_file (full path) are set when a save is
// made (async: when it is handed to the writer).
//
// Hooks run on the training thread; the object is used by one loop at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "callbacks/CheckpointConfig.h"
#include "callbacks/Clock.h"
#include "framework/train/Callback.h"
#include "serialization/ParamDict.h"

namespace anvil {

/// Extra knobs of ModelCheckpoint that MindSpore's signature does not have.
struct ModelCheckpointOptions {
  /// Time source for triggers and recorded times. Null = SystemClock::instance().
  std::shared_ptr<Clock> clock{};
  /// fsync files and the directory (turn off only in tests / scratch runs).
  bool durable = true;
  /// Fault injection for tests: called with a stage name and the checkpoint's basename during every
  /// save, on the thread doing the write. Stages, in order: "data_written" (temp data complete),
  /// "manifest_written" (temp manifest complete), "manifest_renamed", "committed" (data renamed),
  /// "latest_written", "retention_done". An exception thrown from it fails the save at that stage
  /// exactly like an I/O error there would.
  std::function<void(std::string_view stage, const std::string& file)> fault_hook{};
};

class ModelCheckpoint : public Callback {
 public:
  /// `prefix`: file name prefix, a non-empty string without '/' (or '\\'); else anvil::Error
  /// "For 'ModelCheckpoint', the argument 'prefix' for checkpoint file name is invalid, it must be string
  /// and does not contain '/', but got '...'". `directory`: created (mode 0700) when missing; "" = the
  /// working directory; an existing non-directory is an error. `config`: validated (CheckpointConfig::
  /// validate errors propagate). Applies the prefix de-collision or, with config.resume, adopts an
  /// earlier run (see the file comment). Errors: anvil::Error / FileError.
  explicit ModelCheckpoint(std::string prefix = "CKP", std::string directory = "", CheckpointConfig config = {},
                           ModelCheckpointOptions options = {});
  /// Waits for an in-flight async save (errors are logged), releases signals still held and the prefix
  /// reservation.
  ~ModelCheckpoint() override;
  ModelCheckpoint(const ModelCheckpoint&) = delete;
  ModelCheckpoint& operator=(const ModelCheckpoint&) = delete;

  /// Records the run's start time (first run only; adopted on resume) and the step offset
  /// (initial_epoch * batch_num), then acquires config.save_on_signals in SignalRegistry (clearing
  /// their flags). Rethrows a pending async error. Errors: SignalRegistry::acquire's (a failing
  /// sigaction; the signals acquired so far are released).
  void on_train_begin(RunContext& ctx) override;
  /// Checks the signal, steps and seconds triggers and saves when one is due (see the file comment); after
  /// a signal save it calls request_stop(). Rethrows a pending async error first. Errors: the save's
  /// (the training loop then fails).
  void on_train_step_end(RunContext& ctx) override;
  /// keep_best_k with a monitor that fit()'s evaluation provides (e.g. "accuracy", "eval_loss"): when
  /// this epoch's last step was saved without the monitored value (the evaluation runs after the
  /// step), records the value the epoch end sees in that checkpoint's manifest (replaced atomically;
  /// the checkpoint itself is unchanged) and runs retention again. So
  /// CheckpointConfig{.save_checkpoint_steps = <steps per epoch>, .keep_best_k = 1, .monitor =
  /// "accuracy", .mode = "max"} keeps the best epoch by validation accuracy (Keras' save_best_only).
  /// Rethrows a pending async error first; async saves are waited for before the update.
  void on_train_epoch_end(RunContext& ctx) override;
  /// Releases the save_on_signals signals (always, first). End save when due (not after an exception),
  /// then waits for the async writer and rethrows its error. After an exception (cb_params.exception
  /// set) it only waits for the writer and logs its error.
  void on_train_end(RunContext& ctx) override;
  /// With exception_save: drains the async writer, then synchronously commits the breakpoint file.
  /// Failures are logged, never thrown (the original exception must propagate).
  void on_exception(RunContext& ctx, const std::exception& error) override;

  /// The effective prefix (after de-collision or resume adoption).
  const std::string& prefix() const { return prefix_; }
  /// The prefix as given.
  const std::string& original_prefix() const { return original_prefix_; }
  const std::string& directory() const { return directory_; }
  /// This instance's owner id (32 hex digits; adopted on resume).
  const std::string& owner() const { return owner_; }
  /// The config as given.
  const CheckpointConfig& config() const { return given_; }
  /// Full path of the newest checkpoint saved by this instance ("" before the first).
  const std::string& latest_ckpt_file() const { return latest_file_; }
  /// "<directory>/<prefix>.latest".
  std::string latest_pointer_path() const;
  /// "<directory>/<prefix>-graph.meta".
  std::string graph_meta_path() const;
  /// The MindSpore file name "<prefix>-<epoch>_<step_in_epoch>.ckpt".
  static std::string checkpoint_name(const std::string& prefix, std::int64_t epoch, std::int64_t step_in_epoch);
  /// MindSpore's de-collision (spec §4): the prefix to use in `directory` for `prefix`, looking at
  /// "*.ckpt" / "*.safetensors" entries that are breakpoint files (`breakpoints`) or are not.
  static std::string decollide_prefix(const std::string& directory, const std::string& prefix, bool breakpoints);

  struct Job;  // one save: what to write and its metadata (defined in the .cpp)

 private:
  void save(RunContext& ctx, const std::string& trigger);
  std::unique_ptr<Job> make_job(RunContext& ctx, const std::string& trigger, bool snapshot);
  void write_job(Job& job);  // runs on the training thread (sync) or the writer thread (async)
  void run_retention();
  void write_graph_meta(RunContext& ctx);
  void rethrow_async_error(bool wait);
  void wait_writer() noexcept;
  void adopt_earlier_run();
  void acquire_signals();
  void release_signals() noexcept;
  int pending_signal() const;  // the first of config.save_on_signals whose flag is set, or 0
  void signal_save_and_stop(RunContext& ctx, int sig, std::int64_t global);
  void cleanup_owned_leftovers();
  void remove_orphaned_temporaries(const std::vector<std::filesystem::path>& temporaries,
                                   const std::set<std::string>& owners_with_manifest);

  std::string original_prefix_;
  std::string prefix_;
  std::string directory_;
  CheckpointConfig given_;
  CheckpointConfig config_;  // normalized
  ModelCheckpointOptions options_;
  std::string owner_;
  std::string run_id_;
  std::string reserved_key_;
  std::int64_t seq_ = 0;

  std::optional<std::int64_t> run_start_time_ns_;  // the first run's start
  std::int64_t step_offset_ = 0;                   // initial_epoch * batch_num of this train()
  std::int64_t last_steps_save_ = 0;               // global step of the last steps-triggered save
  std::optional<std::int64_t> last_save_time_ns_;  // trigger time of the last committed save
  std::int64_t last_saved_global_step_ = -1;       // never two saves at one global step
  bool adopted_ = false;                           // resume adopted an earlier run's trigger state
  bool adopted_pruned_ = false;                    // retention ran once at the first train begin
  bool adoption_checked_ = false;                  // the first step was compared with the adopted state
  bool graph_meta_done_ = false;
  bool resume_state_warned_ = false;
  std::string latest_file_;
  std::string parent_;                             // basename of the previous checkpoint (manifest "parent")

  std::vector<int> held_signals_;                  // acquired in SignalRegistry by this instance

  std::thread writer_;
  std::atomic<bool> writer_done_{true};
  std::exception_ptr writer_error_;
  NamedTensors snapshot_pool_;  // the last async snapshot's buffers, reused by the next (after join)
};

}  // namespace anvil
