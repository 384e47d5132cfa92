// History: records per-epoch values of a training run (MindSpore History, spec §2).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "framework/train/Callback.h"

namespace anvil {

/// At every training epoch end appends cur_epoch_num to epoch(), the last step's loss (mean of
/// net_outputs) to history()["net_output"], and each eval_results value (Model::fit) to
/// history()[name]. Cleared at train begin unless load_state() ran since the last train (MindSpore never
/// cleared `history`; Anvil does, so a second train() does not mix runs).
/// State for resume (state_key "History"): everything recorded, as text lines.
class History : public Callback {
 public:
  History() = default;

  void on_train_begin(RunContext& ctx) override;
  void on_train_epoch_end(RunContext& ctx) override;

  std::string state_key() const override { return "History"; }
  /// One line "epoch e1 e2 ..." then one line per key "<key> v1 v2 ..." (keys without spaces).
  std::string state() const override;
  /// Restores state(). Errors: anvil::Error for malformed text.
  void load_state(const std::string& state) override;

  /// The epoch numbers recorded, in order.
  const std::vector<std::int64_t>& epoch() const { return epoch_; }
  /// {"net_output": losses, metric: values}; a metric's list has one value per epoch that reported it.
  const std::map<std::string, std::vector<double>>& history() const { return history_; }

 private:
  std::vector<std::int64_t> epoch_;
  std::map<std::string, std::vector<double>> history_;
  bool restored_ = false;
};

}  // namespace anvil
