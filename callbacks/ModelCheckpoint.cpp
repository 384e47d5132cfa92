#include "callbacks/ModelCheckpoint.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "callbacks/Retention.h"
#include "callbacks/SignalRegistry.h"
#include "framework/core/Error.h"
#include "framework/core/Log.h"
#include "framework/nn/Cell.h"
#include "framework/optim/Optimizer.h"
#include "framework/train/TrainState.h"
#include "serialization/AtomicFile.h"
#include "serialization/CheckpointReader.h"
#include "serialization/CheckpointWriter.h"
#include "serialization/FileIo.h"
#include "serialization/Resume.h"

namespace fs = std::filesystem;

namespace anvil {

struct ModelCheckpoint::Job {
  std::string file;              // basename of X
  std::string prefix;            // prefix used in the name
  bool breakpoint = false;       // exception save: no latest pointer, no retention
  NamedTensors tensors;          // network (+ optimizer) entries, handles (sync) or clones (async)
  AppendInfo append;             // epoch_num / step_num / the dict
  std::int64_t global_step = 0, epoch = 0, step_in_epoch = 0;
  std::int64_t wall_time_ns = 0;
  std::int64_t run_start_time_ns = 0;
  std::string trigger;
  std::string parent;
  nlohmann::json metrics = nlohmann::json::object();
  std::optional<double> monitored;
  std::int64_t last_steps_save = 0;
  std::int64_t seq = 0;
  bool resume_state = false;     // the __resume__.* entries were written
};

namespace {

constexpr const char* kManifestSuffix = ".manifest.json";

// Prefixes of live instances in this process: "<canonical directory>\n<prefix>".
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::set<std::string>& registry() {
  static std::set<std::string> s;
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string random_hex128() {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 4; ++i) out += fmt::format("{:08x}", static_cast<std::uint32_t>(rd()));
  return out;
}

std::string join_path(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }

// Reads a JSON file; nullopt when missing or unparsable.
std::optional<nlohmann::json> read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

template <typename T>
T json_get(const nlohmann::json& j, const char* key, T fallback) {
  if (!j.is_object() || !j.contains(key)) return fallback;
  try {
    return j.at(key).get<T>();
  } catch (const std::exception&) {
    return fallback;
  }
}

// The scalar value a metrics map / loss gives for `monitor`.
std::optional<double> monitored_value(const CallbackParams& p, const std::string& monitor) {
  if (monitor == "loss") {
    if (!p.net_outputs.defined() || p.net_outputs.numel() == 0) return std::nullopt;
    try {
      const std::vector<double> v = p.net_outputs.to_vector<double>();  // also for a loss in GPU memory
      double s = 0;
      for (double x : v) s += x;
      return s / static_cast<double>(v.size());
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  if (auto it = p.eval_results.find(monitor); it != p.eval_results.end()) return it->second;
  if (auto it = p.metrics.find(monitor); it != p.metrics.end()) return it->second;
  return std::nullopt;
}

nlohmann::json describe(const NamedTensors& tensors) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& [name, t] : tensors)
    a.push_back({{"name", name}, {"shape", t.shape().dims()}, {"dtype", dtype_name(t.dtype())}});
  return a;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Construction

std::string ModelCheckpoint::checkpoint_name(const std::string& prefix, std::int64_t epoch,
                                             std::int64_t step_in_epoch) {
  return fmt::format("{}-{}_{}.ckpt", prefix, epoch, step_in_epoch);
}

std::string ModelCheckpoint::decollide_prefix(const std::string& directory, const std::string& prefix,
                                              bool breakpoints) {
  std::int64_t suffix = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    const std::string name = entry.path().filename().string();
    if (!ends_with(name, ".ckpt") && !ends_with(name, ".safetensors")) continue;
    if (ends_with(name, "_breakpoint.ckpt") != breakpoints) continue;
    if (!starts_with(name, prefix) || name.size() <= prefix.size()) continue;
    if (std::isalpha(static_cast<unsigned char>(name[prefix.size()]))) continue;
    const std::size_t dash = name.find('-', prefix.size());
    if (dash == std::string::npos) continue;
    const std::size_t i = dash - prefix.size();
    if (i == 0) {
      suffix = std::max<std::int64_t>(suffix, 1);
    } else {
      // name[len(prefix)+1 : len(prefix)+i] must be all digits (and non-empty, as Python's isdigit).
      const std::string digits = i > 1 ? name.substr(prefix.size() + 1, i - 1) : std::string();
      if (!digits.empty() && digits.size() < 18 &&
          std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); }))
        suffix = std::max<std::int64_t>(suffix, std::stoll(digits) + 1);
    }
  }
  return suffix > 0 ? fmt::format("{}_{}", prefix, suffix) : prefix;
}

