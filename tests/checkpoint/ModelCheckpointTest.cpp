// ModelCheckpoint: names, triggers, retention on disk, prefix_N, breakpoint files, failures, async,
// resume adoption (spec callbacks-and-checkpointing.md §4–§8).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "callbacks/Clock.h"
#include "callbacks/LambdaCallback.h"
#include "callbacks/ModelCheckpoint.h"
#include "framework/core/Error.h"
#include "serialization/Checkpoint.h"
#include "serialization/LoadParam.h"
#include "serialization/Resume.h"
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

// Visible names in `dir`, sorted; fails the test when a temporary (dot-file) is left behind.
V listing(const fs::path& dir) {
  V out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    EXPECT_NE(n[0], '.') << "leftover temporary " << n;
    out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The .ckpt files of `dir`, sorted.
V ckpts(const fs::path& dir) {
  V out;
  for (const auto& n : listing(dir))
    if (n.size() > 5 && n.compare(n.size() - 5, 5, ".ckpt") == 0) out.push_back(n);
  return out;
}

V sorted(V v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

ModelCheckpointOptions fast(std::shared_ptr<Clock> clock = nullptr) {
  return {.clock = std::move(clock), .durable = false};
}

// Bytes of every tensor of a network + optimizer, by name.
using Snapshot = std::map<std::string, std::vector<unsigned char>>;
Snapshot snapshot(const nn::Cell& net, const Optimizer* opt) {
  Snapshot s;
  NamedTensors all = net.state_dict();
  if (opt) {
    NamedTensors o = opt->state_dict();
    all.insert(all.end(), o.begin(), o.end());
  }
  for (const auto& [name, t] : all) {
    const auto* p = static_cast<const unsigned char*>(t.data_ptr());
    s[name] = std::vector<unsigned char>(p, p + t.nbytes());
  }
  return s;
}

// Records the network + optimizer state at every step end (run it after ModelCheckpoint).
std::shared_ptr<LambdaCallback> state_recorder(std::map<std::int64_t, Snapshot>* out, const testutil::MlpSetup& s) {
  return std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_end = [out, &s](RunContext& c) {
    (*out)[c.original_args().cur_step_num] = snapshot(*s.net, s.opt.get());
  }});
}

// Loads `file` with require_integrity into a fresh model (other seed) and checks every tensor is
// bit-identical to `expected`.
void expect_loads_exactly(const std::string& file, const Snapshot& expected) {
  SCOPED_TRACE(file);
  ParamDict dict = load_checkpoint(file, {.require_integrity = true});
  auto other = testutil::make_mlp_model(4, 8, 3, 99);
  auto [missing, unused] = load_param_into_net(*other.net, dict, true);
  EXPECT_TRUE(missing.empty());
  load_param_into_net(*other.opt, dict);
  Snapshot got = snapshot(*other.net, other.opt.get());
  ASSERT_EQ(got.size(), expected.size());
  for (const auto& [name, bytes] : expected) EXPECT_EQ(got[name], bytes) << name;
}

nlohmann::json manifest_of(const fs::path& ckpt) {
  return nlohmann::json::parse(read_text(ckpt.string() + ".manifest.json"));
}

}  // namespace

// ---- names and triggers ----

TEST(ModelCheckpoint, NamesFor2EpochsOf3StepsEvery2Steps) {
  testutil::TempDir dir;
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::map<std::int64_t, Snapshot> states;
  auto ckpt = std::make_shared<ModelCheckpoint>(
      "CKP", dir.path().string(),
      CheckpointConfig{.save_checkpoint_steps = 2, .append_info = {std::string("epoch_num"), std::string("step_num")}},
      ModelCheckpointOptions{.durable = true});  // the real fsync path once
  std::vector<std::pair<std::int64_t, std::string>> seen;
  auto probe = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_end = [&](RunContext& c) {
    seen.emplace_back(c.original_args().last_save_ckpt_step, fs::path(c.original_args().latest_ckpt_file).filename());
  }});
  s.model->train(2, *loader, {ckpt, probe, state_recorder(&states, s)});

  // Global steps 2, 4, 6; step 6 is the last, so no separate end save.
  EXPECT_EQ(listing(dir.path()),
            (V{"CKP-1_2.ckpt", "CKP-1_2.ckpt.manifest.json", "CKP-2_1.ckpt", "CKP-2_1.ckpt.manifest.json",
               "CKP-2_3.ckpt", "CKP-2_3.ckpt.manifest.json", "CKP-graph.meta", "CKP.latest"}));
  EXPECT_EQ(read_text(dir.path() / "CKP.latest"), "CKP-2_3.ckpt\n");
  EXPECT_EQ(seen, (std::vector<std::pair<std::int64_t, std::string>>{
                      {0, ""}, {2, "CKP-1_2.ckpt"}, {2, "CKP-1_2.ckpt"}, {4, "CKP-2_1.ckpt"}, {4, "CKP-2_1.ckpt"},
                      {6, "CKP-2_3.ckpt"}}));

  const std::map<std::string, std::int64_t> step_of = {{"CKP-1_2.ckpt", 2}, {"CKP-2_1.ckpt", 4}, {"CKP-2_3.ckpt", 6}};
  for (const auto& [name, step] : step_of) {
    const std::string path = dir.file(name);
    expect_loads_exactly(path, states.at(step));
    ParamDict d = load_checkpoint(path, {.require_integrity = true});
    EXPECT_EQ(d.tensor("epoch_num").dtype(), DType::kI64);
    EXPECT_EQ(d.tensor("epoch_num").rank(), 0u);
    EXPECT_EQ(d.tensor("step_num").dtype(), DType::kI64);
    EXPECT_EQ(d.get_int("epoch_num"), step > 3 ? 2 : 1);
    EXPECT_EQ(d.get_int("step_num"), step);
    auto m = manifest_of(path);
    EXPECT_EQ(m["global_step"], step);
    EXPECT_EQ(m["trigger"], "steps");
    EXPECT_EQ(m["prefix"], "CKP");
    EXPECT_EQ(m["owner"], ckpt->owner());
  }
  // The graph description.
  auto meta = nlohmann::json::parse(read_text(dir.path() / "CKP-graph.meta"));
  EXPECT_EQ(meta["format"], "anvil-graph-meta");
  EXPECT_EQ(meta["network"], s.net->type_name());
  EXPECT_EQ(meta["parameters"].size(), s.net->parameters_and_names().size());
  EXPECT_EQ(meta["parameters"][0]["name"], s.net->parameters_and_names()[0].first);
}

