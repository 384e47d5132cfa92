// CheckpointConfig: how ModelCheckpoint saves and prunes checkpoints (MindSpore
// mindspore.train.CheckpointConfig). Spec callbacks-and-checkpointing.md §3.
//
//   CheckpointConfig{.save_checkpoint_steps = 32, .keep_checkpoint_max = 10}
//
// Every numeric field uses 0 for MindSpore's "None"/0 (both mean "off").
//
// Deliberate differences from MindSpore (spec §3 "Normalisation"):
//   * MindSpore silently drops save_checkpoint_seconds when save_checkpoint_steps > 0, and
//     keep_checkpoint_per_n_minutes when keep_checkpoint_max > 0. Anvil keeps both members of each pair:
//     the two triggers are OR'ed and the two retention rules are unioned (a file survives if either keeps
//     it). get_checkpoint_policy() reports the values as given.
//   * keep_checkpoint_max and keep_checkpoint_per_n_minutes both 0 -> keep_checkpoint_max = 1 (as
//     MindSpore) in normalized().
//   * Features MindSpore has but Anvil does not implement are errors, never silently ignored: encryption
//     (enc_key), remove_redundancy on one device, async_save = kProcess, format "safetensors".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "serialization/ParamDict.h"

namespace anvil {

namespace nn {
class Cell;
}

/// MindSpore's async_save: false, true / "thread", "process".
enum class AsyncSave { kOff, kThread, kProcess };

/// One element of MindSpore's append_info list: the name "epoch_num" or "step_num", or a dict of extra
/// entries (int / float / bool / string / tensor values) written after the parameters.
using AppendInfoItem = std::variant<std::string, AppendInfo>;

/// The values of the four periodic settings, as given (MindSpore get_checkpoint_policy()).
struct CheckpointPolicy {
  std::int64_t save_checkpoint_steps = 0;
  std::int64_t save_checkpoint_seconds = 0;
  std::int64_t keep_checkpoint_max = 0;
  std::int64_t keep_checkpoint_per_n_minutes = 0;
};

struct CheckpointConfig {
  // ---- MindSpore's fields and defaults ----
  /// Save when the global step advanced by this many steps since the last steps-triggered save. 0 = off.
  std::int64_t save_checkpoint_steps = 1;
  /// Save when more than this many seconds passed since the last committed checkpoint. 0 = off.
  std::int64_t save_checkpoint_seconds = 0;
  /// Retention: keep the newest K checkpoints of this run. 0 = off.
  std::int64_t keep_checkpoint_max = 5;
  /// Retention: keep the earliest checkpoint of every N-minute cell of a fixed grid of recorded wall
  /// time since the run's first start. 0 = off.
  std::int64_t keep_checkpoint_per_n_minutes = 0;
  /// Accepted for compatibility; no effect on one device.
  bool integrated_save = true;
  /// kThread: snapshot on the training thread, write on a background thread. kProcess: error.
  AsyncSave async_save = AsyncSave::kOff;
  /// Save this network instead of the trained one (then no optimizer state). Null = the train network.
  std::shared_ptr<nn::Cell> saved_network{};
  /// "epoch_num", "step_num" (Int64 0-d entries), and at most one dict of extra entries.
  std::vector<AppendInfoItem> append_info{};
  /// Encryption is not supported: any non-empty key is an error.
  std::string enc_key{};
  std::string enc_mode = "AES-GCM";
  /// Save `<prefix>-<epoch>_<step>_breakpoint.ckpt` when training fails with an exception.
  bool exception_save = false;
  /// Append MindSpore's crc_num integrity trailer (the manifest verifies the file either way).
  bool crc_check = false;
  /// Must be false on one device (as MindSpore).
  bool remove_redundancy = false;
  /// "ckpt" only ("safetensors" is an error until implemented).
  std::string format = "ckpt";

  // ---- Anvil's additions ----
  /// Signals that trigger a save then a clean stop (spec §8; e.g. {SIGTERM, SIGINT}): ModelCheckpoint
  /// installs a flag-only handler through SignalRegistry (shared with OnRequestExit) from train begin to
  /// train end; at the next step end it commits a normal checkpoint (trigger "signal"), then
  /// request_stop(). SIGKILL, SIGSTOP and numbers outside 1..64 are errors. Empty = off.
  std::vector<int> save_on_signals{};
  /// Adopt the files (owner id, prefix, trigger state) of an earlier run of this prefix in the directory.
  bool resume = false;
  /// Write the exact-resume entries (§9: "__resume__.*", see serialization/Resume.h) into every
  /// checkpoint (not with saved_network).
  bool save_resume_state = true;
  /// Async: a trigger while a save is in flight "wait"s for it or is dropped with a warning ("skip").
  std::string async_pending = "wait";
  /// Re-read and verify every checkpoint after it is committed.
  bool verify_after_write = false;
  /// Retention: also keep the best `keep_best_k` checkpoints by `monitor` (0 = off). The value is
  /// "loss" (the step's loss) or a key of cb_params eval_results / metrics at the time of the save.
  std::int64_t keep_best_k = 0;
  std::string monitor = "loss";
  /// "min" or "max": which direction of `monitor` is better.
  std::string mode = "min";

  /// Checks the fields in MindSpore's order (spec §3) and throws anvil::Error naming the field and its
  /// value at the first problem:
  ///   1. every numeric field >= 0 ("For 'CheckpointConfig', the argument 'save_checkpoint_steps' must be
  ///      >= 0, but got -1.");
  ///   2. saved_network is a network (guaranteed by the type);
  ///   3. the four periodic numbers not all 0 (MindSpore's "can't be all None or 0" message);
  ///   4. append_info: names other than "epoch_num"/"step_num", or more than one dict;
  ///   5. format "safetensors" with enc_key, crc_check or exception_save;
  ///   then Anvil's unsupported settings (enc_key, remove_redundancy, async_save kProcess, format)
  ///   and its own fields (save_on_signals: SIGKILL/SIGSTOP/out of range; async_pending, mode, monitor).
  void validate() const;
  /// validate(), then a copy with keep_checkpoint_max = 1 when both retention numbers are 0.
  CheckpointConfig normalized() const;
  /// The four periodic values as given (no normalisation).
  CheckpointPolicy get_checkpoint_policy() const;
  /// True when a periodic trigger (steps or seconds) is configured; without one, only exception and
  /// signal saves happen, and no end save.
  bool has_periodic_trigger() const { return save_checkpoint_steps > 0 || save_checkpoint_seconds > 0; }
  /// True when "epoch_num" / "step_num" is listed in append_info.
  bool appends(const std::string& name) const;
  /// The dict of append_info, or an empty one.
  AppendInfo append_dict() const;
};

}  // namespace anvil
