// RunContext: the handle every callback hook receives (MindSpore mindspore.train.RunContext).
#pragma once

#include <any>
#include <map>
#include <string>

#include "framework/train/CallbackParams.h"

namespace anvil {

/// Gives callbacks the loop's CallbackParams, the one switch that stops training, and a map of user keys
/// that callbacks can use to pass values to each other (e.g. a metric one callback computes and another
/// logs). One RunContext lives for one train()/eval()/fit() call.
class RunContext {
 public:
  /// `params` must outlive the context (Model keeps both on its stack for the duration of a loop).
  explicit RunContext(CallbackParams& params) : params_(&params) {}

  /// The loop's parameters (MindSpore `cb_params`). Callbacks may read every field; writing is meant
  /// for the fields documented as written by callbacks (last_save_ckpt_step, latest_ckpt_file, ...).
  CallbackParams& original_args() { return *params_; }
  const CallbackParams& original_args() const { return *params_; }

  /// Asks the loop to stop: in train, after the current step (the epoch-end hooks of the partial epoch
  /// and on_train_end still run); in eval, after the current step (on_eval_epoch_end and on_eval_end
  /// still run). Idempotent.
  void request_stop() { stop_requested_ = true; }
  /// True once request_stop() was called in this loop.
  bool get_stop_requested() const { return stop_requested_; }

  /// The user map: arbitrary values under string keys. Empty at the start of a loop.
  std::map<std::string, std::any>& user_data() { return user_; }
  const std::map<std::string, std::any>& user_data() const { return user_; }
  /// Stores `value` under `key`, replacing any previous value.
  void set(const std::string& key, std::any value) { user_[key] = std::move(value); }
  /// True when `key` holds a value.
  bool contains(const std::string& key) const { return user_.count(key) != 0; }
  /// The value under `key`. Errors: anvil::Error naming the key when absent.
  const std::any& get(const std::string& key) const;
  /// The value under `key` as a T. Errors: anvil::Error naming the key when absent or of another type.
  template <typename T>
  T get_as(const std::string& key) const {
    const std::any& v = get(key);
    if (const T* p = std::any_cast<T>(&v)) return *p;
    throw_wrong_type(key, v);
  }

 private:
  friend class Model;  // fit's evaluation pass keeps a stop request local to itself
  [[noreturn]] static void throw_wrong_type(const std::string& key, const std::any& value);

  CallbackParams* params_;
  bool stop_requested_ = false;
  std::map<std::string, std::any> user_;
};

}  // namespace anvil
