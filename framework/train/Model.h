// Model: the high-level training loop (MindSpore mindspore.train.Model, non-sink mode).
//
//   auto net = std::make_shared<models::LeNet5>();
//   Model model(net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(),
//               std::make_shared<Momentum>(net->trainable_params(), 0.01, 0.9),
//               {std::make_shared<Accuracy>()});
//   model.train(3, train_loader, {std::make_shared<LossMonitor>(200)});
//   auto results = model.eval(test_loader);          // {"accuracy": 0.87}
//
// The loop is spec callbacks-and-checkpointing.md §1 exactly; one train_step (forward, loss, backward,
// optimizer step, zero grads) plus callback dispatch. Model never names a concrete callback: callbacks
// see the loop through RunContext / CallbackParams and stop it through RunContext::request_stop().
//
// Training options (ModelOptions, the 5th constructor argument; MindSpore Model's amp_level,
// loss_scale_manager, plus gradient accumulation and clipping):
//
//   Model model(net, loss, opt, {}, ModelOptions{.amp_level = "O2",
//                                                .loss_scale_manager = std::make_shared<DynamicLossScaleManager>(),
//                                                .accumulate_steps = 4, .clip_grad_norm = 1.0});
//
// A train_step is then (each part only when its option is on):
//   forward (in the amp_level's compute precision) -> loss (float32)
//   backward of loss * scale               (scale = loss_scale_manager->get_loss_scale(); gradients
//                                           accumulate in Tensor::grad() across micro-batches)
//   micro_step += 1; if micro_step < accumulate_steps: return (no optimizer step)
//   micro_step = 0
//   overflow = some gradient holds inf/NaN (only with a manager whose drop_overflow_update is on)
//   loss_scale_manager->update_loss_scale(overflow)
//   if overflow: drop the gradients, skip the optimizer step (parameters, optimizer state and its
//                global_step unchanged); last_step_skipped() is true
//   gradients *= 1 / (scale * accumulate_steps)   (unscale + average over the micro-batches)
//   clip_grad_value, then clip_grad_norm (framework/optim/ClipGrad.h); last_grad_norm()
//   optimizer.step(); optimizer.zero_grad()
// With accumulate_steps = N, a step of the loop (cur_step_num) is one micro-batch; the optimizer steps
// every N micro-batches with the mean of their gradients, so N micro-batches of B samples update the
// parameters as one batch of N*B would (for a "mean" loss and layers without batch statistics).
// Micro-batches left over at the end of an epoch or train() stay accumulated and count towards the
// next step; their gradients and the micro-step counter are part of TrainState (exact resume).
//
// amp_level (MindSpore names; parameters ("master weights") always stay float32, and so are their
// gradients and the optimizer):
//   "O0"  float32 everywhere (default).
//   "O2"  conv2d / dense / matmul compute in bfloat16 (inputs and weights rounded to bf16 at the op,
//         float32 accumulation and outputs); BatchNorm, softmax and the loss stay float32.
//   "O3"  as O2 for every op with a bf16 kernel (currently the same ops as O2: the other CPU kernels
//         have no bf16 variant, so they run in float32).
// The compute precision applies to forward and backward of train_step, eval and predict.
//
// A Model is used from one thread; the network, loss and optimizer must not be driven by anything else
// while a loop runs.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/data/Batch.h"
#include "framework/tensor/Tensor.h"
#include "framework/train/TrainState.h"