TEST(ModelCheckpoint, MindSporeScheduleWithEndSave) {
  // 2 epochs x 3 steps, steps=4: save at global 4 (CKP-2_1), end save at 6 (CKP-2_3).
  testutil::TempDir dir;
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  auto ckpt = std::make_shared<ModelCheckpoint>("CKP", dir.path().string(),
                                                CheckpointConfig{.save_checkpoint_steps = 4}, fast());
  s.model->train(2, *loader, {ckpt});
  EXPECT_EQ(ckpts(dir.path()), (V{"CKP-2_1.ckpt", "CKP-2_3.ckpt"}));
  EXPECT_EQ(manifest_of(dir.path() / "CKP-2_3.ckpt")["trigger"], "end");
}

TEST(ModelCheckpoint, KeepMax2LeavesTheLast2PlusMetaAndLatest) {
  testutil::TempDir dir;
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::map<std::int64_t, Snapshot> states;
  auto ckpt = std::make_shared<ModelCheckpoint>("CKP", dir.path().string(),
                                                CheckpointConfig{.save_checkpoint_steps = 1, .keep_checkpoint_max = 2},
                                                fast());
  std::vector<V> after_each;
  auto lister = std::make_shared<LambdaCallback>(
      LambdaCallback::Hooks{.on_train_step_end = [&](RunContext&) { after_each.push_back(ckpts(dir.path())); }});
  s.model->train(2, *loader, {ckpt, lister, state_recorder(&states, s)});
  EXPECT_EQ(listing(dir.path()), (V{"CKP-2_2.ckpt", "CKP-2_2.ckpt.manifest.json", "CKP-2_3.ckpt",
                                    "CKP-2_3.ckpt.manifest.json", "CKP-graph.meta", "CKP.latest"}));
  EXPECT_EQ(after_each, (std::vector<V>{{"CKP-1_1.ckpt"},
                                        {"CKP-1_1.ckpt", "CKP-1_2.ckpt"},
                                        {"CKP-1_2.ckpt", "CKP-1_3.ckpt"},
                                        {"CKP-1_3.ckpt", "CKP-2_1.ckpt"},
                                        {"CKP-2_1.ckpt", "CKP-2_2.ckpt"},
                                        {"CKP-2_2.ckpt", "CKP-2_3.ckpt"}}));
  expect_loads_exactly(dir.file("CKP-2_2.ckpt"), states.at(5));
  expect_loads_exactly(dir.file("CKP-2_3.ckpt"), states.at(6));
}

TEST(ModelCheckpoint, NoPeriodicTriggerSavesNothing) {
  testutil::TempDir dir;
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  auto ckpt = std::make_shared<ModelCheckpoint>("CKP", dir.path().string(),
                                                CheckpointConfig{.save_checkpoint_steps = 0}, fast());
  s.model->train(2, *loader, {ckpt});
  EXPECT_TRUE(listing(dir.path()).empty());
}

TEST(ModelCheckpoint, SecondsTriggerWithAFakeClock) {
  testutil::TempDir dir;
  auto clock = std::make_shared<ManualClock>();
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  // Each step takes 3 s of fake time (advanced before ModelCheckpoint sees the step end).
  auto tick = std::make_shared<LambdaCallback>(
      LambdaCallback::Hooks{.on_train_step_end = [&](RunContext&) { clock->advance_seconds(3); }});
  auto ckpt = std::make_shared<ModelCheckpoint>(
      "CKP", dir.path().string(), CheckpointConfig{.save_checkpoint_steps = 0, .save_checkpoint_seconds = 10}, fast(clock));
  const std::int64_t t0 = clock->now_ns();
  s.model->train(2, *loader, {tick, ckpt});
  // t = 3, 6, 9, 12 (> 10 since train begin: save at step 4 = CKP-2_1), 15, 18; end save at step 6.
  EXPECT_EQ(ckpts(dir.path()), (V{"CKP-2_1.ckpt", "CKP-2_3.ckpt"}));
  auto m = manifest_of(dir.path() / "CKP-2_1.ckpt");
  EXPECT_EQ(m["trigger"], "seconds");
  EXPECT_EQ(m["wall_time_ns"], t0 + 12LL * 1000000000LL);
  EXPECT_EQ(m["run_start_time_ns"], t0);
  EXPECT_EQ(manifest_of(dir.path() / "CKP-2_3.ckpt")["trigger"], "end");
}

