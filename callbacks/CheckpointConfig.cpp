#include "callbacks/CheckpointConfig.h"

#include <csignal>

#include <fmt/format.h>

#include "framework/core/Error.h"

namespace anvil {

namespace {

[[noreturn]] void fail(const std::string& message) { throw Error("For 'CheckpointConfig', " + message); }

}  // namespace

void CheckpointConfig::validate() const {
  // 1. Numbers: >= 0.
  const std::pair<const char*, std::int64_t> numbers[] = {
      {"save_checkpoint_steps", save_checkpoint_steps},
      {"save_checkpoint_seconds", save_checkpoint_seconds},
      {"keep_checkpoint_max", keep_checkpoint_max},
      {"keep_checkpoint_per_n_minutes", keep_checkpoint_per_n_minutes},
      {"keep_best_k", keep_best_k}};
  for (const auto& [name, value] : numbers)
    if (value < 0) fail(fmt::format("the argument '{}' must be >= 0, but got {}.", name, value));
  // 2. saved_network: the type guarantees a Cell (or null = none).
  // 3. At least one periodic number.
  if (save_checkpoint_steps == 0 && save_checkpoint_seconds == 0 && keep_checkpoint_max == 0 &&
      keep_checkpoint_per_n_minutes == 0)
    fail(
        "the input arguments 'save_checkpoint_steps', 'save_checkpoint_seconds', 'keep_checkpoint_max' and "
        "'keep_checkpoint_per_n_minutes' can't be all None or 0.");
  // 4. append_info.
  int dicts = 0;
  for (const auto& item : append_info) {
    if (const auto* name = std::get_if<std::string>(&item)) {
      if (*name != "epoch_num" && *name != "step_num")
        fail(fmt::format(
            "the argument 'append_info' may only contain the strings 'epoch_num' and 'step_num' and one dict, "
            "but got '{}'.",
            *name));
    } else {
      if (++dicts > 1) fail("the argument 'append_info' may contain at most one dict, but got 2 or more.");
      for (const auto& [key, value] : std::get<AppendInfo>(item)) {
        if (key.empty()) fail("the argument 'append_info' has a dict entry with an empty name.");
        if (const auto* t = std::get_if<Tensor>(&value); t && !t->defined())
          fail(fmt::format("the append_info entry '{}' is an undefined tensor.", key));
      }
    }
  }
  // 5. safetensors combinations.
  if (format == "safetensors") {
    if (!enc_key.empty()) fail("format 'safetensors' does not support encryption (enc_key).");
    if (crc_check) fail("format 'safetensors' does not support 'crc_check' = true.");
    if (exception_save) fail("format 'safetensors' does not support 'exception_save' = true.");
  }
  // Anvil: unsupported features are errors, never silently ignored.
  if (!enc_key.empty())
    fail(fmt::format("encryption is not supported: 'enc_key' must be empty (enc_mode '{}').", enc_mode));
  if (remove_redundancy)
    fail("the argument 'remove_redundancy' must be false on one device (no data parallelism), but got true.");
  if (async_save == AsyncSave::kProcess)
    fail("the argument 'async_save' = \"process\" is not supported; use \"thread\" (AsyncSave::kThread).");
  if (format != "ckpt")
    fail(fmt::format("the argument 'format' must be \"ckpt\" (\"safetensors\" is not implemented yet), but got \"{}\".",
                     format));
  for (int sig : save_on_signals) {
    if (sig == SIGKILL || sig == SIGSTOP)
      fail(fmt::format("the argument 'save_on_signals' contains {} ({}), which cannot be caught; use e.g. SIGTERM, "
                       "SIGINT or SIGUSR1.",
                       sig == SIGKILL ? "SIGKILL" : "SIGSTOP", sig));
    if (sig < 1 || sig > 64)
      fail(fmt::format("the argument 'save_on_signals' must hold signal numbers in [1, 64], but got {}.", sig));
  }
  if (async_pending != "wait" && async_pending != "skip")
    fail(fmt::format("the argument 'async_pending' must be \"wait\" or \"skip\", but got \"{}\".", async_pending));
  if (mode != "min" && mode != "max")
    fail(fmt::format("the argument 'mode' must be \"min\" or \"max\", but got \"{}\".", mode));
  if (keep_best_k > 0 && monitor.empty()) fail("the argument 'monitor' must name a value when 'keep_best_k' > 0.");
}

CheckpointConfig CheckpointConfig::normalized() const {
  validate();
  CheckpointConfig c = *this;
  if (c.keep_checkpoint_max == 0 && c.keep_checkpoint_per_n_minutes == 0) c.keep_checkpoint_max = 1;
  return c;
}

CheckpointPolicy CheckpointConfig::get_checkpoint_policy() const {
  return {save_checkpoint_steps, save_checkpoint_seconds, keep_checkpoint_max, keep_checkpoint_per_n_minutes};
}

bool CheckpointConfig::appends(const std::string& name) const {
  for (const auto& item : append_info)
    if (const auto* s = std::get_if<std::string>(&item); s && *s == name) return true;
  return false;
}

AppendInfo CheckpointConfig::append_dict() const {
  for (const auto& item : append_info)
    if (const auto* d = std::get_if<AppendInfo>(&item)) return *d;
  return {};
}

}  // namespace anvil
