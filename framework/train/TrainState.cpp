#include "framework/train/TrainState.h"

#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "framework/core/Error.h"
#include "framework/core/Log.h"
#include "framework/data/DataLoader.h"
#include "framework/nn/Cell.h"
#include "framework/nn/layers/Dropout.h"
#include "framework/optim/Optimizer.h"
#include "framework/train/Callback.h"
#include "framework/train/CallbackList.h"
#include "framework/train/LossScaleManager.h"
#include "framework/train/RunContext.h"
#include "framework/train/Model.h"

namespace anvil {

std::vector<std::pair<std::string, Generator*>> rng_streams(Model& model) {
  std::vector<std::pair<std::string, Generator*>> out;
  out.emplace_back(kGlobalRngStream, &default_generator());
  for (auto& [path, cell] : model.network()->cells_and_names()) {
    if (auto* d = dynamic_cast<nn::Dropout*>(cell)) out.emplace_back(path.empty() ? "cell" : "cell." + path, &d->generator());
  }
  return out;
}

TrainState capture_train_state(Model& model, const DataLoader& loader,
                               const std::vector<std::shared_ptr<Callback>>& callbacks) {
  if (!model.optimizer()) throw Error("capture_train_state: the Model has no optimizer");
  TrainState st;
  st.network = model.network()->state_dict();
  st.optimizer = model.optimizer()->state_dict();
  st.progress = model.progress();
  st.micro_step = model.micro_step();
  if (st.micro_step > 0)
    for (const auto& [name, p] : model.optimizer()->parameters())
      if (Tensor g = p.grad(); g.defined()) st.accumulated_grads.emplace_back(name, g);
  if (model.options().loss_scale_manager) st.loss_scale = model.options().loss_scale_manager->state_dict();
  st.data = loader.position();
  for (auto& [name, gen] : rng_streams(model)) st.rng.push_back({name, gen->state()});
  std::set<std::string> keys;
  for (const auto& cb : callbacks) {
    if (!cb) continue;
    std::string key = cb->state_key();
    if (key.empty()) continue;
    if (!keys.insert(key).second)
      throw Error(fmt::format("capture_train_state: two callbacks use state_key '{}'", key));
    st.callbacks.push_back({key, cb->state()});
  }
  return st;
}

TrainState capture_train_state(const RunContext& ctx) {
  const CallbackParams& p = ctx.original_args();
  if (p.mode != "train" || !p.model || !p.train_dataset || !p.list_callback)
    throw Error(fmt::format("capture_train_state: not inside a training loop (mode '{}'); call it from a "
                            "train hook", p.mode));
  return capture_train_state(*p.model, *p.train_dataset, p.list_callback->callbacks());
}

void restore_train_state(Model& model, DataLoader& loader, const TrainState& state,
                         const std::vector<std::shared_ptr<Callback>>& callbacks) {
  // Validate everything that can be validated before changing anything.
  auto streams = rng_streams(model);
  std::map<std::string, const GeneratorState*> saved;
  for (const auto& g : state.rng) {
    if (!saved.emplace(g.name, &g.state).second)
      throw Error(fmt::format("restore_train_state: RNG stream '{}' is given twice", g.name));
  }
  std::vector<std::string> missing, unknown;
  std::set<std::string> have;
  for (auto& [name, gen] : streams) {
    have.insert(name);
    if (!saved.count(name)) missing.push_back(name);
  }
  for (const auto& g : state.rng)
    if (!have.count(g.name)) unknown.push_back(g.name);
  if (!missing.empty() || !unknown.empty())
    throw Error(fmt::format("restore_train_state: the RNG streams do not match the network (missing in the "
                            "state: [{}]; in the state but not in the network: [{}]) — is the network built as "
                            "in the saved run?",
                            fmt::join(missing, ", "), fmt::join(unknown, ", ")));
  const TrainProgress& pr = state.progress;
  const std::int64_t batches = loader.num_batches();
  if (state.data.epoch < 0 || state.data.index < 0 || state.data.index > batches)
    throw Error(fmt::format("restore_train_state: data position (epoch {}, batch {}) is outside the loader "
                            "({} batches per epoch)", state.data.epoch, state.data.index, batches));
  if (pr.epoch > 0 && !pr.epoch_finished &&
      (state.data.epoch != pr.epoch - 1 || state.data.index != pr.step_in_epoch))
    throw Error(fmt::format("restore_train_state: data position (epoch {}, batch {}) does not match the "
                            "training position (epoch {}, step {} in it)", state.data.epoch, state.data.index,
                            pr.epoch, pr.step_in_epoch));
  std::map<std::string, Callback*> by_key;
  for (const auto& cb : callbacks) {
    if (!cb) continue;
    std::string key = cb->state_key();
    if (key.empty()) continue;
    if (!by_key.emplace(key, cb.get()).second)
      throw Error(fmt::format("restore_train_state: two callbacks use state_key '{}'", key));
  }

  if (state.micro_step < 0 || state.micro_step >= model.options().accumulate_steps)
    throw Error(fmt::format("restore_train_state: the saved micro_step {} is outside [0, accumulate_steps = {})",
                            state.micro_step, model.options().accumulate_steps));
  LossScaleManager* scaler = model.options().loss_scale_manager.get();

  // 3. counters; 4. data position (no batch replayed); 5. RNG streams; 6. callback states.
  if (scaler && !state.loss_scale.empty()) {
    // Both validate before they change anything; undo the scale if the accumulation is rejected.
    const NamedTensors previous = scaler->state_dict();
    scaler->load_state_dict(state.loss_scale);
    try {
      model.restore_accumulation(state.micro_step, state.accumulated_grads);
    } catch (...) {
      scaler->load_state_dict(previous);
      throw;
    }
  } else {
    model.restore_accumulation(state.micro_step, state.accumulated_grads);
  }
  if (scaler && state.loss_scale.empty()) {
    log(LogLevel::kWarning, fmt::format("resume: the state holds no loss scale; the {} keeps its current state", scaler->name()));
  } else if (!scaler && !state.loss_scale.empty()) {
    log(LogLevel::kWarning, "resume: the state holds a loss scale (scale_sense) but the Model has no "
                            "loss_scale_manager (ignored)");
  }
  model.resume_from(pr);
  loader.seek(state.data);
  for (auto& [name, gen] : streams) gen->set_state(*saved.at(name));
  std::set<std::string> restored;
  for (const auto& cs : state.callbacks) {
    auto it = by_key.find(cs.key);
    if (it == by_key.end()) {
      log(LogLevel::kWarning,
          fmt::format("resume: saved callback state '{}' is not claimed by any callback (ignored)", cs.key));
      continue;
    }
    it->second->load_state(cs.state);
    restored.insert(cs.key);
  }
  for (const auto& [key, cb] : by_key)
    if (!restored.count(key))
      log(LogLevel::kWarning, fmt::format("resume: no saved state for callback '{}' ({}); it starts fresh", key,
                                          cb->name()));
}

}  // namespace anvil
