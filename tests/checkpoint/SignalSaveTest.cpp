// ModelCheckpoint save_on_signals (spec callbacks-and-checkpointing.md §8): a signal raised during a
// step gives a committed checkpoint of that step, a clean stop and the end hooks; the previous signal
// disposition comes back at train end.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <cstdlib>
#include <vector>

#include <nlohmann/json.hpp>

#include "callbacks/LambdaCallback.h"
#include "callbacks/ModelCheckpoint.h"
#include "callbacks/SignalRegistry.h"
#include "framework/core/Error.h"
#include "serialization/Checkpoint.h"
#include "tests/testutil/TempDir.h"
#include "tests/train/TrainTestUtil.h"

using namespace anvil;
namespace fs = std::filesystem;

namespace {

using V = std::vector<std::string>;

// 18 examples in batches of 6: 3 steps per epoch.
std::unique_ptr<DataLoader> small_loader() {
  return std::make_unique<DataLoader>(testutil::separable_dataset(18, 4, 3, 1),
                                      DataLoaderOptions{.batch_size = 6, .shuffle = false, .prefetch = 0});
}

V ckpts(const fs::path& dir) {
  V out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    EXPECT_NE(n[0], '.') << "leftover temporary " << n;
    if (n.size() > 5 && n.compare(n.size() - 5, 5, ".ckpt") == 0) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string first_line(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  return line;
}

// A handler installed before training stands for "the previous disposition": it only counts, so a
// signal that reaches it (instead of ModelCheckpoint's) never kills the test.
std::atomic<int> g_sentinel_hits{0};
extern "C" void sentinel_handler(int) { g_sentinel_hits.fetch_add(1, std::memory_order_relaxed); }

// Installs sentinel_handler for `sig` for the scope; restores the original disposition afterwards.
class SentinelHandler {
 public:
  explicit SentinelHandler(int sig) : sig_(sig) {
    struct sigaction act {};
    act.sa_handler = sentinel_handler;
    sigemptyset(&act.sa_mask);
    sigaction(sig_, &act, &original_);
  }
  ~SentinelHandler() {
    sigaction(sig_, &original_, nullptr);
    SignalRegistry::clear(sig_);
  }
  SentinelHandler(const SentinelHandler&) = delete;
  SentinelHandler& operator=(const SentinelHandler&) = delete;

  // True when `sig`'s current handler is the sentinel.
  bool installed() const {
    struct sigaction cur {};
    sigaction(sig_, nullptr, &cur);
    return cur.sa_handler == sentinel_handler;
  }

 private:
  int sig_;
  struct sigaction original_ {};
};

// Counts the hooks that must still run after a signal stop.
struct HookLog {
  int steps = 0;
  int epoch_ends = 0;
  int train_ends = 0;
  bool handler_replaced_during_train = false;
};

}  // namespace

TEST(SignalSave, SigtermDuringAStepSavesThatStepAndStops) {
  testutil::TempDir dir;
  SentinelHandler sentinel(SIGTERM);
  g_sentinel_hits = 0;
  auto s = testutil::make_mlp_model(4, 8, 3, 3);
  auto loader = small_loader();
  // No periodic trigger: the only checkpoint is the signal's.
  auto ckpt = std::make_shared<ModelCheckpoint>(
      "sig", dir.path().string(),
      CheckpointConfig{.save_checkpoint_steps = 0, .keep_checkpoint_max = 5, .save_on_signals = {SIGTERM, SIGINT}},
      ModelCheckpointOptions{.durable = false});
  HookLog log;
  auto probe = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
      .on_train_end = [&](RunContext&) { ++log.train_ends; },
      .on_train_epoch_end = [&](RunContext&) { ++log.epoch_ends; },
      .on_train_step_begin =
          [&](RunContext& c) {
            log.handler_replaced_during_train = !sentinel.installed();
            if (c.original_args().cur_step_num == 5) std::raise(SIGTERM);  // epoch 2, step 2
          },
      .on_train_step_end = [&](RunContext&) { ++log.steps; }});
  s.model->train(4, *loader, {probe, ckpt});

  EXPECT_EQ(g_sentinel_hits.load(), 0);  // ModelCheckpoint's handler took the signal
  EXPECT_TRUE(log.handler_replaced_during_train);
  EXPECT_TRUE(sentinel.installed());  // the previous handler is back after train end
  EXPECT_EQ(log.steps, 5);            // stopped after the signalled step
  EXPECT_EQ(s.model->progress().global_step, 5);
  EXPECT_EQ(log.epoch_ends, 2);  // epoch 1 and the partial epoch 2
  EXPECT_EQ(log.train_ends, 1);

  EXPECT_EQ(ckpts(dir.path()), (V{"sig-2_2.ckpt"}));  // no end save besides it
  EXPECT_EQ(first_line(dir.path() / "sig.latest"), "sig-2_2.ckpt");
  const std::string file = (dir.path() / "sig-2_2.ckpt").string();
  EXPECT_EQ(ckpt->latest_ckpt_file(), file);
  const ParamDict dict = load_checkpoint(file, {.require_integrity = true});
  EXPECT_FALSE(dict.empty());
  std::ifstream in(file + ".manifest.json");
  const auto manifest = nlohmann::json::parse(in);
  EXPECT_EQ(manifest.at("trigger"), "signal");
  EXPECT_EQ(manifest.at("global_step"), 5);
}