ModelCheckpoint::ModelCheckpoint(std::string prefix, std::string directory, CheckpointConfig config,
                                 ModelCheckpointOptions options)
    : original_prefix_(std::move(prefix)), given_(std::move(config)), options_(std::move(options)) {
  if (original_prefix_.empty() || original_prefix_.find('/') != std::string::npos ||
      original_prefix_.find('\\') != std::string::npos)
    throw Error(fmt::format(
        "For 'ModelCheckpoint', the argument 'prefix' for checkpoint file name is invalid, it must be string and "
        "does not contain '/', but got '{}'.",
        original_prefix_));
  config_ = given_.normalized();
  if (!options_.clock) options_.clock = SystemClock::instance();

  // Directory: created with mode 0700 (umask untouched: mkdir's mode is masked, so chmod what we made).
  directory_ = directory.empty() ? fs::current_path().string() : directory;
  std::error_code ec;
  if (fs::exists(directory_, ec)) {
    if (!fs::is_directory(directory_, ec))
      throw Error(fmt::format("ModelCheckpoint: the directory '{}' exists and is not a directory", directory_));
  } else {
    fs::path missing = directory_;
    std::vector<fs::path> made;
    for (fs::path p = missing; !p.empty() && !fs::exists(p, ec); p = p.parent_path()) made.push_back(p);
    for (auto it = made.rbegin(); it != made.rend(); ++it) {
      if (::mkdir(it->c_str(), 0700) != 0 && errno != EEXIST) throw_file_error("mkdir", it->string(), errno);
      ::chmod(it->c_str(), 0700);
    }
  }

  owner_ = random_hex128();
  run_id_ = random_hex128();
  if (config_.resume) adopt_earlier_run();

  const std::string canonical = fs::weakly_canonical(directory_, ec).string();
  std::lock_guard<std::mutex> lock(registry_mutex());
  if (!adopted_) {
    prefix_ = decollide_prefix(directory_, original_prefix_, false);
    // Beyond MindSpore: a prefix held by a live instance of this process is taken too.
    std::int64_t n = prefix_ == original_prefix_ ? 0 : std::stoll(prefix_.substr(original_prefix_.size() + 1));
    while (registry().count(canonical + "\n" + prefix_)) prefix_ = fmt::format("{}_{}", original_prefix_, ++n);
  }
  reserved_key_ = canonical + "\n" + prefix_;
  registry().insert(reserved_key_);

  if (!config_.has_periodic_trigger())
    log(LogLevel::kWarning,
        fmt::format("ModelCheckpoint '{}': neither save_checkpoint_steps nor save_checkpoint_seconds is set; only "
                    "exception and signal saves will be made",
                    prefix_));
}

ModelCheckpoint::~ModelCheckpoint() {
  release_signals();
  wait_writer();
  if (writer_error_) {
    try {
      std::rethrow_exception(writer_error_);
    } catch (const std::exception& e) {
      log(LogLevel::kError, fmt::format("ModelCheckpoint '{}': asynchronous save failed: {}", prefix_, e.what()));
    } catch (...) {
    }
  }
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry().erase(reserved_key_);
}