namespace anvil {

namespace nn {
class Cell;
class LossCell;
}  // namespace nn
class Optimizer;
class Metric;
class DataLoader;
class Callback;
class CallbackList;
struct CallbackParams;
class RunContext;

class LossScaleManager;

/// Optional training behaviour of a Model (see the file comment). Designated initializers.
struct ModelOptions {
  /// "O0", "O2" or "O3" (MindSpore's names; "O1" is not supported).
  std::string amp_level = "O0";
  /// Loss scaling (FixedLossScaleManager / DynamicLossScaleManager); null = none.
  std::shared_ptr<LossScaleManager> loss_scale_manager = nullptr;
  /// Micro-batches per optimizer step (>= 1).
  int accumulate_steps = 1;
  /// > 0: clip the (unscaled, averaged) gradients to this global L2 norm before the step.
  double clip_grad_norm = 0.0;
  /// > 0: clamp every gradient element to [-clip_grad_value, clip_grad_value] before the step.
  double clip_grad_value = 0.0;
};

class Model {
 public:
  /// `network` computes the output (logits) from a batch's data; `loss_fn` the scalar loss from
  /// (output, labels); `optimizer` updates the network's parameters. loss_fn and optimizer may be null
  /// for a Model used only for eval()/predict() (train, fit and train_step then throw; eval computes no
  /// loss). `metrics` are reported by eval() and fit(), under Metric::name().
  /// `options`: amp level, loss scaling, accumulation and clipping (ModelOptions).
  /// Devices: after anvil::set_context({.device_target = "GPU"}), train/fit/eval/predict move a network
  /// that is entirely in host memory (and the loss cell) to that GPU; batches may stay in host memory
  /// (ops copy them to the network's device) or come from a DataLoader with `device` set (overlapped).
  /// Errors: anvil::Error when network is null, a metric is null, two metrics share a name, a Loss
  /// metric is given without a loss_fn, or an option is invalid (unknown amp_level, accumulate_steps
  /// < 1, negative or non-finite clip values).
  Model(std::shared_ptr<nn::Cell> network, std::shared_ptr<nn::LossCell> loss_fn = nullptr,
        std::shared_ptr<Optimizer> optimizer = nullptr, std::vector<std::shared_ptr<Metric>> metrics = {},
        ModelOptions options = {});
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  /// Trains epochs initial_epoch+1 .. epoch over `train_dataset` (MindSpore Model.train):
  ///
  ///   check arguments; on_before_train(*this, train_dataset, callbacks)   (may call resume_from)
  ///   compute the start (a pending resume_from() is applied here)
  ///   network.set_train(true); on_train_begin
  ///   for e in initial_epoch+1 .. epoch:          cur_epoch_num = e; loader.start_epoch(e - 1)
  ///     on_train_epoch_begin
  ///     for each batch:                           cur_step_num += 1; train_dataset_element = batch
  ///       on_train_step_begin; net_outputs = train_step(batch); on_train_step_end
  ///       if stop requested: break
  ///     on_train_epoch_end
  ///     if stop requested: break
  ///   on_train_end
  ///
  /// The DataLoader epoch is e - 1 (0-based), so a run started with initial_epoch sees the batches an
  /// uninterrupted run would have seen in those epochs. cur_step_num starts at 0 on every call, unless
  /// resume_from() was called before (see there): then the loop continues from that position.
  /// End hooks always fire: after request_stop (the stopping step completes, then on_train_epoch_end
  /// for the partial epoch, then on_train_end) and after an exception thrown by a step, the data
  /// loader or a hook: then on_exception runs on every callback (errors inside are logged, never
  /// replace the original), then on_train_end with original_args().exception set (no
  /// on_train_epoch_end for the failed epoch), and the original exception is rethrown.
  /// An exception from on_before_train propagates at once (no other hook runs; a pending resume
  /// request is dropped).
  /// Preconditions: loss_fn and optimizer set; epoch >= 1; 0 <= initial_epoch <= epoch; no null
  /// callback. Errors: anvil::Error naming the argument when a precondition fails (before any hook;
  /// the resume-related checks of resume_from() run after on_before_train).
  void train(int epoch, DataLoader& train_dataset, std::vector<std::shared_ptr<Callback>> callbacks = {},
             int initial_epoch = 0);

  /// Evaluates the metrics over one pass of `valid_dataset` (its epoch 0) and returns {name: value}
  /// (MindSpore Model.eval). The network is put in inference mode (set_train(false)) and left there; no
  /// autograd graph is recorded. Metrics are cleared first, then updated per batch: every metric with
  /// (network output, labels), a Loss metric with (the batch's loss, labels).
  /// Hooks: on_eval_begin, on_eval_epoch_begin, on_eval_step_begin/end per batch (cur_step_num 1, 2, ...),
  /// on_eval_epoch_end, then `metrics` is set, then on_eval_end. request_stop ends the pass after the
  /// current step (metrics are then over the batches seen). On an exception: on_exception on every
  /// callback, on_eval_end, rethrow.
  /// Errors: anvil::Error for a null callback; a metric's eval() error when no batch was seen (an empty
  /// dataset); errors of the network, loss, metrics and hooks propagate.
  std::map<std::string, double> eval(DataLoader& valid_dataset, std::vector<std::shared_ptr<Callback>> callbacks = {});

  /// The network's output for `input` in inference mode (set_train(false), left so), without recording
  /// a graph. Errors: those of the network's forward (e.g. a wrong input shape).
  Tensor predict(const Tensor& input);

  /// train() with an evaluation pass over `valid_dataset` at every epoch e with e % valid_frequency == 0
  /// (MindSpore Model.fit), run after the epoch's last step and before on_train_epoch_end. Only the
  /// callbacks whose runs_in_fit_eval() is true take part in that pass (its on_eval_* hooks, with
  /// mode "eval"); afterwards (also when the pass fails, before on_exception) mode, batch_num,
  /// cur_step_num, step_in_epoch, net_outputs and list_callback are restored, the network is back in
  /// training mode, and on_train_epoch_end sees `metrics` ({name: value}) and
  /// `eval_results` (metrics plus "eval_loss" when there is a loss function); both are cleared after
  /// on_train_epoch_end. A request_stop made during the evaluation pass ends only that pass.
  /// Preconditions and errors: as train(), plus valid_frequency >= 1.
  void fit(int epoch, DataLoader& train_dataset, DataLoader& valid_dataset,
           std::vector<std::shared_ptr<Callback>> callbacks = {}, int valid_frequency = 1, int initial_epoch = 0);

