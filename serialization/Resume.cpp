#include "serialization/Resume.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <type_traits>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "framework/core/Error.h"
#include "framework/core/Log.h"
#include "framework/data/DataLoader.h"
#include "framework/nn/Cell.h"
#include "framework/optim/Optimizer.h"
#include "framework/train/Callback.h"
#include "framework/train/Model.h"
#include "framework/train/RunContext.h"
#include "serialization/CheckpointError.h"
#include "serialization/LoadParam.h"

namespace anvil {
namespace {

constexpr std::size_t kRngBytes = 56;  // seven u64

std::string key(const std::string& what) { return std::string(kResumePrefix) + what; }

void check_name_part(const char* what, const std::string& name) {
  if (name.empty()) throw Error(fmt::format("resume state: {} is empty", what));
}

void put_u64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
std::uint64_t get_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

Tensor encode_rng(const GeneratorState& st) {
  std::vector<std::uint8_t> bytes;
  bytes.reserve(kRngBytes);
  for (std::uint64_t s : st.s) put_u64(bytes, s);
  put_u64(bytes, st.seed);
  put_u64(bytes, st.has_spare ? 1 : 0);
  std::uint64_t spare_bits = 0;
  std::memcpy(&spare_bits, &st.spare, sizeof spare_bits);
  put_u64(bytes, spare_bits);
  return Tensor::from_vector(bytes, Shape{static_cast<std::int64_t>(kRngBytes)});
}

GeneratorState decode_rng(const std::string& name, const Tensor& t) {
  if (t.dtype() != DType::kU8 || t.rank() != 1 || t.numel() != static_cast<std::int64_t>(kRngBytes))
    throw Error(fmt::format("resume state: entry '{}' is {}, expected uint8[{}]", name, t.desc(), kRngBytes));
  const auto* p = t.data<std::uint8_t>();
  GeneratorState st;
  for (std::size_t i = 0; i < 4; ++i) st.s[i] = get_u64(p + 8 * i);
  st.seed = get_u64(p + 32);
  const std::uint64_t has_spare = get_u64(p + 40);
  if (has_spare > 1) throw Error(fmt::format("resume state: entry '{}' has an invalid has_spare flag", name));
  st.has_spare = has_spare == 1;
  const std::uint64_t bits = get_u64(p + 48);
  std::memcpy(&st.spare, &bits, sizeof bits);
  return st;
}

const std::string& string_entry(const ParamDict& dict, const std::string& name) {
  const ParamDict::Entry* e = dict.find(name);
  if (!e) throw Error(fmt::format("resume state: entry '{}' is missing", name));
  if (!e->is_string()) throw Error(fmt::format("resume state: entry '{}' is a tensor, expected a string", name));
  return std::get<std::string>(e->value);
}

nlohmann::json parse_json(const std::string& name, const std::string& text) {
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    if (!j.is_object()) throw Error("not a JSON object");
    return j;
  } catch (const std::exception& e) {
    throw Error(fmt::format("resume state: entry '{}' is not valid JSON: {}", name, e.what()));
  }
}

template <typename T>
T field(const std::string& entry, const nlohmann::json& j, const char* f) {
  auto it = j.find(f);
  if (it == j.end()) throw Error(fmt::format("resume state: entry '{}' lacks field \"{}\"", entry, f));
  try {
    if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) throw Error("not a boolean");
    } else {
      if (!it->is_number_integer()) throw Error("not an integer");
      if constexpr (std::is_signed_v<T>) {
        if (it->is_number_unsigned() && it->template get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
          throw Error("out of range");
      } else {
        if (!it->is_number_unsigned()) throw Error("negative");
      }
    }
    return it->template get<T>();
  } catch (const std::exception& e) {
    throw Error(fmt::format("resume state: entry '{}' field \"{}\": {}", entry, f, e.what()));
  }
}

}  // namespace

AppendInfo train_state_append_info(const TrainState& state, const std::string& loader_name) {
  check_name_part("the loader name", loader_name);
  const TrainProgress& pr = state.progress;
  AppendInfo out;
  out.emplace_back("epoch_num", pr.epoch);
  out.emplace_back("step_num", pr.global_step);
  nlohmann::json trainer = {{"format", "anvil-trainer"},          {"version", 1},
                            {"global_step", pr.global_step},      {"epoch", pr.epoch},
                            {"step_in_epoch", pr.step_in_epoch},  {"initial_epoch", pr.initial_epoch},
                            {"epoch_finished", pr.epoch_finished}};
  out.emplace_back(key("trainer"), trainer.dump());
  nlohmann::json data = {{"seed", state.data.seed}, {"epoch", state.data.epoch}, {"index", state.data.index}};
  out.emplace_back(key("data." + loader_name), data.dump());
  for (const auto& g : state.rng) {
    check_name_part("an RNG stream name", g.name);
    out.emplace_back(key("rng." + g.name), encode_rng(g.state));
  }
  for (const auto& c : state.callbacks) {
    check_name_part("a callback state_key", c.key);
    out.emplace_back(key("callback." + c.key), c.state);
  }
  nlohmann::json accumulation = {{"micro_step", state.micro_step}};
  out.emplace_back(key("accumulation"), accumulation.dump());
  for (const auto& [name, g] : state.accumulated_grads) out.emplace_back(key("accu_grads." + name), g);
  for (const auto& [name, t] : state.loss_scale) out.emplace_back(name, t);
  return out;
}