void ModelCheckpoint::adopt_earlier_run() {
  // The newest committed, non-breakpoint manifest whose original prefix is ours.
  std::optional<nlohmann::json> best;
  std::error_code ec;
  // Prefixes written by runs of this original prefix: P, P_1, ... ; each has its own pointer. The
  // pointer is only a preference: the manifest it names must still pass the checks below.
  std::string pointed;
  {
    std::ifstream in(join_path(directory_, original_prefix_ + ".latest"));
    if (in) std::getline(in, pointed);
  }
  std::set<std::string> owners_with_manifest;
  std::vector<fs::path> temporaries;
  for (const auto& entry : fs::directory_iterator(directory_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 1 && name[0] == '.' && name.find(".tmp-") != std::string::npos) temporaries.push_back(entry.path());
    if (!ends_with(name, std::string(".ckpt") + kManifestSuffix)) continue;
    auto j = read_json(entry.path().string());
    if (j) owners_with_manifest.insert(json_get<std::string>(*j, "owner", ""));
    if (!j || json_get<std::string>(*j, "format", "") != "ckpt-manifest") continue;
    if (json_get<std::string>(*j, "original_prefix", "") != original_prefix_) continue;
    if (json_get<std::string>(*j, "trigger", "") == "exception") continue;
    const std::string file = json_get<std::string>(*j, "file", "");
    if (fs::file_size(join_path(directory_, file), ec) != json_get<std::uint64_t>(*j, "bytes", 0) || ec) continue;
    auto key = [](const nlohmann::json& m) {
      return std::pair(json_get<std::int64_t>(m, "global_step", 0), json_get<std::int64_t>(m, "wall_time_ns", 0));
    };
    if (!best || key(*j) > key(*best)) best = j;
    // The file named by the latest pointer wins (it is what resume() restores from).
    if (!pointed.empty() && file == pointed) {
      best = j;
      break;
    }
  }
  remove_orphaned_temporaries(temporaries, owners_with_manifest);
  if (!best) return;  // nothing to adopt: a fresh start
  const auto& m = *best;
  owner_ = json_get<std::string>(m, "owner", owner_);
  prefix_ = json_get<std::string>(m, "prefix", original_prefix_);
  run_start_time_ns_ = json_get<std::int64_t>(m, "run_start_time_ns", 0);
  last_save_time_ns_ = json_get<std::int64_t>(m, "wall_time_ns", 0);
  const nlohmann::json ts = m.contains("trigger_state") ? m["trigger_state"] : nlohmann::json::object();
  last_steps_save_ = json_get<std::int64_t>(ts, "last_steps_save", json_get<std::int64_t>(m, "global_step", 0));
  last_saved_global_step_ = json_get<std::int64_t>(m, "global_step", -1);
  parent_ = json_get<std::string>(m, "file", "");
  latest_file_ = join_path(directory_, parent_);
  adopted_ = true;
  graph_meta_done_ = fs::exists(graph_meta_path(), ec);
  cleanup_owned_leftovers();
}

// A run of this original prefix killed during its first save leaves temporaries under an owner id that
// no manifest names, so no later run could adopt them: a resuming run removes them. Temporary names are
// ".<file>[.manifest.json].tmp-<owner>-<seq>" with <file> = "<prefix>-<epoch>_<step>[_breakpoint].ckpt"
// and <prefix> = P or P_<n>.
void ModelCheckpoint::remove_orphaned_temporaries(const std::vector<fs::path>& temporaries,
                                                  const std::set<std::string>& owners_with_manifest) {
  for (const auto& path : temporaries) {
    const std::string name = path.filename().string();
    const auto tmp = name.rfind(".tmp-");
    const auto seq = name.rfind('-');
    if (tmp == std::string::npos || seq == std::string::npos || seq <= tmp + 5) continue;
    const std::string owner = name.substr(tmp + 5, seq - tmp - 5);
    if (owners_with_manifest.count(owner)) continue;  // adoptable (or another run's): not an orphan
    const std::string file = name.substr(1, tmp - 1);
    const auto dash = file.rfind('-');
    if (dash == std::string::npos) continue;
    const std::string prefix = file.substr(0, dash);
    bool ours = prefix == original_prefix_;
    if (!ours && prefix.size() > original_prefix_.size() + 1 && prefix.compare(0, original_prefix_.size(), original_prefix_) == 0 &&
        prefix[original_prefix_.size()] == '_')
      ours = std::all_of(prefix.begin() + static_cast<std::ptrdiff_t>(original_prefix_.size()) + 1, prefix.end(),
                         [](char c) { return c >= '0' && c <= '9'; });
    if (!ours) continue;
    log(LogLevel::kInfo, fmt::format("ModelCheckpoint '{}': removing the temporary '{}' of a run that committed nothing",
                                     original_prefix_, path.string()));
    std::error_code ec;
    fs::remove(path, ec);
  }
}

void ModelCheckpoint::cleanup_owned_leftovers() {
  std::error_code ec;
  std::vector<fs::path> remove;
  for (const auto& entry : fs::directory_iterator(directory_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 1 && name[0] == '.' && name.find(".tmp-" + owner_ + "-") != std::string::npos) {
      remove.push_back(entry.path());
    } else if (ends_with(name, kManifestSuffix)) {
      auto j = read_json(entry.path().string());
      if (!j || json_get<std::string>(*j, "owner", "") != owner_) continue;
      const std::string file = join_path(directory_, json_get<std::string>(*j, "file", ""));
      std::error_code e2;
      const auto size = fs::file_size(file, e2);
      if (e2 || size != json_get<std::uint64_t>(*j, "bytes", 0)) remove.push_back(entry.path());
    }
  }
  for (const auto& p : remove) {
    log(LogLevel::kInfo, fmt::format("ModelCheckpoint '{}': removing uncommitted leftover '{}'", prefix_, p.string()));
    fs::remove(p, ec);
  }
}