TEST(ModelCheckpoint, StepsAndSecondsAreOredNeverTwiceAtOneStep) {
  testutil::TempDir dir;
  auto clock = std::make_shared<ManualClock>();
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  auto tick = std::make_shared<LambdaCallback>(
      LambdaCallback::Hooks{.on_train_step_end = [&](RunContext&) { clock->advance_seconds(4); }});
  auto ckpt = std::make_shared<ModelCheckpoint>(
      "CKP", dir.path().string(),
      CheckpointConfig{.save_checkpoint_steps = 4, .save_checkpoint_seconds = 10, .keep_checkpoint_max = 10},
      fast(clock));
  s.model->train(3, *loader, {tick, ckpt});
  // Step k ends at t = 4k s. Seconds count from the last committed save of any trigger:
  // step 3 (t=12 > 10: seconds), step 4 (steps: 4 - 0), step 7 (t=28, 12 s after 16: seconds),
  // step 8 (steps: 8 - 4), step 9 (end save; 4 s after step 8, no periodic trigger).
  EXPECT_EQ(ckpts(dir.path()), (V{"CKP-1_3.ckpt", "CKP-2_1.ckpt", "CKP-3_1.ckpt", "CKP-3_2.ckpt", "CKP-3_3.ckpt"}));
  EXPECT_EQ(manifest_of(dir.path() / "CKP-1_3.ckpt")["trigger"], "seconds");
  EXPECT_EQ(manifest_of(dir.path() / "CKP-2_1.ckpt")["trigger"], "steps");
  EXPECT_EQ(manifest_of(dir.path() / "CKP-3_1.ckpt")["trigger"], "seconds");
  EXPECT_EQ(manifest_of(dir.path() / "CKP-3_2.ckpt")["trigger"], "steps");
  EXPECT_EQ(manifest_of(dir.path() / "CKP-3_3.ckpt")["trigger"], "end");
}

TEST(ModelCheckpoint, KeepPerNMinutesOnTheRecordedGrid) {
  testutil::TempDir dir;
  auto clock = std::make_shared<ManualClock>();
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  // One step per minute; the first step ends at minute 1.
  auto tick = std::make_shared<LambdaCallback>(
      LambdaCallback::Hooks{.on_train_step_end = [&](RunContext&) { clock->advance_seconds(60); }});
  auto ckpt = std::make_shared<ModelCheckpoint>(
      "CKP", dir.path().string(),
      CheckpointConfig{.save_checkpoint_steps = 1, .keep_checkpoint_max = 0, .keep_checkpoint_per_n_minutes = 2},
      fast(clock));
  s.model->train(3, *loader, {tick, ckpt});
  // Minutes 1..9 -> cells [0,2): m1, [2,4): m2, [4,6): m4, [6,8): m6, [8,10): m8; plus the latest m9.
  EXPECT_EQ(ckpts(dir.path()),
            (V{"CKP-1_1.ckpt", "CKP-1_2.ckpt", "CKP-2_1.ckpt", "CKP-2_3.ckpt", "CKP-3_2.ckpt", "CKP-3_3.ckpt"}));
}

// ---- prefixes ----

TEST(ModelCheckpoint, InvalidPrefix) {
  testutil::TempDir dir;
  try {
    ModelCheckpoint bad("a/b", dir.path().string(), {}, fast());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "For 'ModelCheckpoint', the argument 'prefix' for checkpoint file name is invalid, it must be string "
              "and does not contain '/', but got 'a/b'.");
  }
  EXPECT_THROW(ModelCheckpoint("", dir.path().string(), {}, fast()), Error);
  EXPECT_THROW(ModelCheckpoint("CKP", dir.path().string(), CheckpointConfig{.save_checkpoint_steps = -1}, fast()), Error);
  // An existing non-directory.
  std::ofstream(dir.file("plain")) << "x";
  EXPECT_THROW(ModelCheckpoint("CKP", dir.file("plain"), {}, fast()), Error);
}

TEST(ModelCheckpoint, DirectoryIsCreatedWithMode0700) {
  testutil::TempDir dir;
  const std::string sub = dir.file("a/b");
  ModelCheckpoint ckpt("CKP", sub, {}, fast());
  ASSERT_TRUE(fs::is_directory(sub));
  EXPECT_EQ(fs::status(sub).permissions() & fs::perms::all, fs::perms::owner_all);
}

TEST(ModelCheckpoint, DecollisionFollowsMindSpore) {
  testutil::TempDir dir;
  const std::string d = dir.path().string();
  for (const char* n : {"CKP2-1_1.ckpt", "CKPX-1_1.ckpt", "CKP_a-1_1.ckpt", "CKP.ckpt", "CKP-1_1_breakpoint.ckpt",
                        "CKP-graph.meta", "CKP.latest", "OTHER-1_1.ckpt"})
    std::ofstream(dir.file(n)) << "x";
  EXPECT_EQ(ModelCheckpoint::decollide_prefix(d, "CKP", false), "CKP");
  EXPECT_EQ(ModelCheckpoint::decollide_prefix(d, "CKP", true), "CKP_1");
  std::ofstream(dir.file("CKP-1_1.ckpt")) << "x";
  EXPECT_EQ(ModelCheckpoint::decollide_prefix(d, "CKP", false), "CKP_1");
  std::ofstream(dir.file("CKP_1-1_1.ckpt")) << "x";
  EXPECT_EQ(ModelCheckpoint::decollide_prefix(d, "CKP", false), "CKP_2");
  std::ofstream(dir.file("CKP_7-2_3.safetensors")) << "x";
  EXPECT_EQ(ModelCheckpoint::decollide_prefix(d, "CKP", false), "CKP_8");
}

