// TensorBoard: writes scalar summaries as a TensorBoard events file (spec callbacks-and-checkpointing.md §2).
// Format: TFRecords of Event protobufs, see callbacks/TfRecord.h for the open formats followed.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "framework/train/Callback.h"

namespace anvil {

/// Train begin: creates `log_dir` and the file `events.out.tfevents.<unix_s>.<host>` (a new file per
/// train(); unix_s = whole seconds since the epoch, host = gethostname()), whose first record is an
/// Event with file_version "brain.Event:2". Scalars (Event.summary, simple_value), step = global step:
///   update_freq_steps == 0 ("epoch"): at each train epoch end, "train/loss" (last step's loss) and
///     "train/lr" (the optimizer's current rate), "train/lr_group<i>" (each parameter group's rate,
///     when the optimizer has >= 2 groups);
///   update_freq_steps == N > 0: the same at every N-th global step end instead;
///   at each train epoch end in both modes: "eval/<name>" for every eval_results entry (Model::fit).
/// The file is flushed at every epoch end and closed at train end.
/// Errors: anvil::Error naming the path when the directory or file cannot be created or written.
class TensorBoard : public Callback {
 public:
  /// `update_freq_steps`: 0 = per epoch (MindSpore/Keras "epoch"), N > 0 = every N steps.
  /// Errors: anvil::Error for an empty log_dir or a negative update_freq_steps.
  explicit TensorBoard(std::string log_dir, std::int64_t update_freq_steps = 0);

  void on_train_begin(RunContext& ctx) override;
  void on_train_step_end(RunContext& ctx) override;
  void on_train_epoch_end(RunContext& ctx) override;
  void on_train_end(RunContext& ctx) override;

  /// The events file of the last (or running) train(); "" before the first.
  const std::string& file_path() const { return path_; }

 private:
  void write_scalars(std::int64_t step, const std::vector<std::pair<std::string, float>>& scalars);
  std::vector<std::pair<std::string, float>> train_scalars(const RunContext& ctx) const;

  std::string log_dir_;
  std::int64_t update_freq_steps_;
  std::string path_;
  std::ofstream file_;
};

}  // namespace anvil