std::string ModelCheckpoint::latest_pointer_path() const { return join_path(directory_, prefix_ + ".latest"); }
std::string ModelCheckpoint::graph_meta_path() const { return join_path(directory_, prefix_ + "-graph.meta"); }

// ---------------------------------------------------------------------------------------------------
// Signals (spec §8)

void ModelCheckpoint::acquire_signals() {
  if (!held_signals_.empty()) return;  // already held (a begin without its end)
  try {
    for (int sig : config_.save_on_signals) {
      SignalRegistry::clear(sig);
      SignalRegistry::acquire(sig);
      held_signals_.push_back(sig);
    }
  } catch (...) {
    release_signals();
    throw;
  }
}

void ModelCheckpoint::release_signals() noexcept {
  for (int sig : held_signals_) SignalRegistry::release(sig);
  held_signals_.clear();
}

int ModelCheckpoint::pending_signal() const {
  for (int sig : held_signals_)
    if (SignalRegistry::pending(sig)) return sig;
  return 0;
}

// ---------------------------------------------------------------------------------------------------
// Hooks

void ModelCheckpoint::on_train_begin(RunContext& ctx) {
  rethrow_async_error(false);
  const auto& p = ctx.original_args();
  const std::int64_t now = options_.clock->now_ns();
  if (!run_start_time_ns_) run_start_time_ns_ = now;
  if (!last_save_time_ns_) last_save_time_ns_ = now;
  step_offset_ = p.initial_epoch * p.batch_num;
  if (!adopted_) {
    // A new train() restarts the global step (MindSpore): the schedule restarts with it.
    last_steps_save_ = step_offset_;
    last_saved_global_step_ = -1;
  } else if (!adopted_pruned_) {
    // A killed run may have left one checkpoint more than the policy (committed, not yet pruned).
    adopted_pruned_ = true;
    run_retention();
  }
  acquire_signals();
}

void ModelCheckpoint::on_train_step_end(RunContext& ctx) {
  rethrow_async_error(false);
  const auto& p = ctx.original_args();
  const std::int64_t global = step_offset_ + p.cur_step_num;
  if (adopted_ && !adoption_checked_) {
    adoption_checked_ = true;
    if (global - 1 < last_saved_global_step_) {
      // Training continues from an earlier position than the adopted checkpoint (the Model was not
      // resumed from it, or from an older file): rebase the steps schedule on the real position.
      log(LogLevel::kWarning,
          fmt::format("ModelCheckpoint '{}': resume adopted '{}' (global step {}) but training continues at step {}; "
                      "restore the run with anvil::resume() for an exact continuation",
                      prefix_, parent_, last_saved_global_step_, global));
      const std::int64_t n = config_.save_checkpoint_steps;
      last_steps_save_ = n > 0 ? ((global - 1) / n) * n : global - 1;
      last_saved_global_step_ = -1;
    }
  }
  if (const int sig = pending_signal(); sig != 0) {
    signal_save_and_stop(ctx, sig, global);
    return;
  }
  if (global == last_saved_global_step_) return;
  bool steps_due = config_.save_checkpoint_steps > 0 && global - last_steps_save_ >= config_.save_checkpoint_steps;
  bool seconds_due = false;
  if (config_.save_checkpoint_seconds > 0) {
    const std::int64_t now = options_.clock->now_ns();
    seconds_due = now - *last_save_time_ns_ > config_.save_checkpoint_seconds * 1000000000LL;
  }
  if (!steps_due && !seconds_due) return;
  if (steps_due) last_steps_save_ = global;
  save(ctx, steps_due ? "steps" : "seconds");
}

// Signal save (spec §8): a normal checkpoint of this step (unless this step is saved already), committed
// before we return, then a clean stop. The flag is left set for other watchers (OnRequestExit).
void ModelCheckpoint::signal_save_and_stop(RunContext& ctx, int sig, std::int64_t global) {
  if (global != last_saved_global_step_) {
    if (config_.save_checkpoint_steps > 0 && global - last_steps_save_ >= config_.save_checkpoint_steps)
      last_steps_save_ = global;
    // A second signal during this save exits at once (spec §8): the user insists.
    SignalRegistry::ImmediateExitScope exit_on_second_signal;
    save(ctx, "signal");
    rethrow_async_error(true);  // async: wait for the commit
    log(LogLevel::kWarning, fmt::format("ModelCheckpoint '{}': signal {} received; saved '{}', stopping", prefix_,
                                        sig, latest_file_));
  } else {
    log(LogLevel::kWarning, fmt::format("ModelCheckpoint '{}': signal {} received; step {} is saved already ('{}'), "
                                        "stopping",
                                        prefix_, sig, global, latest_file_));
  }
  ctx.request_stop();
}