  /// One optimization step on `batch`: logits = network(batch.data); loss = loss_fn(logits, batch.label);
  /// backward(loss); optimizer.step(); optimizer.zero_grad() — with the ModelOptions parts of the file
  /// comment (loss scaling, accumulation: then one micro-batch, clipping, amp). Returns the loss
  /// (unscaled) detached from the graph (0-d for a "mean"/"sum" loss). Does not change the network's
  /// train/eval mode (train() sets it).
  /// Preconditions: loss_fn and optimizer set; the loss has one element.
  /// Errors: anvil::Error when loss_fn or optimizer is missing; errors of the network, loss (e.g. a
  /// label out of range), backward and optimizer propagate (parameters are unchanged when the error
  /// comes before optimizer.step()).
  Tensor train_step(const Batch& batch);

  /// Where the last (or running) train()/fit() stands: updated after every step (before
  /// on_train_step_end, so a callback saving state there sees the step counted) and when an epoch's
  /// end part begins (epoch_finished is set just before on_train_epoch_end, after fit's evaluation
  /// pass; a state saved from on_train_epoch_end resumes with the next epoch). Default-constructed
  /// before the first train().
  const TrainProgress& progress() const { return progress_; }

  /// Makes the NEXT train()/fit() continue from `progress` instead of starting over (exact resume;
  /// serialization/Resume.h calls it; it may also be called from Callback::on_before_train of the
  /// train()/fit() call that should continue): cur_step_num starts at progress.global_step, initial_epoch is
  /// progress.initial_epoch, and the first epoch is progress.epoch + 1 when progress.epoch_finished or
  /// progress.epoch == 0, else progress.epoch itself, continued with batch step_in_epoch + 1: the
  /// loader is then positioned at {epoch - 1, step_in_epoch} (DataLoader::seek, keeping its seed; no
  /// seek when it already stands there) and on_train_epoch_begin does not run again for that epoch.
  /// The train() call's own initial_epoch must be 0 or equal progress.initial_epoch, and its `epoch`
  /// at least the last epoch already finished. The request is consumed by that call (also when it
  /// fails after its argument checks); progress() is set to `progress` immediately.
  /// Errors: anvil::Error for negative counters or step_in_epoch > global_step.
  void resume_from(const TrainProgress& progress);
  /// True while a resume_from() request waits for the next train()/fit().
  bool resume_pending() const { return resume_.has_value(); }

  /// The options given at construction.
  const ModelOptions& options() const { return options_; }
  /// Micro-batches accumulated since the last optimizer step (0 .. accumulate_steps - 1).
  std::int64_t micro_step() const { return micro_step_; }
  /// True when the last optimizer step was skipped because of a gradient overflow (loss scaling).
  bool last_step_skipped() const { return last_step_skipped_; }
  /// Global gradient norm before clipping at the last optimizer step (with clip_grad_norm; else -1).
  double last_grad_norm() const { return last_grad_norm_; }
  /// Restores a mid-accumulation position (exact resume; restore_train_state calls it): sets
  /// micro_step and replaces the gradient of every optimizer parameter by the tensor of the same name
  /// in `grads` (copied), dropping the gradients of parameters `grads` does not name.
  /// Errors (nothing changed): micro_step outside [0, accumulate_steps); a name that is not an optimizer
  /// parameter; a shape or dtype mismatch; grads given with micro_step 0; no optimizer.
  void restore_accumulation(std::int64_t micro_step, const NamedTensors& grads);

  const std::shared_ptr<nn::Cell>& network() const { return network_; }
  const std::shared_ptr<nn::LossCell>& loss_fn() const { return loss_fn_; }
  const std::shared_ptr<Optimizer>& optimizer() const { return optimizer_; }
  const std::vector<std::shared_ptr<Metric>>& metrics() const { return metrics_; }

  /// The network's summary table (nn::Cell::summary): without a sample the output shapes are "-"; with
  /// one (e.g. a [1, C, H, W] batch) one inference-mode, no-grad forward fills them in.
  /// Errors: those of Cell::summary(sample).
  std::string summary() const;
  std::string summary(const Tensor& sample) const;

 private:
  // set_context(GPU): a network whose parameters are all in host memory moves to the context's device
  // (with the loss cell) when train, fit, eval or predict starts; a network the program placed stays.
  void place_on_context_device();
  void run_train(const char* who, int epoch, DataLoader& train_dataset, DataLoader* valid_dataset,
                 std::vector<std::shared_ptr<Callback>> callbacks, int valid_frequency, int initial_epoch);
  // One evaluation pass; `in_fit` selects fit's behaviour (eval_results, no on_exception: the
  // enclosing train loop handles the failure).
  std::map<std::string, double> run_eval(DataLoader& dataset, CallbackList& list, CallbackParams& params,
                                         RunContext& ctx, bool in_fit);
  void fit_eval(DataLoader& dataset, CallbackList& list, CallbackParams& params, RunContext& ctx);

  std::shared_ptr<nn::Cell> network_;
  std::shared_ptr<nn::LossCell> loss_fn_;
  std::shared_ptr<Optimizer> optimizer_;
  std::vector<std::shared_ptr<Metric>> metrics_;
  ModelOptions options_;
  std::int64_t micro_step_ = 0;
  bool last_step_skipped_ = false;
  double last_grad_norm_ = -1.0;
  TrainProgress progress_;
  std::optional<TrainProgress> resume_;
};

}  // namespace anvil