// With a steps trigger and async saves: the signal save is committed before the step-end hook returns,
// counts as this step's only save, and retention/latest work as for any save.
TEST(SignalSave, AsyncWithStepsTriggerCommitsBeforeStopping) {
  testutil::TempDir dir;
  SentinelHandler sentinel(SIGUSR1);
  g_sentinel_hits = 0;
  auto s = testutil::make_mlp_model(4, 8, 3, 3);
  auto loader = small_loader();
  auto ckpt = std::make_shared<ModelCheckpoint>("sig", dir.path().string(),
                                                CheckpointConfig{.save_checkpoint_steps = 2,
                                                                 .keep_checkpoint_max = 5,
                                                                 .async_save = AsyncSave::kThread,
                                                                 .save_on_signals = {SIGUSR1}},
                                                ModelCheckpointOptions{.durable = false});
  bool committed_at_step_end = false;
  int train_ends = 0;
  auto raiser = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_begin = [](RunContext& c) {
    if (c.original_args().cur_step_num == 3) std::raise(SIGUSR1);
  }});
  auto after = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
      .on_train_end = [&](RunContext&) { ++train_ends; },
      .on_train_step_end =
          [&](RunContext& c) {
            if (c.original_args().cur_step_num == 3) {
              committed_at_step_end = fs::exists(dir.path() / "sig-1_3.ckpt");
              EXPECT_TRUE(c.get_stop_requested());
            }
          }});
  s.model->train(4, *loader, {raiser, ckpt, after});

  EXPECT_EQ(g_sentinel_hits.load(), 0);
  EXPECT_TRUE(sentinel.installed());
  EXPECT_TRUE(committed_at_step_end);
  EXPECT_EQ(train_ends, 1);
  EXPECT_EQ(s.model->progress().global_step, 3);
  EXPECT_EQ(ckpts(dir.path()), (V{"sig-1_2.ckpt", "sig-1_3.ckpt"}));
  EXPECT_EQ(first_line(dir.path() / "sig.latest"), "sig-1_3.ckpt");
  for (const auto& f : ckpts(dir.path())) EXPECT_NO_THROW(load_checkpoint((dir.path() / f).string(), {.require_integrity = true})) << f;
}

// The handler is released after a failed run too, and a later run starts with a clear flag.
TEST(SignalSave, ReleasedAfterAnExceptionAndFlagClearedAtNextBegin) {
  testutil::TempDir dir;
  SentinelHandler sentinel(SIGTERM);
  auto s = testutil::make_mlp_model(4, 8, 3, 3);
  auto loader = small_loader();
  auto ckpt = std::make_shared<ModelCheckpoint>(
      "sig", dir.path().string(), CheckpointConfig{.save_checkpoint_steps = 0, .save_on_signals = {SIGTERM}},
      ModelCheckpointOptions{.durable = false});
  auto fail = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_end = [](RunContext& c) {
    if (c.original_args().cur_step_num == 2) throw Error("boom");
  }});
  EXPECT_THROW(s.model->train(2, *loader, {ckpt, fail}), Error);
  EXPECT_TRUE(sentinel.installed());
  EXPECT_TRUE(ckpts(dir.path()).empty());

  // A stale flag (a signal that arrived while another holder had the handler) does not stop the next run.
  SignalRegistry::acquire(SIGTERM);
  std::raise(SIGTERM);
  SignalRegistry::release(SIGTERM);
  ASSERT_TRUE(SignalRegistry::pending(SIGTERM));
  EXPECT_TRUE(sentinel.installed());
  auto s2 = testutil::make_mlp_model(4, 8, 3, 3);
  auto loader2 = small_loader();
  s2.model->train(2, *loader2, {ckpt});
  EXPECT_EQ(s2.model->progress().global_step, 6);
  EXPECT_TRUE(ckpts(dir.path()).empty());
  EXPECT_TRUE(sentinel.installed());
}