void ModelCheckpoint::on_train_epoch_end(RunContext& ctx) {
  rethrow_async_error(false);
  if (config_.keep_best_k <= 0 || config_.monitor == "loss") return;
  const auto& p = ctx.original_args();
  if (step_offset_ + p.cur_step_num != last_saved_global_step_ || latest_file_.empty()) return;
  const std::optional<double> value = monitored_value(p, config_.monitor);
  if (!value) return;
  rethrow_async_error(true);  // the checkpoint must be committed before its manifest is replaced
  const std::string manifest_path = latest_file_ + kManifestSuffix;
  auto m = read_json(manifest_path);
  if (!m || m->contains("monitored_value") || json_get<std::string>(*m, "owner", "") != owner_) return;
  (*m)["monitored_value"] = *value;
  (*m)["monitored_at"] = "epoch_end";
  (*m)["metrics"][config_.monitor] = *value;
  const std::string tmp = join_path(directory_, fmt::format(".{}{}.tmp-{}-{}", fs::path(latest_file_).filename().string(),
                                                            kManifestSuffix, owner_, ++seq_));
  write_file_atomic(manifest_path, m->dump(2) + "\n", {.durable = options_.durable, .mode = 0444, .temp_path = tmp});
  run_retention();
}

void ModelCheckpoint::on_train_end(RunContext& ctx) {
  const int sig = pending_signal();  // one that arrived after the last step ended (e.g. in fit's evaluation)
  release_signals();  // the previous dispositions come back with the last release
  const auto& p = ctx.original_args();
  if (p.exception) {
    // The loop is failing already: wait for the writer and log its error (never replace the original).
    wait_writer();
    if (writer_error_) {
      try {
        std::rethrow_exception(std::exchange(writer_error_, nullptr));
      } catch (const std::exception& e) {
        log(LogLevel::kError, fmt::format("ModelCheckpoint '{}': asynchronous save failed: {}", prefix_, e.what()));
      }
    }
    return;
  }
  if ((config_.has_periodic_trigger() || sig != 0) && p.cur_step_num > 0) {
    const std::int64_t global = step_offset_ + p.cur_step_num;
    if (global != last_saved_global_step_) {
      rethrow_async_error(false);
      save(ctx, sig != 0 ? "signal" : "end");
    }
  }
  try {
    rethrow_async_error(true);
  } catch (...) {
    snapshot_pool_.clear();
    throw;
  }
  snapshot_pool_.clear();  // the snapshot buffers are not held between train() calls
}

void ModelCheckpoint::on_exception(RunContext& ctx, const std::exception& error) {
  if (!config_.exception_save) return;
  try {
    wait_writer();
    if (writer_error_) {
      std::exception_ptr e = std::exchange(writer_error_, nullptr);
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& w) {
        log(LogLevel::kError, fmt::format("ModelCheckpoint '{}': asynchronous save failed: {}", prefix_, w.what()));
      }
    }
    const auto& p = ctx.original_args();
    auto job = make_job(ctx, "exception", false);
    job->breakpoint = true;
    job->prefix = decollide_prefix(directory_, original_prefix_, true);
    job->file = fmt::format("{}-{}_{}_breakpoint.ckpt", job->prefix, p.cur_epoch_num, p.step_in_epoch);
    job->metrics["exception"] = error.what();
    write_job(*job);
    log(LogLevel::kWarning, fmt::format("ModelCheckpoint '{}': training failed ({}); saved '{}'", prefix_,
                                        error.what(), join_path(directory_, job->file)));
  } catch (const std::exception& e) {
    log(LogLevel::kError, fmt::format("ModelCheckpoint '{}': the exception save failed: {}", prefix_, e.what()));
  }
}

// ---------------------------------------------------------------------------------------------------
// Saving