std::vector<std::string> train_state_entry_prefixes() {
  return {kResumePrefix, "scale_sense", "current_iterator_step", "last_overflow_iterator_step"};
}

TrainState train_state_from_entries(const ParamDict& dict, const std::string& loader_name) {
  check_name_part("the loader name", loader_name);
  TrainState st;
  {
    const std::string name = key("trainer");
    const nlohmann::json j = parse_json(name, string_entry(dict, name));
    if (j.value("format", std::string()) != "anvil-trainer" || field<std::int64_t>(name, j, "version") != 1)
      throw Error(fmt::format("resume state: entry '{}' is not an anvil-trainer version 1 record", name));
    st.progress.global_step = field<std::int64_t>(name, j, "global_step");
    st.progress.epoch = field<std::int64_t>(name, j, "epoch");
    st.progress.step_in_epoch = field<std::int64_t>(name, j, "step_in_epoch");
    st.progress.initial_epoch = field<std::int64_t>(name, j, "initial_epoch");
    st.progress.epoch_finished = field<bool>(name, j, "epoch_finished");
  }
  {
    const std::string name = key("data." + loader_name);
    const nlohmann::json j = parse_json(name, string_entry(dict, name));
    st.data.seed = field<std::uint64_t>(name, j, "seed");
    st.data.epoch = field<std::int64_t>(name, j, "epoch");
    st.data.index = field<std::int64_t>(name, j, "index");
  }
  if (const std::string name = key("accumulation"); dict.find(name)) {
    const nlohmann::json j = parse_json(name, string_entry(dict, name));
    st.micro_step = field<std::int64_t>(name, j, "micro_step");
  }
  const std::string rng_prefix = key("rng."), cb_prefix = key("callback."), grad_prefix = key("accu_grads.");
  for (const auto& e : dict) {
    if (e.name == "scale_sense" || e.name == "current_iterator_step" || e.name == "last_overflow_iterator_step") {
      if (!e.is_tensor()) throw Error(fmt::format("resume state: entry '{}' is a string, expected a scalar", e.name));
      st.loss_scale.emplace_back(e.name, std::get<Tensor>(e.value));
      continue;
    }
    if (e.name.rfind(grad_prefix, 0) == 0) {
      if (!e.is_tensor()) throw Error(fmt::format("resume state: entry '{}' is a string, expected a tensor", e.name));
      st.accumulated_grads.emplace_back(e.name.substr(grad_prefix.size()), std::get<Tensor>(e.value));
      continue;
    }
    if (e.name.rfind(rng_prefix, 0) == 0) {
      if (!e.is_tensor()) throw Error(fmt::format("resume state: entry '{}' is a string, expected uint8[56]", e.name));
      st.rng.push_back({e.name.substr(rng_prefix.size()), decode_rng(e.name, std::get<Tensor>(e.value))});
    } else if (e.name.rfind(cb_prefix, 0) == 0) {
      if (!e.is_string()) throw Error(fmt::format("resume state: entry '{}' is a tensor, expected a string", e.name));
      st.callbacks.push_back({e.name.substr(cb_prefix.size()), std::get<std::string>(e.value)});
    }
  }
  return st;
}

namespace {
CheckpointFileInfo write_train_state(const std::string& path, Model& model, const TrainState& st,
                                     const ResumeSaveOptions& options);
}  // namespace

CheckpointFileInfo save_train_state(const std::string& path, Model& model, const DataLoader& loader,
                                    const std::vector<std::shared_ptr<Callback>>& callbacks,
                                    const ResumeSaveOptions& options) {
  return write_train_state(path, model, capture_train_state(model, loader, callbacks), options);
}

CheckpointFileInfo save_train_state(const std::string& path, const RunContext& ctx, const ResumeSaveOptions& options) {
  const TrainState st = capture_train_state(ctx);
  return write_train_state(path, *ctx.original_args().model, st, options);
}

namespace {

CheckpointFileInfo write_train_state(const std::string& path, Model& model, const TrainState& st,
                                     const ResumeSaveOptions& options) {
  SaveOptions so;
  so.optimizer = model.optimizer().get();
  so.append_info = train_state_append_info(st, options.loader_name);
  so.append_info.insert(so.append_info.end(), options.append_info.begin(), options.append_info.end());
  so.crc_check = options.crc_check;
  so.durable = options.durable;
  return save_checkpoint(*model.network(), path, so);
}

}  // namespace