TEST(ModelCheckpoint, SecondRunTakesPrefix1AndNeverTouchesTheFirst) {
  testutil::TempDir dir;
  const CheckpointConfig cfg{.save_checkpoint_steps = 1, .keep_checkpoint_max = 1};
  {
    auto s = testutil::make_mlp_model(4, 8, 3, 1);
    auto loader = small_loader();
    auto ckpt = std::make_shared<ModelCheckpoint>("CKP", dir.path().string(), cfg, fast());
    s.model->train(1, *loader, {ckpt});
  }
  const V first = listing(dir.path());
  EXPECT_EQ(first, (V{"CKP-1_3.ckpt", "CKP-1_3.ckpt.manifest.json", "CKP-graph.meta", "CKP.latest"}));
  std::map<std::string, std::string> before;
  for (const auto& n : first) before[n] = read_text(dir.path() / n);
  for (int run = 1; run <= 2; ++run) {
    auto s = testutil::make_mlp_model(4, 8, 3, 1);
    auto loader = small_loader();
    auto ckpt = std::make_shared<ModelCheckpoint>("CKP", dir.path().string(), cfg, fast());
    EXPECT_EQ(ckpt->prefix(), "CKP_" + std::to_string(run));
    s.model->train(1, *loader, {ckpt});
  }
  EXPECT_EQ(listing(dir.path()),
            sorted({"CKP-1_3.ckpt", "CKP-1_3.ckpt.manifest.json", "CKP-graph.meta", "CKP.latest", "CKP_1-1_3.ckpt",
                    "CKP_1-1_3.ckpt.manifest.json", "CKP_1-graph.meta", "CKP_1.latest", "CKP_2-1_3.ckpt",
                    "CKP_2-1_3.ckpt.manifest.json", "CKP_2-graph.meta", "CKP_2.latest"}));
  for (const auto& [n, text] : before) EXPECT_EQ(read_text(dir.path() / n), text) << n;
}

TEST(ModelCheckpoint, TwoLiveInstancesGetDifferentPrefixes) {
  testutil::TempDir dir;
  ModelCheckpoint a("CKP", dir.path().string(), {}, fast());
  ModelCheckpoint b("CKP", dir.path().string(), {}, fast());
  EXPECT_EQ(a.prefix(), "CKP");
  EXPECT_EQ(b.prefix(), "CKP_1");
}

// ---- failures ----

TEST(ModelCheckpoint, ExceptionWritesABreakpointFileThenPropagates) {
  testutil::TempDir dir;
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::map<std::int64_t, Snapshot> states;
  auto ckpt = std::make_shared<ModelCheckpoint>(
      "CKP", dir.path().string(), CheckpointConfig{.save_checkpoint_steps = 2, .exception_save = true}, fast());
  std::vector<std::string> order;
  auto boom = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
      .on_train_end = [&](RunContext&) { order.push_back("train_end:" + V(ckpts(dir.path())).back()); },
      .on_train_step_end =
          [&](RunContext& c) {
            if (c.original_args().cur_step_num == 5) throw Error("boom at step 5");
          }});
  try {
    s.model->train(2, *loader, {state_recorder(&states, s), ckpt, boom});
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "boom at step 5");
  }
  // Steps 2 and 4 were saved normally; step 5 failed: breakpoint, and no end save.
  EXPECT_EQ(ckpts(dir.path()), (V{"CKP-1_2.ckpt", "CKP-2_1.ckpt", "CKP-2_2_breakpoint.ckpt"}));
  EXPECT_EQ(order, (V{"train_end:CKP-2_2_breakpoint.ckpt"}));
  EXPECT_EQ(read_text(dir.path() / "CKP.latest"), "CKP-2_1.ckpt\n");
  auto m = manifest_of(dir.path() / "CKP-2_2_breakpoint.ckpt");
  EXPECT_EQ(m["trigger"], "exception");
  EXPECT_EQ(m["exact_resume"], false);
  expect_loads_exactly(dir.file("CKP-2_2_breakpoint.ckpt"), states.at(5));
}

TEST(ModelCheckpoint, BreakpointFilesAreNeverDeletedNorCountedForPrefixes) {
  testutil::TempDir dir;
  std::ofstream(dir.file("CKP-9_9_breakpoint.ckpt")) << "old";
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  auto ckpt = std::make_shared<ModelCheckpoint>(
      "CKP", dir.path().string(), CheckpointConfig{.save_checkpoint_steps = 1, .keep_checkpoint_max = 1}, fast());
  EXPECT_EQ(ckpt->prefix(), "CKP");
  s.model->train(1, *loader, {ckpt});
  EXPECT_EQ(ckpts(dir.path()), (V{"CKP-1_3.ckpt", "CKP-9_9_breakpoint.ckpt"}));
  EXPECT_EQ(read_text(dir.path() / "CKP-9_9_breakpoint.ckpt"), "old");
}

TEST(ModelCheckpoint, FailingSaveRaisesOnTheTrainingThreadAndKeepsEarlierCheckpoints) {
  for (const char* stage : {"data_written", "manifest_written", "manifest_renamed"}) {
    SCOPED_TRACE(stage);
    testutil::TempDir dir;
    auto s = testutil::make_mlp_model(4, 8, 3, 1);
    auto loader = small_loader();
    std::map<std::int64_t, Snapshot> states;
    ModelCheckpointOptions opts = fast();
    opts.fault_hook = [stage](std::string_view st, const std::string& file) {
      if (st == stage && file == "CKP-1_3.ckpt") throw FileError("write", file, ENOSPC);
    };
    auto ckpt = std::make_shared<ModelCheckpoint>(
        "CKP", dir.path().string(), CheckpointConfig{.save_checkpoint_steps = 1, .keep_checkpoint_max = 2}, opts);
    const auto caller = std::this_thread::get_id();
    std::thread::id thrown_on;
    auto watch = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
        .on_exception = [&](RunContext&, const std::exception&) { thrown_on = std::this_thread::get_id(); }});
    EXPECT_THROW(s.model->train(2, *loader, {state_recorder(&states, s), ckpt, watch}), FileError);
    EXPECT_EQ(thrown_on, caller);
    EXPECT_EQ(listing(dir.path()), (V{"CKP-1_1.ckpt", "CKP-1_1.ckpt.manifest.json", "CKP-1_2.ckpt",
                                      "CKP-1_2.ckpt.manifest.json", "CKP-graph.meta", "CKP.latest"}));
    EXPECT_EQ(read_text(dir.path() / "CKP.latest"), "CKP-1_2.ckpt\n");
    expect_loads_exactly(dir.file("CKP-1_1.ckpt"), states.at(1));
    expect_loads_exactly(dir.file("CKP-1_2.ckpt"), states.at(2));
  }
}