std::unique_ptr<ModelCheckpoint::Job> ModelCheckpoint::make_job(RunContext& ctx, const std::string& trigger,
                                                                 bool snapshot) {
  const auto& p = ctx.original_args();
  auto job = std::make_unique<Job>();
  job->prefix = prefix_;
  job->epoch = p.cur_epoch_num;
  job->step_in_epoch = p.step_in_epoch;
  job->global_step = step_offset_ + p.cur_step_num;
  job->file = checkpoint_name(prefix_, job->epoch, job->step_in_epoch);
  job->wall_time_ns = options_.clock->now_ns();
  job->run_start_time_ns = run_start_time_ns_.value_or(job->wall_time_ns);
  job->trigger = trigger;
  job->parent = parent_;
  job->seq = ++seq_;

  const nn::Cell* net = config_.saved_network ? config_.saved_network.get() : p.train_network ? p.train_network : p.network;
  ANVIL_CHECK(net != nullptr, "ModelCheckpoint '{}': cb_params has no network to save", prefix_);
  job->tensors = net->state_dict();
  if (!config_.saved_network && p.optimizer) {
    NamedTensors opt = p.optimizer->state_dict();
    job->tensors.insert(job->tensors.end(), opt.begin(), opt.end());
  }
  if (snapshot) {
    // The writer hands back the previous snapshot's buffers (snapshot_pool_, read only after the writer
    // thread was joined): copying into them skips the allocation and the page faults of fresh memory.
    // The snapshot is always in host memory: tensors on a GPU are copied down here, on the training
    // thread, so the writer never touches device memory.
    NamedTensors pool = std::exchange(snapshot_pool_, {});
    const bool reuse = pool.size() == job->tensors.size();
    for (std::size_t i = 0; i < job->tensors.size(); ++i) {
      Tensor& t = job->tensors[i].second;
      if (reuse && pool[i].first == job->tensors[i].first && pool[i].second.shape() == t.shape() &&
          pool[i].second.dtype() == t.dtype()) {
        pool[i].second.copy_from(t);
        t = pool[i].second;
      } else {
        t = t.device().is_cpu() ? t.clone() : t.to(Device::cpu());
      }
    }
  }
  if (config_.appends("epoch_num")) job->append.emplace_back("epoch_num", AppendValue{std::int64_t{p.cur_epoch_num}});
  if (config_.appends("step_num")) job->append.emplace_back("step_num", AppendValue{std::int64_t{job->global_step}});
  for (auto& [k, v] : config_.append_dict()) {
    if (snapshot)
      if (auto* t = std::get_if<Tensor>(&v)) v = t->device().is_cpu() ? t->clone() : t->to(Device::cpu());
    job->append.emplace_back(k, v);
  }
  if (config_.save_resume_state && !config_.saved_network) {
    // §9 entries through framework/train's TrainState and serialization/Resume's encoding. A capture
    // failure (e.g. a loop without a DataLoader) does not fail the save: it is written without them.
    try {
      if (!p.model || !p.train_dataset || !p.list_callback || p.mode != "train")
        throw Error("the loop does not expose its Model, train_dataset and callbacks");
      const TrainState st = capture_train_state(ctx);
      for (auto& [k, v] : train_state_append_info(st)) {
        if (std::any_of(job->append.begin(), job->append.end(), [&](const auto& e) { return e.first == k; })) continue;
        if (snapshot)
          if (auto* t = std::get_if<Tensor>(&v)) v = t->device().is_cpu() ? t->clone() : t->to(Device::cpu());
        job->append.emplace_back(k, v);
      }
      job->resume_state = true;
    } catch (const std::exception& e) {
      if (!resume_state_warned_)
        log(LogLevel::kWarning, fmt::format("ModelCheckpoint '{}': checkpoints are written without resume state: {}",
                                            prefix_, e.what()));
      resume_state_warned_ = true;
    }
  }
  for (const auto& [k, v] : p.eval_results) job->metrics[k] = v;
  for (const auto& [k, v] : p.metrics) job->metrics[k] = v;
  if (auto loss = monitored_value(p, "loss")) job->metrics["loss"] = *loss;
  job->monitored = monitored_value(p, config_.monitor);
  job->last_steps_save = last_steps_save_;
  return job;
}

void ModelCheckpoint::save(RunContext& ctx, const std::string& trigger) {
  if (!graph_meta_done_) write_graph_meta(ctx);
  const bool async = config_.async_save == AsyncSave::kThread;
  if (async && !writer_done_.load() && trigger != "end" && trigger != "signal") {  // end and signal saves wait
    if (config_.async_pending == "skip") {
      log(LogLevel::kWarning,
          fmt::format("ModelCheckpoint '{}': a save is still in flight; the {}-triggered save at step {} is skipped",
                      prefix_, trigger, step_offset_ + ctx.original_args().cur_step_num));
      return;
    }
  }
  if (async) rethrow_async_error(true);  // waits for the in-flight save ("wait" policy)

  auto job = make_job(ctx, trigger, async);
  auto& p = ctx.original_args();
  auto record = [&] {  // sync: after the commit; async: at the hand-off
    last_saved_global_step_ = job->global_step;
    last_save_time_ns_ = job->wall_time_ns;
    parent_ = job->file;
    latest_file_ = join_path(directory_, job->file);
  };
  if (!async) {
    write_job(*job);
    record();
  } else {
    record();
    writer_done_ = false;
    writer_ = std::thread([this, j = std::shared_ptr<Job>(std::move(job))]() {
      try {
        write_job(*j);
      } catch (...) {
        writer_error_ = std::current_exception();
      }
      snapshot_pool_ = std::move(j->tensors);  // the training thread reads it only after join()
      writer_done_ = true;
    });
  }
  p.last_save_ckpt_step = last_saved_global_step_;
  p.latest_ckpt_file = latest_file_;
}

