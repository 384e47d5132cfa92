// Crash safety of ModelCheckpoint (issue 4 "kill test"): a child trainer with save_checkpoint_steps=1 is
// SIGKILLed at random moments; after every kill each visible .ckpt loads with require_integrity, the
// latest pointer names a loadable file, and at most one checkpoint more than the policy allows remains
// (a committed checkpoint whose pruning was cut off). Each child resumes from the directory (exact
// resume + ModelCheckpoint resume=true), so the next run prunes what the killed one left.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "callbacks/ModelCheckpoint.h"
#include "serialization/Checkpoint.h"
#include "serialization/Resume.h"
#include "tests/testutil/TempDir.h"
#include "tests/train/TrainTestUtil.h"

using namespace anvil;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kKeepMax = 2;

// The trainer: resumes from `dir` when it holds a checkpoint, then trains "forever" with a checkpoint
// every step. Returns only on error.
[[noreturn]] void child_trainer(const std::string& dir, bool durable) {
  try {
    auto s = testutil::make_mlp_model(4, 8, 3, 1);
    auto loader = std::make_unique<DataLoader>(testutil::separable_dataset(18, 4, 3, 1),
                                               DataLoaderOptions{.batch_size = 6, .shuffle = false, .prefetch = 0});
    std::vector<std::shared_ptr<Callback>> cbs = {std::make_shared<ModelCheckpoint>(
        "CKP", dir,
        CheckpointConfig{.save_checkpoint_steps = 1, .keep_checkpoint_max = kKeepMax, .resume = true},
        ModelCheckpointOptions{.durable = durable})};
    bool has_ckpt = false;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".ckpt") has_ckpt = true;
    if (has_ckpt) resume(*s.model, *loader, dir, cbs);
    s.model->train(1000000, *loader, cbs);
    _exit(0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child trainer failed: %s\n", e.what());
    _exit(3);
  } catch (...) {
    _exit(4);
  }
}

// The invariants after a kill. Returns the number of visible checkpoints.
int check_directory(const std::string& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".ckpt") continue;
    ++n;
    EXPECT_NO_THROW(load_checkpoint(e.path().string(), {.require_integrity = true, .warn_unverified = false}))
        << e.path();
  }
  EXPECT_LE(n, kKeepMax + 1);
  const fs::path latest = fs::path(dir) / "CKP.latest";
  if (fs::exists(latest)) {
    std::ifstream in(latest);
    std::string name;
    std::getline(in, name);
    EXPECT_NO_THROW(load_checkpoint((fs::path(dir) / name).string(), {.require_integrity = true})) << name;
  }
  return n;
}

}  // namespace

TEST(ModelCheckpointKill, RandomSigkillsNeverExposeATornCheckpoint) {
  testutil::TempDir dir;
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> delay_us(500, 15000);
  int max_seen = 0;
  for (int i = 0; i < 50; ++i) {
    SCOPED_TRACE(i);
    std::fflush(nullptr);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) child_trainer(dir.path().string(), /*durable=*/false);
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
    max_seen = std::max(max_seen, check_directory(dir.path().string()));
  }
  EXPECT_GT(max_seen, 0) << "no child ever committed a checkpoint";
  // The next run (resumed, a few steps) prunes back to the policy.
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = std::make_unique<DataLoader>(testutil::separable_dataset(18, 4, 3, 1),
                                             DataLoaderOptions{.batch_size = 6, .shuffle = false, .prefetch = 0});
  std::vector<std::shared_ptr<Callback>> cbs = {std::make_shared<ModelCheckpoint>(
      "CKP", dir.path().string(),
      CheckpointConfig{.save_checkpoint_steps = 1, .keep_checkpoint_max = kKeepMax, .resume = true},
      ModelCheckpointOptions{.durable = false})};
  const ResumeResult r = resume(*s.model, *loader, dir.path().string(), cbs);
  s.model->train(static_cast<int>(r.progress.epoch) + 1, *loader, cbs);
  EXPECT_EQ(check_directory(dir.path().string()), kKeepMax);
  for (const auto& e : fs::directory_iterator(dir.path()))
    EXPECT_NE(e.path().filename().string()[0], '.') << "leftover temporary " << e.path();
}
