// Callback: the base of every training/evaluation callback (MindSpore mindspore.train.Callback).
//
// Hooks (spec callbacks-and-checkpointing.md §1). Each MindSpore 2.x hook defaults to calling its legacy
// alias; the aliases default to no-ops:
//
//   on_train_begin / on_train_end               -> begin / end
//   on_train_epoch_begin / on_train_epoch_end   -> epoch_begin / epoch_end
//   on_train_step_begin / on_train_step_end     -> step_begin / step_end
//   on_eval_begin / on_eval_end                 -> begin / end
//   on_eval_epoch_begin / on_eval_epoch_end     -> epoch_begin / epoch_end
//   on_eval_step_begin / on_eval_step_end       -> step_begin / step_end
//
// As in MindSpore, an old-style callback that overrides `step_end` therefore also runs during
// evaluation. Anvil keeps that behaviour and logs one warning per callback object the first time an
// overridden alias runs from an eval hook; override the on_train_* hook to run in training only.
//
// Before all of them, Model::train / Model::fit call on_before_train(model, loader, callbacks) once (see
// there): the one hook that may change where the run starts (e.g. BackupAndRestore resumes its backup).
//
// Ordering and failures are the loop's business (see Model): hooks run in list order; when a step or a
// hook throws, every callback's on_exception runs, then the end hook, then the exception propagates.
// A hook may throw any exception to fail the loop; use RunContext::request_stop() to end it normally.
//
// Callbacks are used by one loop at a time, on the loop's thread.
#pragma once

#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "framework/train/RunContext.h"

namespace anvil {

class Model;
class DataLoader;

class Callback {
 public:
  virtual ~Callback() = default;
  Callback() = default;
  Callback(const Callback&) = default;
  Callback& operator=(const Callback&) = default;

  // ---- Anvil: pre-train hook (no MindSpore equivalent, no legacy alias) ----
  /// Runs once at the very start of Model::train / Model::fit, on every callback in list order, after
  /// the call's argument checks and BEFORE the loop computes its start position (progress, first epoch,
  /// cur_step_num) and before on_train_begin. `model` is the Model about to train, `loader` its training
  /// DataLoader, `callbacks` the callback list passed to train()/fit() (this callback included). It may
  /// restore state into them, e.g. call Model::resume_from or anvil::resume(model, loader, path,
  /// callbacks); the loop then starts from the restored position. No RunContext exists yet.
  /// Errors: an exception propagates out of train()/fit() at once: no further hook runs (no
  /// on_exception, no end hook: nothing had begun) and a pending resume_from request is dropped.
  /// Default: nothing.
  virtual void on_before_train(Model& model, DataLoader& loader, const std::vector<std::shared_ptr<Callback>>& callbacks);

  // ---- MindSpore 2.x hooks; each defaults to its legacy alias ----
  /// Once, before the first epoch of train() / fit().
  virtual void on_train_begin(RunContext& ctx) { begin(ctx); }
  /// Once, after the last epoch, after request_stop, or after an exception (then with
  /// original_args().exception set). Runs whenever on_train_begin ran.
  virtual void on_train_end(RunContext& ctx) { end(ctx); }
  /// Before the first step of each epoch (cur_epoch_num is already the new epoch).
  virtual void on_train_epoch_begin(RunContext& ctx) { epoch_begin(ctx); }
  /// After the last step of each epoch (also a partial epoch ended by request_stop; not for an epoch
  /// that failed with an exception). In fit, after the evaluation pass (eval_results set).
  virtual void on_train_epoch_end(RunContext& ctx) { epoch_end(ctx); }
  /// Before each training step (cur_step_num and train_dataset_element already updated).
  virtual void on_train_step_begin(RunContext& ctx) { step_begin(ctx); }
  /// After each training step (net_outputs holds the step's loss).
  virtual void on_train_step_end(RunContext& ctx) { step_end(ctx); }

  /// Evaluation hooks: eval() runs begin, epoch_begin once, step_begin/step_end per batch, epoch_end,
  /// end. They default to the same aliases as the train hooks (see the file comment).
  virtual void on_eval_begin(RunContext& ctx);
  virtual void on_eval_end(RunContext& ctx);
  virtual void on_eval_epoch_begin(RunContext& ctx);
  virtual void on_eval_epoch_end(RunContext& ctx);
  virtual void on_eval_step_begin(RunContext& ctx);
  virtual void on_eval_step_end(RunContext& ctx);

  /// Called on every callback when a step or a hook threw `error`, before the end hook; the loop
  /// rethrows the original exception afterwards. Exceptions escaping this hook are logged and ignored
  /// (they never replace the original error). Default: nothing.
  virtual void on_exception(RunContext& ctx, const std::exception& error);

  /// True for callbacks that take part in the evaluation pass that Model::fit runs at due epochs
  /// (e.g. TimeMonitor). Default false: most callbacks are about training only.
  virtual bool runs_in_fit_eval() const { return false; }

  /// A human-readable name for messages: the demangled dynamic type by default.
  virtual std::string name() const;

  // ---- exact resume (spec callbacks-and-checkpointing.md §9; see framework/train/TrainState.h) ----
  /// Key under which this callback's state is saved in a resume checkpoint
  /// ("__resume__.callback.<key>"); it must be unique among the callbacks of a run. "" (the default)
  /// means the callback has no state to save.
  virtual std::string state_key() const { return ""; }
  /// This callback's state as text (any encoding the callback chooses, e.g. JSON). Called only when
  /// state_key() is non-empty, typically from another callback's hook while the loop runs.
  virtual std::string state() const { return ""; }
  /// Restores a value returned by state() in the saved run, before the resumed train() starts.
  /// Errors: the callback's own (e.g. anvil::Error for text it cannot parse). Default: nothing.
  virtual void load_state(const std::string& state) { (void)state; }

  // ---- legacy aliases (MindSpore 1.x); no-ops by default ----
  virtual void begin(RunContext& ctx);
  virtual void end(RunContext& ctx);
  virtual void epoch_begin(RunContext& ctx);
  virtual void epoch_end(RunContext& ctx);
  virtual void step_begin(RunContext& ctx);
  virtual void step_end(RunContext& ctx);

 private:
  // Runs `alias` for eval hook `hook` and warns (once) when an override of the alias ran.
  void run_alias_from_eval(void (Callback::*alias)(RunContext&), const char* hook, const char* alias_name,
                           RunContext& ctx);

  bool alias_was_default_ = false;  // set by the base aliases, to detect overrides
  bool eval_alias_warned_ = false;
};

}  // namespace anvil
