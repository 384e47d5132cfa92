// Kill-and-resume for every combined policy (issue 4 "Restart"): for each combination of the steps and
// seconds triggers with keep_checkpoint_max and keep_checkpoint_per_n_minutes, run A is SIGKILLed (a
// forked child) either between steps or inside a save after its commit but before its pruning; run B
// (resume=true + anvil::resume from the directory, in this process) must then show, after every one of
// its steps, exactly the directory an uninterrupted run shows after the same step: the same checkpoint
// names, the same latest pointer and byte-identical checkpoint files.
//
// Time comes from a ManualClock set to start + 20 s x global step at every step begin, so the seconds
// trigger and the per-n-minutes grid are reproducible; run B continues at the time of the checkpoint
// it resumes from (a restart that lost no time).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "callbacks/LambdaCallback.h"
#include "callbacks/ModelCheckpoint.h"
#include "serialization/Resume.h"
#include "tests/testutil/TempDir.h"
#include "tests/train/TrainTestUtil.h"

using namespace anvil;
namespace fs = std::filesystem;

namespace {

constexpr int kEpochs = 8;  // 3 steps per epoch: 24 steps
constexpr std::int64_t kStart = 1767225600000000000LL;
constexpr std::int64_t kStepNs = 20'000'000'000LL;

struct Policy {
  const char* name;
  CheckpointConfig config;
};

std::vector<Policy> policies() {
  return {
      {"steps2_max3", {.save_checkpoint_steps = 2, .keep_checkpoint_max = 3}},
      {"seconds50_max2", {.save_checkpoint_steps = 0, .save_checkpoint_seconds = 50, .keep_checkpoint_max = 2}},
      {"steps1_max2_per1min",
       {.save_checkpoint_steps = 1, .keep_checkpoint_max = 2, .keep_checkpoint_per_n_minutes = 1}},
      {"seconds30_max1_per2min",
       {.save_checkpoint_steps = 0, .save_checkpoint_seconds = 30, .keep_checkpoint_max = 1,
        .keep_checkpoint_per_n_minutes = 2}},
      {"steps3_seconds50_max2_per1min",
       {.save_checkpoint_steps = 3, .save_checkpoint_seconds = 50, .keep_checkpoint_max = 2,
        .keep_checkpoint_per_n_minutes = 1}},
  };
}

std::unique_ptr<DataLoader> small_loader() {
  return std::make_unique<DataLoader>(testutil::separable_dataset(18, 4, 3, 1),
                                      DataLoaderOptions{.batch_size = 6, .shuffle = true, .seed = 5, .prefetch = 0});
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The directory as a comparable text: sorted visible names, the latest pointer, and each checkpoint's
// bytes hashed (identical files give identical text).
std::string describe(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) {
    out += n;
    if (n.size() > 5 && n.compare(n.size() - 5, 5, ".ckpt") == 0)
      out += " #" + std::to_string(std::hash<std::string>{}(read_text(dir / n)));
    out += "\n";
  }
  out += "latest=" + read_text(dir / "CKP.latest");
  return out;
}

// Callbacks shared by all runs: the clock tick (first) and, after ModelCheckpoint, a recorder of the
// directory after every step.
std::shared_ptr<LambdaCallback> ticker(const std::shared_ptr<ManualClock>& clock) {
  return std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_begin = [clock](RunContext& c) {
    clock->set_ns(kStart + c.original_args().cur_step_num * kStepNs);
  }});
}

std::shared_ptr<LambdaCallback> recorder(const fs::path& dir, std::map<std::int64_t, std::string>* out) {
  return std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_end = [dir, out](RunContext& c) {
    (*out)[c.original_args().cur_step_num] = describe(dir);
  }});
}

ModelCheckpointOptions options(std::shared_ptr<ManualClock> clock) {
  ModelCheckpointOptions o;
  o.clock = std::move(clock);
  o.durable = false;
  return o;
}

std::map<std::int64_t, std::string> uninterrupted(const CheckpointConfig& cfg, const fs::path& dir) {
  std::map<std::int64_t, std::string> seen;
  auto clock = std::make_shared<ManualClock>(kStart);
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  s.model->train(kEpochs, *loader,
                 {ticker(clock), std::make_shared<ModelCheckpoint>("CKP", dir.string(), cfg, options(clock)),
                  recorder(dir, &seen)});
  return seen;
}