TEST(ModelCheckpoint, RefusesToOverwriteAFileItDoesNotOwn) {
  testutil::TempDir dir;
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  auto ckpt = std::make_shared<ModelCheckpoint>("CKP", dir.path().string(),
                                                CheckpointConfig{.save_checkpoint_steps = 2}, fast());
  // Appears after construction (so de-collision did not see it).
  std::ofstream(dir.file("CKP-1_2.ckpt")) << "foreign";
  try {
    s.model->train(1, *loader, {ckpt});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("refusing to overwrite"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_text(dir.path() / "CKP-1_2.ckpt"), "foreign");
}

// ---- async ----

TEST(ModelCheckpoint, AsyncSaveGivesTheSameFilesAsSyncWhileTrainingContinues) {
  testutil::TempDir sync_dir, async_dir;
  const CheckpointConfig base{.save_checkpoint_steps = 2, .keep_checkpoint_max = 2,
                              .append_info = {std::string("step_num")}};
  {
    auto s = testutil::make_mlp_model(4, 8, 3, 1);
    auto loader = small_loader();
    s.model->train(2, *loader, {std::make_shared<ModelCheckpoint>("CKP", sync_dir.path().string(), base, fast())});
  }
  std::atomic<int> steps_during_write{0};
  std::atomic<bool> writing{false};
  {
    auto s = testutil::make_mlp_model(4, 8, 3, 1);
    auto loader = small_loader();
    CheckpointConfig cfg = base;
    cfg.async_save = AsyncSave::kThread;
    ModelCheckpointOptions opts = fast();
    opts.fault_hook = [&](std::string_view st, const std::string&) {
      if (st == "data_written") std::this_thread::sleep_for(std::chrono::milliseconds(60));
      if (st == "retention_done") writing = false;
    };
    // Marks a save as handed to the writer (after ModelCheckpoint's step end at a due step).
    auto count = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
        .on_train_step_begin = [&](RunContext&) { if (writing) ++steps_during_write; },
        .on_train_step_end = [&](RunContext& c) { if (c.original_args().cur_step_num % 2 == 0) writing = true; }});
    s.model->train(2, *loader,
                   {std::make_shared<ModelCheckpoint>("CKP", async_dir.path().string(), cfg, opts), count});
  }
  EXPECT_GT(steps_during_write.load(), 0);
  const V names = ckpts(sync_dir.path());
  EXPECT_EQ(names, (V{"CKP-2_1.ckpt", "CKP-2_3.ckpt"}));
  EXPECT_EQ(ckpts(async_dir.path()), names);
  for (const auto& n : names) EXPECT_EQ(read_text(sync_dir.path() / n), read_text(async_dir.path() / n)) << n;
}

TEST(ModelCheckpoint, AsyncWriterErrorSurfacesOnTheTrainingThread) {
  testutil::TempDir dir;
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  ModelCheckpointOptions opts = fast();
  opts.fault_hook = [](std::string_view st, const std::string& file) {
    if (st == "data_written" && file == "CKP-1_2.ckpt") throw FileError("write", file, ENOSPC);
  };
  auto ckpt = std::make_shared<ModelCheckpoint>(
      "CKP", dir.path().string(),
      CheckpointConfig{.save_checkpoint_steps = 1, .async_save = AsyncSave::kThread}, opts);
  std::int64_t failed_at = -1;
  auto watch = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
      .on_exception = [&](RunContext& c, const std::exception&) { failed_at = c.original_args().cur_step_num; }});
  EXPECT_THROW(s.model->train(2, *loader, {ckpt, watch}), FileError);
  // Surfaced at a later hook (the next step end at the earliest), never silently lost.
  EXPECT_GE(failed_at, 3);
  const V left = ckpts(dir.path());
  ASSERT_FALSE(left.empty());
  EXPECT_EQ(left.front(), "CKP-1_1.ckpt");
  EXPECT_EQ(std::count(left.begin(), left.end(), "CKP-1_2.ckpt"), 0);
  for (const auto& n : left) EXPECT_NO_THROW(load_checkpoint(dir.file(n), {.require_integrity = true})) << n;
}

// ---- resume ----

TEST(ModelCheckpoint, ResumeAdoptsTheEarlierRunAndContinuesRetention) {
  testutil::TempDir dir;
  auto clock = std::make_shared<ManualClock>();
  const CheckpointConfig cfg{.save_checkpoint_steps = 1, .keep_checkpoint_max = 2};
  std::string owner;
  {
    auto s = testutil::make_mlp_model(4, 8, 3, 1);
    auto loader = small_loader();
    auto a = std::make_shared<ModelCheckpoint>("CKP", dir.path().string(), cfg, fast(clock));
    owner = a->owner();
    s.model->train(1, *loader, {a});
  }
  EXPECT_EQ(ckpts(dir.path()), (V{"CKP-1_2.ckpt", "CKP-1_3.ckpt"}));
  CheckpointConfig resume_cfg = cfg;
  resume_cfg.resume = true;
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  auto b = std::make_shared<ModelCheckpoint>("CKP", dir.path().string(), resume_cfg, fast(clock));
  EXPECT_EQ(b->prefix(), "CKP");
  EXPECT_EQ(b->owner(), owner);
  s.model->train(2, *loader, {b}, /*initial_epoch=*/1);
  // As an uninterrupted run: the newest two, and run A's files were pruned by run B.
  EXPECT_EQ(listing(dir.path()), (V{"CKP-2_2.ckpt", "CKP-2_2.ckpt.manifest.json", "CKP-2_3.ckpt",
                                    "CKP-2_3.ckpt.manifest.json", "CKP-graph.meta", "CKP.latest"}));
  auto m = manifest_of(dir.path() / "CKP-2_3.ckpt");
  EXPECT_EQ(m["global_step"], 6);
  EXPECT_EQ(m["owner"], owner);
}