TEST(SignalSave, UncatchableSignalsAreRejected) {
  testutil::TempDir dir;
  for (int sig : {SIGKILL, SIGSTOP}) {
    try {
      ModelCheckpoint("sig", dir.path().string(), CheckpointConfig{.save_on_signals = {SIGTERM, sig}});
      ADD_FAILURE() << "signal " << sig << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(sig == SIGKILL ? "SIGKILL" : "SIGSTOP"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("cannot be caught"), std::string::npos) << e.what();
    }
  }
}

// Spec §8: a second signal while the first one's save is running exits at once with the default action;
// the interrupted save leaves only temporaries and the earlier checkpoints stay loadable.
TEST(SignalSave, SecondSignalDuringTheSignalSaveExitsAtOnce) {
  testutil::TempDir dir;
  const std::string path = dir.path().string();
  auto child = [&path] {
    auto s = testutil::make_mlp_model(4, 8, 3, 3);
    auto loader = small_loader();
    ModelCheckpointOptions opts{.durable = false};
    opts.fault_hook = [](std::string_view stage, const std::string& file) {
      if (stage == "data_written" && file == "sig-2_2.ckpt") std::raise(SIGTERM);  // the second SIGTERM
    };
    auto ckpt = std::make_shared<ModelCheckpoint>(
        "sig", path, CheckpointConfig{.save_checkpoint_steps = 3, .keep_checkpoint_max = 5, .save_on_signals = {SIGTERM}},
        opts);
    auto probe = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_begin = [](RunContext& c) {
      if (c.original_args().cur_step_num == 5) std::raise(SIGTERM);  // the first SIGTERM
    }});
    s.model->train(4, *loader, {probe, ckpt});
    std::exit(0);  // not reached when the second signal works
  };
  EXPECT_EXIT(child(), ::testing::KilledBySignal(SIGTERM), "");

  // The steps checkpoint of step 3 is committed and intact; the signal save never got its name.
  V names, temporaries;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    const std::string n = e.path().filename().string();
    if (n[0] == '.') temporaries.push_back(n);
    else if (n.size() > 5 && n.compare(n.size() - 5, 5, ".ckpt") == 0) names.push_back(n);
  }
  EXPECT_EQ(names, (V{"sig-1_3.ckpt"}));
  EXPECT_EQ(temporaries.size(), 1u);  // the signal save's data, written but never renamed
  EXPECT_EQ(first_line(dir.path() / "sig.latest"), "sig-1_3.ckpt");
  EXPECT_FALSE(load_checkpoint((dir.path() / "sig-1_3.ckpt").string(), {.require_integrity = true}).empty());

  // Outside a signal save a repeated signal only sets the flag again (this process keeps running).
  SentinelHandler sentinel(SIGTERM);
  SignalRegistry::acquire(SIGTERM);
  std::raise(SIGTERM);
  std::raise(SIGTERM);
  EXPECT_TRUE(SignalRegistry::take(SIGTERM));
  SignalRegistry::release(SIGTERM);
  EXPECT_TRUE(sentinel.installed());
}

// Spec §8 / §10.27: a signal during fit's evaluation gives a committed checkpoint within one step (the
// next step's end) and a clean stop; during the last epoch's evaluation, the train-end save commits it.
TEST(SignalSave, SignalDuringEvaluationIsSavedWithinOneStep) {
  for (const int signalled_epoch : {1, 2}) {
    SCOPED_TRACE(signalled_epoch);
    testutil::TempDir dir;
    SentinelHandler sentinel(SIGTERM);
    auto s = testutil::make_mlp_model(4, 8, 3, 3);
    auto loader = small_loader();
    auto valid = small_loader();
    auto ckpt = std::make_shared<ModelCheckpoint>(
        "sig", dir.path().string(), CheckpointConfig{.save_checkpoint_steps = 0, .save_on_signals = {SIGTERM}},
        ModelCheckpointOptions{.durable = false});
    int epoch = 0;
    auto probe = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
        .on_train_epoch_begin = [&](RunContext&) { ++epoch; },
        .on_eval_step_end = [&](RunContext&) {
          if (epoch == signalled_epoch) std::raise(SIGTERM);
        },
        .runs_in_fit_eval = true});
    s.model->fit(2, *loader, *valid, {probe, ckpt});
    EXPECT_EQ(g_sentinel_hits.load(), 0);
    const std::int64_t expected_step = signalled_epoch == 1 ? 4 : 6;  // the next step's end, or the last step
    EXPECT_EQ(s.model->progress().global_step, expected_step);
    const std::string name = signalled_epoch == 1 ? "sig-2_1.ckpt" : "sig-2_3.ckpt";
    EXPECT_EQ(ckpts(dir.path()), (V{name}));
    EXPECT_EQ(first_line(dir.path() / "sig.latest"), name);
    std::ifstream in(dir.path() / (name + ".manifest.json"));
    EXPECT_EQ(nlohmann::json::parse(in).at("trigger"), "signal");
  }
}
