// The kill harness of the ModelCheckpoint crash tests (issue 4 "kill test"), shared by
// tests/checkpoint/KillTest.cpp (50 kills, in `make test`) and tests/slow/KillSlowTest.cpp (more kills,
// durable and async, label slow). A child trainer with save_checkpoint_steps=1 resumes from the
// directory (exact resume + ModelCheckpoint resume=true) and is SIGKILLed at a random moment; after
// every kill each visible .ckpt loads with require_integrity, the latest pointer names a loadable file,
// and at most one checkpoint more than the policy allows remains (a committed checkpoint whose pruning
// was cut off). The next run prunes back to the policy.
#pragma once

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include "callbacks/ModelCheckpoint.h"
#include "framework/core/Threads.h"
#include "serialization/Checkpoint.h"
#include "serialization/Resume.h"
#include "tests/train/TrainTestUtil.h"

namespace anvil::testutil {

struct KillSeries {
  int kills = 50;
  std::uint32_t seed = 12345;
  bool durable = false;  // fsync files and directory (slower saves, wider windows)
  bool async = false;    // async_save = thread
  int min_delay_us = 500, max_delay_us = 15000;
  std::int64_t keep_max = 2;
};

inline CheckpointConfig kill_series_config(const KillSeries& k) {
  CheckpointConfig cfg{.save_checkpoint_steps = 1, .keep_checkpoint_max = k.keep_max, .resume = true};
  if (k.async) cfg.async_save = AsyncSave::kThread;
  return cfg;
}

// The trainer: resumes from `dir` when it holds a checkpoint, then trains "forever" with a checkpoint
// every step. Returns only on error.
[[noreturn]] inline void kill_series_child(const std::string& dir, const KillSeries& k) {
  namespace fs = std::filesystem;
  try {
    // One thread: a forked child must not use the parent's OpenMP pool (GNU OpenMP's team threads do
    // not survive fork(); with several tests in one process the parent may already have used it).
    set_num_threads(1);
    auto s = make_mlp_model(4, 8, 3, 1);
    auto loader = std::make_unique<DataLoader>(separable_dataset(18, 4, 3, 1),
                                               DataLoaderOptions{.batch_size = 6, .shuffle = false, .prefetch = 0});
    std::vector<std::shared_ptr<Callback>> cbs = {std::make_shared<ModelCheckpoint>(
        "CKP", dir, kill_series_config(k), ModelCheckpointOptions{.durable = k.durable})};
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
inline int kill_series_check(const std::string& dir, std::int64_t keep_max) {
  namespace fs = std::filesystem;
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".ckpt") continue;
    ++n;
    EXPECT_NO_THROW(load_checkpoint(e.path().string(), {.require_integrity = true, .warn_unverified = false}))
        << e.path();
  }
  EXPECT_LE(n, keep_max + 1);
  const fs::path latest = fs::path(dir) / "CKP.latest";
  if (fs::exists(latest)) {
    std::ifstream in(latest);
    std::string name;
    std::getline(in, name);
    EXPECT_NO_THROW(load_checkpoint((fs::path(dir) / name).string(), {.require_integrity = true})) << name;
  }
  return n;
}

// Runs the series in `dir`, then one resumed run that must prune back to keep_max and leave no
// temporaries. Returns the largest number of checkpoints seen after a kill.
inline int run_kill_series(const std::string& dir, const KillSeries& k) {
  namespace fs = std::filesystem;
  std::mt19937 rng(k.seed);
  std::uniform_int_distribution<int> delay_us(k.min_delay_us, k.max_delay_us);
  int max_seen = 0;
  // Widened (doubled, up to 64x) after every kill that found no checkpoint yet: on a slow or loaded
  // machine (sanitizer builds) a child may need longer than max_delay_us to commit its first one.
  int scale = 1;
  for (int i = 0; i < k.kills; ++i) {
    SCOPED_TRACE(i);
    std::fflush(nullptr);
    const pid_t pid = fork();
    EXPECT_GE(pid, 0);
    if (pid < 0) return max_seen;
    if (pid == 0) kill_series_child(dir, k);
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<std::int64_t>(delay_us(rng)) * scale));
    EXPECT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
    if (!WIFSIGNALED(status)) return max_seen;
    const int seen = kill_series_check(dir, k.keep_max);
    max_seen = std::max(max_seen, seen);
    if (seen == 0 && scale < 64) scale *= 2;
  }
  if (max_seen == 0) {
    ADD_FAILURE() << "no child committed a checkpoint in " << k.kills << " kills";
    return 0;
  }
  // The next run (resumed, a few steps) prunes back to the policy.
  auto s = make_mlp_model(4, 8, 3, 1);
  auto loader = std::make_unique<DataLoader>(separable_dataset(18, 4, 3, 1),
                                             DataLoaderOptions{.batch_size = 6, .shuffle = false, .prefetch = 0});
  std::vector<std::shared_ptr<Callback>> cbs = {std::make_shared<ModelCheckpoint>(
      "CKP", dir, kill_series_config(k), ModelCheckpointOptions{.durable = false})};
  const ResumeResult r = resume(*s.model, *loader, dir, cbs);
  s.model->train(static_cast<int>(r.progress.epoch) + 1, *loader, cbs);
  EXPECT_EQ(kill_series_check(dir, k.keep_max), k.keep_max);
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_NE(e.path().filename().string()[0], '.') << "leftover temporary " << e.path();
  return max_seen;
}

}  // namespace anvil::testutil