// ---- content options ----

TEST(ModelCheckpoint, SavedNetworkAndAppendDict) {
  testutil::TempDir dir;
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto other = testutil::make_mlp_model(4, 5, 3, 7);
  auto loader = small_loader();
  auto ckpt = std::make_shared<ModelCheckpoint>(
      "CKP", dir.path().string(),
      CheckpointConfig{.save_checkpoint_steps = 3,
                       .saved_network = other.net,
                       .append_info = {AppendInfo{{"lr", 0.5}, {"note", std::string("hi")}}, std::string("epoch_num")}},
      fast());
  s.model->train(1, *loader, {ckpt});
  ParamDict d = load_checkpoint(dir.file("CKP-1_3.ckpt"), {.require_integrity = true});
  std::vector<std::string> expected;
  for (const auto& [n, t] : other.net->state_dict()) expected.push_back(n);
  expected.insert(expected.end(), {"epoch_num", "lr", "note"});  // no optimizer state with saved_network
  EXPECT_EQ(d.names(), expected);
  EXPECT_EQ(d.string("note"), "hi");
  {
    auto fresh = testutil::make_mlp_model(4, 5, 3, 99);
    auto [missing, unused] = load_param_into_net(*fresh.net, d, true);
    EXPECT_TRUE(missing.empty());
    EXPECT_EQ(snapshot(*fresh.net, nullptr), snapshot(*other.net, nullptr));
  }
}

TEST(ModelCheckpoint, KeepBestKByLossOnDisk) {
  testutil::TempDir dir;
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::vector<double> losses;
  auto rec = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
      .on_train_step_end = [&](RunContext& c) { losses.push_back(c.original_args().net_outputs.item()); }});
  auto ckpt = std::make_shared<ModelCheckpoint>(
      "CKP", dir.path().string(),
      CheckpointConfig{.save_checkpoint_steps = 1, .keep_checkpoint_max = 1, .keep_best_k = 1, .monitor = "loss"},
      fast());
  s.model->train(3, *loader, {rec, ckpt});
  ASSERT_EQ(losses.size(), 9u);
  const auto best = static_cast<int>(std::min_element(losses.begin(), losses.end()) - losses.begin()) + 1;
  V expected = {"CKP-3_3.ckpt"};
  const std::string best_name = ModelCheckpoint::checkpoint_name("CKP", (best - 1) / 3 + 1, (best - 1) % 3 + 1);
  if (best_name != expected[0]) expected.insert(expected.begin(), best_name);
  EXPECT_EQ(ckpts(dir.path()), sorted(expected));
}

// ---- exact resume from a ModelCheckpoint file (save_resume_state, serialization/Resume.h) ----

TEST(ModelCheckpoint, KilledRunResumesFromItsDirectoryBitExactly) {
  const CheckpointConfig cfg{.save_checkpoint_steps = 1, .keep_checkpoint_max = 3};
  testutil::TempDir a_dir, b_dir;
  Snapshot uninterrupted;
  {
    auto s = testutil::make_mlp_model(4, 8, 3, 1);
    auto loader = small_loader();
    s.model->train(2, *loader, {std::make_shared<ModelCheckpoint>("CKP", a_dir.path().string(), cfg, fast())});
    uninterrupted = snapshot(*s.net, s.opt.get());
  }
  {  // run B, phase 1: stops after step 2 (as if killed right after that checkpoint)
    auto s = testutil::make_mlp_model(4, 8, 3, 1);
    auto loader = small_loader();
    auto stop = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_end = [](RunContext& c) {
      if (c.original_args().cur_step_num == 2) c.request_stop();
    }});
    s.model->train(2, *loader, {std::make_shared<ModelCheckpoint>("CKP", b_dir.path().string(), cfg, fast()), stop});
  }
  EXPECT_EQ(manifest_of(b_dir.path() / "CKP-1_2.ckpt")["exact_resume"], true);
  {  // phase 2: fresh objects, resume through the directory's latest pointer, same policy
    auto s = testutil::make_mlp_model(4, 8, 3, 42);  // other init: everything comes from the file
    auto loader = small_loader();
    CheckpointConfig resume_cfg = cfg;
    resume_cfg.resume = true;
    std::vector<std::shared_ptr<Callback>> cbs = {
        std::make_shared<ModelCheckpoint>("CKP", b_dir.path().string(), resume_cfg, fast())};
    ResumeResult r = resume(*s.model, *loader, b_dir.path().string(), cbs);
    EXPECT_EQ(fs::path(r.path).filename(), "CKP-1_2.ckpt");
    s.model->train(2, *loader, cbs);
    EXPECT_EQ(snapshot(*s.net, s.opt.get()), uninterrupted);
  }
  // Retention ended with the same set as the uninterrupted run, with the same checkpoint contents.
  EXPECT_EQ(listing(b_dir.path()), listing(a_dir.path()));
  for (const auto& n : ckpts(a_dir.path()))
    EXPECT_EQ(read_text(b_dir.path() / n), read_text(a_dir.path() / n)) << n;
}

