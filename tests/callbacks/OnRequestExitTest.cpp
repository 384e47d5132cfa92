// OnRequestExit and SignalRegistry (spec §2, §8): a raised SIGTERM saves at the step end, then stops.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "callbacks/LambdaCallback.h"
#include "callbacks/OnRequestExit.h"
#include "callbacks/SignalRegistry.h"
#include "framework/core/Error.h"
#include "serialization/Checkpoint.h"
#include "tests/train/TrainTestUtil.h"

using namespace anvil;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<DataLoader> small_loader() {
  return std::make_unique<DataLoader>(testutil::separable_dataset(18, 4, 3, 1),
                                      DataLoaderOptions{.batch_size = 6, .shuffle = false, .prefetch = 0});
}

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / fmt::format("anvil_cb_{}_{}", name, ::getpid());
  fs::remove_all(d);
  return d;
}

}  // namespace

TEST(OnRequestExit, SigtermSavesAtStepEndThenStops) {
  const fs::path dir = fresh_dir("exit");
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  auto exit_cb = std::make_shared<OnRequestExit>(OnRequestExit::Options{.directory = dir.string()});
  int steps = 0, epoch_ends = 0, ends = 0;
  auto raiser = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
      .on_train_end = [&](RunContext&) { ++ends; },
      .on_train_epoch_end = [&](RunContext&) { ++epoch_ends; },
      .on_train_step_begin = [&](RunContext& c) {
        ++steps;
        if (c.original_args().cur_step_num == 5) std::raise(SIGTERM);  // epoch 2, step 2 of 3
      }});
  EXPECT_NO_THROW(s.model->train(4, *loader, {raiser, exit_cb}));
  EXPECT_TRUE(exit_cb->exit_requested());
  EXPECT_EQ(steps, 5);
  EXPECT_EQ(epoch_ends, 2);  // epoch 1 and the partial epoch 2
  EXPECT_EQ(ends, 1);
  const std::string file = (dir / "rank_0" / "Net_train.ckpt").string();
  ASSERT_EQ(exit_cb->checkpoint_file(true), file);
  ASSERT_TRUE(fs::exists(file));
  const ParamDict d = load_checkpoint(file);
  EXPECT_EQ(d.get_int("epoch_num"), 2);
  EXPECT_EQ(d.get_int("step_num"), 5);
  EXPECT_EQ(d.get_int("batch_num"), 2);
  EXPECT_TRUE(d.contains(s.net->state_dict().front().first));
  // The flag was consumed and the previous disposition restored.
  EXPECT_FALSE(SignalRegistry::pending(SIGTERM));
  struct sigaction cur {};
  sigaction(SIGTERM, nullptr, &cur);
  EXPECT_EQ(cur.sa_handler, SIG_DFL);

  // Train begin reloads the saved weights into a fresh network.
  auto s2 = testutil::make_mlp_model(4, 8, 3, 42);
  std::vector<float> at_begin;
  auto probe = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_begin = [&](RunContext& c) {
    if (at_begin.empty()) at_begin = s2.net->state_dict().front().second.to_vector<float>();
    c.request_stop();
  }});
  s2.model->train(1, *loader, {exit_cb, probe});
  EXPECT_EQ(at_begin, d.tensor(s.net->state_dict().front().first).to_vector<float>());
  fs::remove_all(dir);
}

TEST(OnRequestExit, ConfigFileRequestsExitAndValidation) {
  const fs::path dir = fresh_dir("exit_cfg");
  fs::create_directories(dir);
  const std::string cfg = (dir / "exit.json").string();
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  auto exit_cb = std::make_shared<OnRequestExit>(
      OnRequestExit::Options{.save_ckpt = false, .directory = dir.string(), .config_file = cfg});
  int steps = 0;
  auto writer = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_begin = [&](RunContext&) {
    if (++steps == 2) std::ofstream(cfg) << R"({"GracefulExit": 1})";
  }});
  s.model->train(3, *loader, {writer, exit_cb});
  EXPECT_EQ(steps, 2);
  EXPECT_FALSE(fs::exists(exit_cb->checkpoint_file(true)));
  EXPECT_THROW(OnRequestExit(OnRequestExit::Options{.signals = {SIGKILL}}), Error);
  EXPECT_THROW(SignalRegistry::acquire(SIGSTOP), Error);
  fs::remove_all(dir);
}
