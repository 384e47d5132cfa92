// CallbackParams: what a training or evaluation loop tells its callbacks (MindSpore `cb_params`).
//
// Model fills one CallbackParams per train()/eval()/fit() call and hands it to every hook through
// RunContext::original_args(). Field names are MindSpore's. Object fields are NON-OWNING pointers, valid
// for the duration of the hook call (the objects belong to the Model and the caller); a callback that
// wants to keep one must not outlive the train()/eval() call it came from. Fields a loop does not use are
// left at their defaults (null, 0, empty).
//
// Counters (spec §1):
//   cur_step_num   global step: 0 before the first step, +1 per step, never reset per epoch; a new
//                  train() restarts it at 0 (also with initial_epoch), except after Model::resume_from
//                  (exact resume), where it continues from the saved step. In eval: 1, 2, ... per batch.
//   cur_epoch_num  1-based epoch number (initial_epoch + 1 for the first epoch a train() runs).
//   epoch_num      epoch - initial_epoch (epochs this call trains).
//   batch_num      batches per epoch of the dataset being iterated (DataLoader::num_batches()).
//   step_in_epoch  1-based step in the epoch (0 before its first step); in train equal to
//                  (cur_step_num - 1) mod batch_num + 1 when every epoch has batch_num batches.
#pragma once

#include <cstdint>
#include <exception>
#include <map>
#include <string>

#include "framework/data/Batch.h"
#include "framework/tensor/Tensor.h"

namespace anvil {

namespace nn {
class Cell;
class LossCell;
}  // namespace nn
class Optimizer;
class DataLoader;
class CallbackList;
class Model;

struct CallbackParams {
  // ---- common to train and eval ----
  /// "train" while training (also in the epoch-end part of fit), "eval" while evaluating.
  std::string mode = "train";
  /// The Model running the loop (e.g. for capture_train_state(RunContext&) in TrainState.h).
  Model* model = nullptr;
  /// The network being trained/evaluated (Model's network).
  nn::Cell* network = nullptr;
  /// The callbacks of the running loop (in fit's evaluation pass: only those that take part in it).
  CallbackList* list_callback = nullptr;
  std::int64_t cur_epoch_num = 0;
  std::int64_t cur_step_num = 0;
  std::int64_t batch_num = 0;
  std::int64_t step_in_epoch = 0;
  /// Output of the last step: the loss tensor (0-d, no autograd history). In eval: the batch's loss
  /// when the Model has a loss function, else the network's output (logits).
  Tensor net_outputs;

  // ---- train ----
  /// The cell trained by one step. Anvil has no TrainOneStepCell: this is the same cell as `network`.
  nn::Cell* train_network = nullptr;
  nn::LossCell* loss_fn = nullptr;
  Optimizer* optimizer = nullptr;
  DataLoader* train_dataset = nullptr;
  /// The batch of the current step (valid from on_train_step_begin; handles, no copy of the data).
  Batch train_dataset_element;
  std::int64_t epoch_num = 0;
  std::int64_t initial_epoch = 0;
  /// Single-device, non-sink training: MindSpore's values for that case.
  std::string parallel_mode = "stand_alone";
  int device_number = 1;
  bool dataset_sink_mode = false;
  std::int64_t sink_size = -1;

  // ---- evaluation results ----
  /// {metric name: value} at the end of an evaluation (eval(); fit's evaluation pass, until the
  /// train epoch end that follows it).
  std::map<std::string, double> metrics;
  /// fit only, from the evaluation pass to the end of on_train_epoch_end: `metrics` plus "eval_loss"
  /// (the per-sample mean loss over the validation set, when the Model has a loss function).
  std::map<std::string, double> eval_results;

  // ---- eval ----
  nn::Cell* eval_network = nullptr;
  DataLoader* valid_dataset = nullptr;
  /// The batch of the current evaluation step.
  Batch eval_dataset_element;

  // ---- failures and checkpoints ----
  /// The exception that is ending the loop (set before on_exception and the end hooks run after a
  /// failure; null otherwise).
  std::exception_ptr exception;
  /// Written by checkpoint callbacks: global step of the last saved checkpoint and its file.
  std::int64_t last_save_ckpt_step = 0;
  std::string latest_ckpt_file;
  /// Written by resume callbacks: the checkpoint this run resumed from ("" when it did not).
  std::string resumed_from;
};

}  // namespace anvil