namespace {

// Empty when `file` is a valid resume checkpoint, else the reason it is not.
std::string invalid_reason(const std::string& file, const ResumeOptions& options) {
  try {
    const ParamDict d = load_checkpoint(file, LoadOptions{.specify_prefix = train_state_entry_prefixes(),
                                                          .require_integrity = options.require_integrity,
                                                          .warn_unverified = false});
    train_state_from_entries(d, options.loader_name);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace

std::string resolve_resume_path(const std::string& path, const ResumeOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw Error(fmt::format("resume: '{}' does not exist", path));
  if (!fs::is_directory(status)) return path;

  std::vector<std::string> skipped;
  auto skip = [&](const std::string& what, const std::string& why) {
    skipped.push_back(fmt::format("{}: {}", what, why));
    log(LogLevel::kWarning, fmt::format("resume: skipping {}: {}", what, why));
  };
  struct Candidate {
    fs::file_time_type mtime;
    std::string file;
  };
  std::vector<fs::path> pointers, ckpts;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    if (name.size() > 7 && name.ends_with(".latest")) pointers.push_back(e.path());
    else if (name.size() > 5 && name.ends_with(".ckpt") && name[0] != '.') ckpts.push_back(e.path());
  }
  if (ec) throw Error(fmt::format("resume: cannot list directory '{}': {}", path, ec.message()));
  auto newest_valid = [&](std::vector<Candidate> cands) -> std::string {
    std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
      return a.mtime != b.mtime ? a.mtime > b.mtime : a.file > b.file;
    });
    for (const auto& c : cands) {
      const std::string why = invalid_reason(c.file, options);
      if (why.empty()) return c.file;
      skip(c.file, why);
    }
    return "";
  };
  std::vector<Candidate> targets;
  for (const auto& ptr : pointers) {
    std::ifstream in(ptr);
    std::string line;
    if (!std::getline(in, line) || line.empty()) {
      skip("pointer " + ptr.string(), "empty or unreadable");
      continue;
    }
    if (line.find('/') != std::string::npos || line == "." || line == "..") {
      skip("pointer " + ptr.string(), fmt::format("'{}' is not a basename", line));
      continue;
    }
    const fs::path target = fs::path(path) / line;
    const auto mtime = fs::last_write_time(target, ec);
    if (ec) {
      skip("pointer " + ptr.string(), fmt::format("names '{}', which does not exist", line));
      continue;
    }
    targets.push_back({mtime, target.string()});
  }
  if (std::string f = newest_valid(targets); !f.empty()) return f;
  std::vector<Candidate> all;
  for (const auto& c : ckpts) {
    const auto mtime = fs::last_write_time(c, ec);
    if (!ec) all.push_back({mtime, c.string()});
  }
  if (std::string f = newest_valid(all); !f.empty()) return f;
  throw Error(fmt::format("resume: directory '{}' holds no valid resume checkpoint{}{}", path,
                          skipped.empty() ? "" : "; skipped: ", fmt::join(skipped, "; ")));
}

ResumeResult resume(Model& model, DataLoader& loader, const std::string& given_path,
                    const std::vector<std::shared_ptr<Callback>>& callbacks, const ResumeOptions& options) {
  if (!model.optimizer()) throw Error("resume: the Model has no optimizer");
  const std::string path = resolve_resume_path(given_path, options);
  // 1. Integrity and every resume entry, before anything changes.
  ParamDict entries;
  try {
    entries = load_checkpoint(path, LoadOptions{.specify_prefix = train_state_entry_prefixes(),
                                                .require_integrity = options.require_integrity});
  } catch (const CheckpointError& e) {
    if (e.code() != CkptErrc::kFiltered) throw;
    throw Error(fmt::format("resume: '{}' holds no resume state (no '{}*' entry); was it written by "
                            "save_train_state?", path, kResumePrefix));
  }
  if (std::none_of(entries.begin(), entries.end(),
                   [](const auto& e) { return e.name.rfind(kResumePrefix, 0) == 0; }))
    throw Error(fmt::format("resume: '{}' holds no resume state (no '{}*' entry); was it written by "
                            "save_train_state?", path, kResumePrefix));
  TrainState st;
  try {
    st = train_state_from_entries(entries, options.loader_name);
  } catch (const Error& e) {
    throw Error(fmt::format("resume: '{}': {}", path, e.what()));
  }
  // The network must have exactly the saved random streams (checked again by restore_train_state; here
  // so that a mismatch fails before any tensor is loaded).
  std::set<std::string> saved_streams, model_streams;
  for (const auto& g : st.rng) saved_streams.insert(g.name);
  for (const auto& [name, gen] : rng_streams(model)) model_streams.insert(name);
  if (saved_streams != model_streams)
    throw Error(fmt::format("resume: '{}': the RNG streams saved ({}) differ from the network's ({}) — is the "
                            "network built as in the saved run?", path, fmt::join(saved_streams, ", "),
                            fmt::join(model_streams, ", ")));
  // 2. Parameters and optimizer state: strict, straight into the existing buffers.
  LoadIntoNetOptions lo;
  lo.load.require_integrity = options.require_integrity;
  lo.load.filter_prefix = {kResumePrefix};
  lo.param.strict_load = true;
  lo.optimizer = model.optimizer().get();
  load_checkpoint_into_net(*model.network(), path, lo);
  // 3-6. Counters, data position, RNG streams, callback states.
  restore_train_state(model, loader, st, callbacks);
  return ResumeResult{path, st.progress, st.data};
}

}  // namespace anvil