TEST(ModelCheckpoint, AsyncSkipDropsTriggersWhileASaveIsInFlightButNotTheEndSave) {
  testutil::TempDir dir;
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  ModelCheckpointOptions opts = fast();
  opts.fault_hook = [](std::string_view st, const std::string& file) {
    if (st == "data_written" && file == "CKP-1_1.ckpt") std::this_thread::sleep_for(std::chrono::milliseconds(300));
  };
  auto ckpt = std::make_shared<ModelCheckpoint>(
      "CKP", dir.path().string(),
      CheckpointConfig{.save_checkpoint_steps = 1, .async_save = AsyncSave::kThread, .async_pending = "skip"}, opts);
  s.model->train(2, *loader, {ckpt});
  // Steps 2..5 come while the first save sleeps; the end save (step 6) waits for it.
  EXPECT_EQ(ckpts(dir.path()), (V{"CKP-1_1.ckpt", "CKP-2_3.ckpt"}));
  EXPECT_EQ(read_text(dir.path() / "CKP.latest"), "CKP-2_3.ckpt\n");
}

TEST(ModelCheckpoint, SecondsCadenceSurvivesAResume) {
  // seconds = 10; step k of run 1 ends at t0 + 3k s: save at step 4 (t0+12), killed during step 5.
  testutil::TempDir dir;
  const CheckpointConfig cfg{.save_checkpoint_steps = 0, .save_checkpoint_seconds = 10, .keep_checkpoint_max = 10};
  auto clock = std::make_shared<ManualClock>();
  const std::int64_t t0 = clock->now_ns();
  const auto sec = [](std::int64_t s) { return s * 1000000000LL; };
  auto tick = std::make_shared<LambdaCallback>(
      LambdaCallback::Hooks{.on_train_step_end = [&](RunContext&) { clock->advance_seconds(3); }});
  {
    auto s = testutil::make_mlp_model(4, 8, 3, 1);
    auto loader = small_loader();
    auto kill = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_end = [](RunContext& c) {
      if (c.original_args().cur_step_num == 5) throw Error("killed");
    }});
    EXPECT_THROW(s.model->train(3, *loader, {tick, std::make_shared<ModelCheckpoint>("CKP", dir.path().string(), cfg,
                                                                                     fast(clock)),
                                             kill}),
                 Error);
  }
  EXPECT_EQ(ckpts(dir.path()), (V{"CKP-2_1.ckpt"}));
  // Restart 8 s later (t0+20). The cadence continues from the recorded save at t0+12, not from the
  // restart: the first step (t0+23) is more than 10 s after it and saves.
  clock->set_ns(t0 + sec(20));
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  CheckpointConfig c = cfg;
  c.resume = true;
  std::vector<std::shared_ptr<Callback>> cbs = {tick,
                                                std::make_shared<ModelCheckpoint>("CKP", dir.path().string(), c, fast(clock))};
  resume(*s.model, *loader, dir.path().string(), cbs);
  s.model->train(3, *loader, cbs);
  // Step 5 (t0+23), step 9 (t0+35 > 23+10); step 9 is the last.
  EXPECT_EQ(ckpts(dir.path()), (V{"CKP-2_1.ckpt", "CKP-2_2.ckpt", "CKP-3_3.ckpt"}));
  EXPECT_EQ(manifest_of(dir.path() / "CKP-2_2.ckpt")["wall_time_ns"], t0 + sec(23));
  EXPECT_EQ(manifest_of(dir.path() / "CKP-2_2.ckpt")["trigger"], "seconds");
  EXPECT_EQ(manifest_of(dir.path() / "CKP-2_2.ckpt")["run_start_time_ns"], t0);
  EXPECT_EQ(manifest_of(dir.path() / "CKP-3_3.ckpt")["trigger"], "seconds");
}

TEST(ModelCheckpoint, RetentionNeverTouchesForeignFilesAndIgnoresMtime) {
  testutil::TempDir dir;
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  auto ckpt = std::make_shared<ModelCheckpoint>(
      "CKP", dir.path().string(), CheckpointConfig{.save_checkpoint_steps = 1, .keep_checkpoint_max = 1}, fast());
  // Appear after construction: another owner's checkpoint of this prefix (with its manifest), a
  // checkpoint without manifest, another prefix, an unrelated file.
  std::ofstream(dir.file("CKP-0_9.ckpt")) << "other owner";
  std::ofstream(dir.file("CKP-0_9.ckpt.manifest.json"))
      << R"({"format": "ckpt-manifest", "version": 1, "file": "CKP-0_9.ckpt", "bytes": 11, "crc32": 0,
            "entries": 1, "owner": "someone-else", "prefix": "CKP", "global_step": 1, "wall_time_ns": 0})";
  std::ofstream(dir.file("CKP-0_8.ckpt")) << "no manifest";
  std::ofstream(dir.file("OTHER-1_1.ckpt")) << "other prefix";
  std::ofstream(dir.file("notes.txt")) << "notes";
  // Touching our files (newest mtime on the oldest checkpoint) must not change what is kept.
  auto touch = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_end = [&](RunContext&) {
    for (const auto& n : ckpts(dir.path()))
      fs::last_write_time(dir.path() / n, fs::file_time_type::clock::now() - std::chrono::hours(1));
    if (fs::exists(dir.path() / "CKP-1_1.ckpt"))
      fs::last_write_time(dir.path() / "CKP-1_1.ckpt", fs::file_time_type::clock::now() + std::chrono::hours(1));
  }});
  s.model->train(2, *loader, {ckpt, touch});
  EXPECT_EQ(listing(dir.path()),
            sorted({"CKP-0_8.ckpt", "CKP-0_9.ckpt", "CKP-0_9.ckpt.manifest.json", "CKP-2_3.ckpt",
                    "CKP-2_3.ckpt.manifest.json", "CKP-graph.meta", "CKP.latest", "OTHER-1_1.ckpt", "notes.txt"}));
  EXPECT_EQ(read_text(dir.path() / "CKP-0_9.ckpt"), "other owner");
}