void ModelCheckpoint::write_job(Job& job) {
  const std::string final_path = join_path(directory_, job.file);
  const std::string manifest_path = final_path + kManifestSuffix;
  const std::string data_tmp = join_path(directory_, fmt::format(".{}.tmp-{}-{}", job.file, owner_, job.seq));
  const std::string manifest_tmp =
      join_path(directory_, fmt::format(".{}{}.tmp-{}-{}", job.file, kManifestSuffix, owner_, job.seq));
  auto hook = [&](std::string_view stage) {
    if (options_.fault_hook) options_.fault_hook(stage, job.file);
  };
  bool manifest_renamed = false, committed = false;
  try {
    // 1. Data to the temporary file.
    CheckpointWriterOptions wo;
    wo.crc_check = config_.crc_check;
    wo.file.durable = options_.durable;
    wo.file.mode = 0400;
    wo.file.temp_path = data_tmp;
    CheckpointFileInfo info;
    {
      CheckpointWriter writer(final_path, wo);
      for (const auto& [name, t] : job.tensors) writer.write_tensor(name, t);
      for (const auto& [name, v] : job.append) {
        if (const auto* s = std::get_if<std::string>(&v)) writer.write_string(name, *s);
        else writer.write_tensor(name, append_value_tensor(v));
      }
      info = writer.finish();
    }
    hook("data_written");

    // 2. Manifest to its temporary file.
    nlohmann::json m = {{"format", "ckpt-manifest"},
                        {"version", 1},
                        {"file", job.file},
                        {"bytes", info.bytes},
                        {"crc32", info.crc32},
                        {"entries", info.entries},
                        {"owner", owner_},
                        {"run_id", run_id_},
                        {"prefix", job.prefix},
                        {"original_prefix", original_prefix_},
                        {"global_step", job.global_step},
                        {"epoch", job.epoch},
                        {"step_in_epoch", job.step_in_epoch},
                        {"wall_time_ns", job.wall_time_ns},
                        {"commit_time_ns", options_.clock->now_ns()},
                        {"run_start_time_ns", job.run_start_time_ns},
                        {"trigger", job.trigger},
                        {"parent", job.parent},
                        {"metrics", job.metrics},
                        {"monitor", config_.monitor},
                        {"resume_state", job.resume_state},
                        {"exact_resume", job.resume_state && !job.breakpoint},
                        {"trigger_state", {{"last_steps_save", job.last_steps_save}, {"last_save_time_ns", job.wall_time_ns}}}};
    if (job.monitored) m["monitored_value"] = *job.monitored;
    {
      AtomicFile mf(manifest_path, {.durable = options_.durable, .mode = 0444, .temp_path = manifest_tmp});
      mf.write(m.dump(2) + "\n");
      mf.finish();
    }
    hook("manifest_written");

    // 3. Refuse to replace a file of another owner, then manifest, then data.
    std::error_code ec;
    if (fs::exists(final_path, ec)) {
      auto old = read_json(manifest_path);
      if (!old || json_get<std::string>(*old, "owner", "") != owner_)
        throw Error(fmt::format("ModelCheckpoint: refusing to overwrite '{}': it was not created by this ModelCheckpoint "
                                "(owner {})",
                                final_path, owner_));
    }
    durable_rename(manifest_tmp, manifest_path, false);
    manifest_renamed = true;
    hook("manifest_renamed");
    durable_rename(data_tmp, final_path, options_.durable);
    committed = true;
    hook("committed");
  } catch (...) {
    std::error_code ec;
    fs::remove(data_tmp, ec);
    fs::remove(manifest_tmp, ec);
    if (manifest_renamed && !committed) fs::remove(manifest_path, ec);  // a manifest without its file
    throw;
  }

  if (config_.verify_after_write)
    CheckpointReader(final_path, ReaderOptions{.require_integrity = true, .context = "ModelCheckpoint verify"});
  if (job.breakpoint) return;
  // 5. Latest pointer, 6. retention.
  // Owner-tagged temporary, so that a resumed run removes one left by a kill (cleanup_owned_leftovers).
  write_file_atomic(join_path(directory_, job.prefix + ".latest"), job.file + "\n",
                    {.durable = options_.durable,
                     .mode = 0644,
                     .temp_path = join_path(directory_, fmt::format(".{}.latest.tmp-{}-{}", job.prefix, owner_, job.seq))});
  hook("latest_written");
  run_retention();
  hook("retention_done");
}