// Run A in a child: killed at the end of step `kill_step` (between steps), or, with `inside_save`, by
// the first save at or after that step once it is committed and the latest pointer written, before
// its pruning.
void killed_run(const CheckpointConfig& cfg, const fs::path& dir, std::int64_t kill_step, bool inside_save) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    try {
      auto clock = std::make_shared<ManualClock>(kStart);
      auto s = testutil::make_mlp_model(4, 8, 3, 1);
      auto loader = small_loader();
      bool armed = false;
      ModelCheckpointOptions opts = options(clock);
      opts.fault_hook = [&armed](std::string_view stage, const std::string&) {
        if (armed && stage == "latest_written") raise(SIGKILL);
      };
      auto killer = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
          .on_train_step_begin = [&](RunContext& c) { armed = inside_save && c.original_args().cur_step_num >= kill_step; },
          .on_train_step_end = [&](RunContext& c) {
            if (!inside_save && c.original_args().cur_step_num == kill_step) raise(SIGKILL);
          }});
      s.model->train(kEpochs, *loader,
                     {ticker(clock), std::make_shared<ModelCheckpoint>("CKP", dir.string(), cfg, opts), killer});
    } catch (...) {
    }
    _exit(0);  // not killed: the parent reports it
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "run A was not killed";
}

// The checkpoint names in a describe() text.
std::vector<std::string> ckpt_names(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (const auto at = line.find(".ckpt #"); at != std::string::npos) out.push_back(line.substr(0, at + 5));
  return out;
}

}  // namespace

// The uninterrupted reference itself, checked by hand for one combination: a save every step at 20 s
// per step, keep_checkpoint_max=2 and one per minute (grid cells of 3 steps from the run's start).
TEST(ModelCheckpointRestart, CombinedPolicyFileListsAfterEachStep) {
  testutil::TempDir dir;
  const auto seen = uninterrupted(policies()[2].config, dir.path());
  using V = std::vector<std::string>;
  const std::vector<V> expected = {
      {"CKP-1_1.ckpt"},
      {"CKP-1_1.ckpt", "CKP-1_2.ckpt"},
      {"CKP-1_1.ckpt", "CKP-1_2.ckpt", "CKP-1_3.ckpt"},
      {"CKP-1_1.ckpt", "CKP-1_3.ckpt", "CKP-2_1.ckpt"},                   // step 2 leaves: neither newest nor first of its minute
      {"CKP-1_1.ckpt", "CKP-1_3.ckpt", "CKP-2_1.ckpt", "CKP-2_2.ckpt"},
      {"CKP-1_1.ckpt", "CKP-1_3.ckpt", "CKP-2_2.ckpt", "CKP-2_3.ckpt"},   // step 6 opens minute 2
      {"CKP-1_1.ckpt", "CKP-1_3.ckpt", "CKP-2_3.ckpt", "CKP-3_1.ckpt"},
      {"CKP-1_1.ckpt", "CKP-1_3.ckpt", "CKP-2_3.ckpt", "CKP-3_1.ckpt", "CKP-3_2.ckpt"},
      {"CKP-1_1.ckpt", "CKP-1_3.ckpt", "CKP-2_3.ckpt", "CKP-3_2.ckpt", "CKP-3_3.ckpt"},  // step 9 opens minute 3
  };
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_EQ(ckpt_names(seen.at(static_cast<std::int64_t>(i) + 1)), expected[i]) << "after step " << i + 1;
  EXPECT_NE(seen.at(9).find("latest=CKP-3_3.ckpt"), std::string::npos);
  EXPECT_NE(seen.at(9).find("CKP-graph.meta"), std::string::npos);
}

TEST(ModelCheckpointRestart, EveryCombinedPolicyContinuesExactlyAfterAKill) {
  for (const Policy& policy : policies()) {
    testutil::TempDir u_dir;
    const auto expected = uninterrupted(policy.config, u_dir.path());
    ASSERT_EQ(expected.size(), 3u * kEpochs) << policy.name;
    for (std::int64_t kill_step : {7, 11, 16}) {
      for (bool inside_save : {false, true}) {
        SCOPED_TRACE(std::string(policy.name) + " kill at step " + std::to_string(kill_step) +
                     (inside_save ? " inside the save before pruning" : " between steps"));
        testutil::TempDir dir;
        killed_run(policy.config, dir.path(), kill_step, inside_save);
        ASSERT_TRUE(fs::exists(dir.path() / "CKP.latest"));

        CheckpointConfig cfg = policy.config;
        cfg.resume = true;
        auto clock = std::make_shared<ManualClock>(kStart);
        auto s = testutil::make_mlp_model(4, 8, 3, 77);  // other init: the state comes from the file
        auto loader = small_loader();
        std::map<std::int64_t, std::string> seen;
        std::vector<std::shared_ptr<Callback>> cbs = {
            ticker(clock), std::make_shared<ModelCheckpoint>("CKP", dir.path().string(), cfg, options(clock)),
            recorder(dir.path(), &seen)};
        const ResumeResult r = resume(*s.model, *loader, dir.path().string(), cbs);
        const std::int64_t from = r.progress.global_step;
        if (inside_save) EXPECT_GE(from, kill_step);  // the killed save was committed
        else EXPECT_LE(from, kill_step);
        clock->set_ns(kStart + from * kStepNs);
        s.model->train(kEpochs, *loader, cbs);

        ASSERT_EQ(static_cast<std::int64_t>(seen.size()), 3 * kEpochs - from);
        for (const auto& [step, text] : seen) EXPECT_EQ(text, expected.at(step)) << "after step " << step;
      }
    }
  }
}
