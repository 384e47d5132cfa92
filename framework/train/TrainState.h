// TrainState: everything an exact resume needs, as plain in-memory data (spec
// callbacks-and-checkpointing.md §9). framework/ knows no file format: serialization/Resume.h writes a
// TrainState into a MindSpore .ckpt and reads it back.
//
//   TrainState st = capture_train_state(model, loader, callbacks);   // e.g. inside on_train_step_end
//   ... write st somewhere, end the process ...
//   // new process, fresh objects built exactly as before:
//   load network / optimizer tensors (st.network / st.optimizer), then
//   restore_train_state(model, loader, st, callbacks);  // counters, data position, RNG, callbacks
//   model.train(epochs, loader, callbacks);             // continues with the next batch
//
// What is captured (and restored, in the spec's order):
//   * network: Cell::state_dict() (parameters and buffers, MindSpore names) — LIVE handles;
//   * optimizer: Optimizer::state_dict() ("global_step", "learning_rate", slots) — the learning rate
//     schedule is part of the optimizer the caller rebuilds; with the restored global step it yields
//     the same rate;
//   * progress: Model::progress() (global step, epoch, step in epoch, initial epoch, epoch finished);
//   * data: DataLoader::position() (epoch, batches consumed, shuffle seed);
//   * rng: every random stream — "global" (default_generator()) and "cell.<path>" for each Dropout
//     cell of the network (path as Cell::cells_and_names() gives it, e.g. "cell.layers.2");
//   * callbacks: (state_key(), state()) of every callback with a non-empty state_key();
//   * gradient accumulation (ModelOptions::accumulate_steps): Model::micro_step() and, when it is > 0,
//     the accumulated gradient of every optimizer parameter that has one (LIVE handles);
//   * loss scaling: the Model's LossScaleManager::state_dict() ("scale_sense", ...), empty without one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/core/Random.h"
#include "framework/data/DataPosition.h"
#include "framework/tensor/Tensor.h"

namespace anvil {

class Model;
class DataLoader;
class Callback;
class RunContext;

/// Where a training run stands, in the loop's terms (see Model::progress / Model::resume_from).
struct TrainProgress {
  /// Steps completed (cur_step_num of the last completed step; 0 before any).
  std::int64_t global_step = 0;
  /// 1-based epoch of the last completed step (cur_epoch_num); 0 before any epoch began.
  std::int64_t epoch = 0;
  /// Steps completed in `epoch` (0 .. batch_num).
  std::int64_t step_in_epoch = 0;
  /// initial_epoch of the run that produced this progress.
  std::int64_t initial_epoch = 0;
  /// True once the end part of `epoch` began (set just before on_train_epoch_end): a resume then
  /// starts with epoch + 1; otherwise it continues `epoch` with batch step_in_epoch + 1 (running only
  /// its epoch-end part when no batch is left).
  bool epoch_finished = false;
  bool operator==(const TrainProgress&) const = default;
};

/// One named random stream.
struct NamedGeneratorState {
  std::string name;
  GeneratorState state;
  bool operator==(const NamedGeneratorState&) const = default;
};

/// One callback's saved state (Callback::state_key() / state()).
struct CallbackState {
  std::string key;
  std::string state;
  bool operator==(const CallbackState&) const = default;
};

struct TrainState {
  NamedTensors network;    // Cell::state_dict() of the Model's network (live handles)
  NamedTensors optimizer;  // Optimizer::state_dict() (scalars fresh, slots live)
  TrainProgress progress;
  DataPosition data;
  std::vector<NamedGeneratorState> rng;
  std::vector<CallbackState> callbacks;
  /// Micro-batches accumulated since the last optimizer step (Model::micro_step()).
  std::int64_t micro_step = 0;
  /// The accumulated gradients by parameter name (empty when micro_step == 0).
  NamedTensors accumulated_grads;
  /// LossScaleManager::state_dict() of the Model's manager; empty when it has none.
  NamedTensors loss_scale;
};

/// Name of the default generator's stream in TrainState::rng.
inline constexpr const char* kGlobalRngStream = "global";

/// The random streams of `model`: {"global", default_generator()} then {"cell.<path>", gen} for every
/// Dropout cell of the network, depth-first. Pointers stay valid as long as the network lives.
std::vector<std::pair<std::string, Generator*>> rng_streams(Model& model);

/// Captures the state of `model` (network, optimizer, progress, RNG streams), `loader` (position) and
/// `callbacks` (those with a non-empty state_key(); null entries are skipped).
/// Preconditions: the Model has an optimizer. Errors: anvil::Error when it has none, when two
/// callbacks share a state_key, or from Optimizer::state_dict (global step beyond int32).
TrainState capture_train_state(Model& model, const DataLoader& loader,
                               const std::vector<std::shared_ptr<Callback>>& callbacks = {});

/// The same, from inside a training hook (e.g. a checkpoint callback's on_train_step_end): the loop's
/// Model, train_dataset and callbacks (original_args().model / train_dataset / list_callback).
/// Errors: anvil::Error when the context is not a training loop's (mode "train" with those fields
/// set: e.g. in eval() or fit's evaluation pass), and those of the overload above.
TrainState capture_train_state(const RunContext& ctx);

/// Restores everything but the network and optimizer tensors (the caller loads those first), in the
/// spec's order: progress (Model::resume_from), accumulation (Model::restore_accumulation) and loss
/// scale (LossScaleManager::load_state_dict), data
/// position (DataLoader::seek, no batch replayed), RNG streams, callback states.
/// A loss-scale state without a manager in the Model (or a manager without a saved state) warns and
/// is ignored (the manager keeps its current state).
/// RNG streams of `state` that the model lacks, and model streams the state lacks, are errors (the
/// network is not built as the saved one). Callback states: a callback whose key is absent warns and
/// starts fresh; a saved key no callback claims warns.
/// Errors: anvil::Error (nothing changed) when streams do not match, the position is invalid for the
/// loader (DataLoader::seek's checks) or the progress is inconsistent with it; a callback's
/// load_state error propagates (earlier parts are then already restored).
void restore_train_state(Model& model, DataLoader& loader, const TrainState& state,
                         const std::vector<std::shared_ptr<Callback>>& callbacks = {});

}  // namespace anvil