void ModelCheckpoint::run_retention() {
  std::vector<RetentionCandidate> candidates;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(directory_, ec)) {
    const std::string name = entry.path().filename().string();
    if (!ends_with(name, std::string(".ckpt") + kManifestSuffix) || name[0] == '.') continue;
    auto j = read_json(entry.path().string());
    if (!j || json_get<std::string>(*j, "format", "") != "ckpt-manifest") continue;
    if (json_get<std::string>(*j, "owner", "") != owner_ || json_get<std::string>(*j, "prefix", "") != prefix_) continue;
    const std::string file = json_get<std::string>(*j, "file", "");
    if (file.empty() || ends_with(file, "_breakpoint.ckpt") || json_get<std::string>(*j, "trigger", "") == "exception")
      continue;
    if (file + kManifestSuffix != name) continue;
    std::error_code e2;
    const auto size = fs::file_size(join_path(directory_, file), e2);
    if (e2 || size != json_get<std::uint64_t>(*j, "bytes", ~std::uint64_t{0})) continue;
    RetentionCandidate c;
    c.file = file;
    c.global_step = json_get<std::int64_t>(*j, "global_step", 0);
    c.wall_time_ns = json_get<std::int64_t>(*j, "wall_time_ns", 0);
    if (j->contains("monitored_value") && json_get<std::string>(*j, "monitor", "") == config_.monitor)
      c.metric = json_get<double>(*j, "monitored_value", 0.0);
    candidates.push_back(std::move(c));
  }
  RetentionPolicy policy{.keep_checkpoint_max = config_.keep_checkpoint_max,
                         .keep_checkpoint_per_n_minutes = config_.keep_checkpoint_per_n_minutes,
                         .keep_best_k = config_.keep_best_k,
                         .best_is_max = config_.mode == "max",
                         .run_start_time_ns = run_start_time_ns_.value_or(0)};
  const auto doomed = retention_to_delete(candidates, policy);
  bool removed = false;
  for (const auto& file : doomed) {
    const std::string path = join_path(directory_, file);
    std::error_code e1, e2;
    fs::remove(path, e1);
    if (!e1) fs::remove(path + kManifestSuffix, e2);
    if (e1 || e2) {
      log(LogLevel::kWarning, fmt::format("ModelCheckpoint '{}': could not delete '{}' ({}); retrying at the next save",
                                          prefix_, path, (e1 ? e1 : e2).message()));
      continue;
    }
    removed = true;
  }
  if (removed && options_.durable) fsync_directory(directory_);
}

void ModelCheckpoint::write_graph_meta(RunContext& ctx) {
  graph_meta_done_ = true;
  std::error_code ec;
  if (fs::exists(graph_meta_path(), ec)) return;  // once per prefix
  auto& p = ctx.original_args();
  nn::Cell* net = config_.saved_network ? config_.saved_network.get() : p.train_network ? p.train_network : p.network;
  if (!net) return;
  nlohmann::json cells = nlohmann::json::array();
  for (const auto& [name, cell] : net->cells_and_names())
    cells.push_back({{"name", name}, {"type", cell->type_name()}, {"extra_repr", cell->extra_repr()}});
  nlohmann::json meta = {{"format", "anvil-graph-meta"},
                         {"version", 1},
                         {"network", net->type_name()},
                         {"cells", cells},
                         {"parameters", describe(net->parameters_and_names())},
                         {"buffers", describe(net->buffers_and_names())},
                         {"optimizer_state", (!config_.saved_network && p.optimizer) ? describe(p.optimizer->state_dict())
                                                                                      : nlohmann::json::array()}};
  write_file_atomic(graph_meta_path(), meta.dump(2) + "\n",
                    {.durable = options_.durable,
                     .mode = 0644,
                     .temp_path = join_path(directory_, fmt::format(".{}-graph.meta.tmp-{}-0", prefix_, owner_))});
}

// ---------------------------------------------------------------------------------------------------
// Async writer

void ModelCheckpoint::wait_writer() noexcept {
  if (writer_.joinable()) writer_.join();
}

void ModelCheckpoint::rethrow_async_error(bool wait) {
  if (!writer_.joinable()) return;
  if (!wait && !writer_done_.load()) return;
  writer_.join();
  if (writer_error_) std::rethrow_exception(std::exchange(writer_error_, nullptr));
}

}  // namespace anvil