TEST(ModelCheckpoint, ExceptionSaveDrainsTheAsyncWriterFirst) {
  testutil::TempDir dir;
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  ModelCheckpointOptions opts = fast();
  opts.fault_hook = [](std::string_view st, const std::string& file) {
    if (st == "data_written" && file == "CKP-1_2.ckpt") std::this_thread::sleep_for(std::chrono::milliseconds(50));
  };
  auto ckpt = std::make_shared<ModelCheckpoint>(
      "CKP", dir.path().string(),
      CheckpointConfig{.save_checkpoint_steps = 2, .async_save = AsyncSave::kThread, .exception_save = true,
                       .verify_after_write = true},
      opts);
  auto boom = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_end = [](RunContext& c) {
    if (c.original_args().cur_step_num == 3) throw Error("boom");
  }});
  EXPECT_THROW(s.model->train(2, *loader, {ckpt, boom}), Error);
  EXPECT_EQ(ckpts(dir.path()), (V{"CKP-1_2.ckpt", "CKP-1_3_breakpoint.ckpt"}));
  for (const auto& n : ckpts(dir.path())) EXPECT_NO_THROW(load_checkpoint(dir.file(n), {.require_integrity = true}));
}

TEST(ModelCheckpoint, ResumeWithoutRestoringTheModelRebasesTheSchedule) {
  testutil::TempDir dir;
  const CheckpointConfig cfg{.save_checkpoint_steps = 1, .keep_checkpoint_max = 2};
  for (int run = 0; run < 2; ++run) {
    auto s = testutil::make_mlp_model(4, 8, 3, 1);
    auto loader = small_loader();
    CheckpointConfig c = cfg;
    c.resume = run == 1;  // adopts run 0's files, but the Model starts again at step 1
    auto ckpt = std::make_shared<ModelCheckpoint>("CKP", dir.path().string(), c, fast());
    EXPECT_EQ(ckpt->prefix(), "CKP");
    std::vector<std::int64_t> saved;
    auto rec = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
        .on_train_step_end = [&](RunContext& ctx) { saved.push_back(ctx.original_args().last_save_ckpt_step); }});
    s.model->train(1, *loader, {ckpt, rec});
    EXPECT_EQ(saved, (std::vector<std::int64_t>{1, 2, 3}));
  }
  EXPECT_EQ(ckpts(dir.path()), (V{"CKP-1_2.ckpt", "CKP-1_3.ckpt"}));
}

TEST(ModelCheckpoint, ResumeRemovesTemporariesOfARunThatCommittedNothing) {
  testutil::TempDir dir;
  auto touch = [&](const std::string& name) { std::ofstream(dir.path() / name) << "partial"; };
  touch(".CKP-1_1.ckpt.tmp-0123456789abcdef0123456789abcdef-1");                 // killed in its first save
  touch(".CKP_2-1_1.ckpt.manifest.json.tmp-0123456789abcdef0123456789abcdef-2");  // same, de-collided prefix
  touch(".OTHER-1_1.ckpt.tmp-fedcba9876543210fedcba9876543210-1");               // another prefix: not ours
  touch(".CKPX-1_1.ckpt.tmp-fedcba9876543210fedcba9876543210-1");                // a longer prefix: not ours
  {
    // Without resume nothing is touched.
    ModelCheckpoint fresh("CKP", dir.path().string(), CheckpointConfig{}, fast());
    EXPECT_TRUE(fs::exists(dir.path() / ".CKP-1_1.ckpt.tmp-0123456789abcdef0123456789abcdef-1"));
  }
  ModelCheckpoint resumed("CKP", dir.path().string(), CheckpointConfig{.resume = true}, fast());
  V left;
  for (const auto& e : fs::directory_iterator(dir.path())) left.push_back(e.path().filename().string());
  EXPECT_EQ(sorted(left), (V{".CKPX-1_1.ckpt.tmp-fedcba9876543210fedcba9876543210-1",
                             ".OTHER-1_1.ckpt.tmp-fedcba9876543210fedcba9876543210-1"}));
}

// keep_best_k by a value that only exists at epoch end (fit's evaluation): the epoch's last-step
// checkpoint gets the value in its manifest at on_train_epoch_end, and retention keeps the best epoch.
TEST(ModelCheckpoint, KeepBestByAnEpochEndMetric) {
  for (const bool async : {false, true}) {
    SCOPED_TRACE(async);
    testutil::TempDir dir;
    auto s = testutil::make_mlp_model(4, 8, 3, 1);
    auto loader = small_loader();
    const std::vector<double> score = {0.5, 0.9, 0.7, 0.6};  // epoch 2 is the best
    int epoch = 0;
    auto eval = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
        .on_train_epoch_end = [&](RunContext& c) { c.original_args().eval_results["score"] = score.at(epoch++); }});
    CheckpointConfig cfg{.save_checkpoint_steps = 3, .keep_checkpoint_max = 1, .keep_best_k = 1, .monitor = "score",
                         .mode = "max"};
    if (async) cfg.async_save = AsyncSave::kThread;
    auto ckpt = std::make_shared<ModelCheckpoint>("CKP", dir.path().string(), cfg, fast());
    s.model->train(4, *loader, {eval, ckpt});
    EXPECT_EQ(ckpts(dir.path()), (V{"CKP-2_3.ckpt", "CKP-4_3.ckpt"}));
    const auto m = manifest_of(dir.path() / "CKP-2_3.ckpt");
    EXPECT_DOUBLE_EQ(m.at("monitored_value").get<double>(), 0.9);
    EXPECT_EQ(m.at("monitored_at"), "epoch_end");
    EXPECT_FALSE(load_checkpoint(dir.file("CKP-2_3.ckpt"), {.require_integrity = true}).empty());
  }
}
