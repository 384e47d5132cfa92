// CSVLogger: one CSV row per training epoch (Keras/MindSpore-style CSVLogger, spec §2).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/train/Callback.h"

namespace anvil {

/// At every training epoch end appends a row: `epoch` (cur_epoch_num), then the values of the sorted
/// keys: "loss" (the last step's loss), "lr" (the optimizer's current learning rate), "lr_group<i>"
/// (each parameter group's rate, Optimizer::current_learning_rates(), when there are >= 2 groups) and every
/// eval_results entry (Model::fit; an entry named "loss" or "lr", e.g. the Loss metric, is written as
/// "eval_loss" / "eval_lr" unless that key is already present). The header ("epoch" + keys) is written once, with the first row; its
/// columns are fixed from then on (a later key not in the header is dropped, a missing one is left
/// empty). Each row is flushed. Numbers are shortest round-trip text.
/// Train begin: append=false truncates the file. append=true keeps it and reuses its header; when the
/// run was resumed (load_state() ran since the last train), rows with epoch > the resumed epoch are
/// first dropped (the file is rewritten through a temporary and a rename), so a resumed run produces
/// no duplicate rows.
/// State for resume (state_key "CSVLogger"): the last epoch written.
/// Errors: anvil::Error naming the file when it cannot be opened or written.
class CSVLogger : public Callback {
 public:
  /// Errors: anvil::Error for an empty filename or separator.
  explicit CSVLogger(std::string filename, std::string separator = ",", bool append = false);

  void on_train_begin(RunContext& ctx) override;
  void on_train_epoch_end(RunContext& ctx) override;

  std::string state_key() const override { return "CSVLogger"; }
  /// The last epoch written, as decimal text ("0" before any row).
  std::string state() const override;
  /// Restores state(). Errors: anvil::Error for text that is not an integer.
  void load_state(const std::string& state) override;

  const std::string& filename() const { return filename_; }

 private:
  void append_line(const std::string& line);

  std::string filename_;
  std::string sep_;
  bool append_;
  std::vector<std::string> columns_;  // header keys after "epoch"; empty until the header exists
  std::int64_t last_epoch_ = 0;
  bool restored_ = false;
};

}  // namespace anvil
