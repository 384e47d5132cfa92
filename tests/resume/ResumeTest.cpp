// Exact resume (issue 3, spec callbacks-and-checkpointing.md §9): "train N steps" vs "train k, save,
// destroy everything, resume into fresh objects in a NEW process, train N - k" give identical parameter
// and optimizer bytes and the identical loss sequence — mid-epoch, at an epoch boundary, after an LR
// change; with SGD, Momentum and Adam; shuffled data with prefetch and dropout on.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "framework/core/Random.h"
#include "framework/data/DataLoader.h"
#include "framework/nn/layers/Activations.h"
#include "framework/nn/layers/Dense.h"
#include "framework/nn/layers/Dropout.h"
#include "framework/nn/losses/LossCell.h"
#include "framework/optim/Adam.h"
#include "framework/optim/Momentum.h"
#include "framework/optim/PiecewiseConstantLR.h"
#include "framework/optim/SGD.h"
#include "framework/train/Model.h"
#include "framework/train/TrainState.h"
#include "serialization/Checkpoint.h"
#include "serialization/LoadParam.h"
#include "serialization/Resume.h"
#include "tests/testutil/TempDir.h"
#include "tests/train/TrainTestUtil.h"
#include "tests/testutil/Paths.h"

using namespace anvil;

namespace {

constexpr const char* kCkptEnv = "ANVIL_TEST_RESUME_CKPT";
constexpr const char* kOutEnv = "ANVIL_TEST_RESUME_OUT";
constexpr const char* kCfgEnv = "ANVIL_TEST_RESUME_CFG";

constexpr int kEpochs = 3;  // 100 examples, batch 16 -> 7 batches per epoch (last one short): 21 steps

// What a run is: optimizer kind and whether the learning rate follows a schedule (changes at step 9).
struct Config {
  std::string opt = "adam";  // "sgd", "momentum", "adam"
  bool schedule = false;
  bool fit = false;  // Model::fit with a validation pass every epoch instead of Model::train
};

std::string encode(const Config& c) { return c.opt + (c.schedule ? ":sched" : ":const") + (c.fit ? ":fit" : ""); }
Config decode(const std::string& s) {
  Config c;
  const auto colon = s.find(':');
  c.opt = s.substr(0, colon);
  c.schedule = s.find(":sched") != std::string::npos;
  c.fit = s.find(":fit") != std::string::npos;
  return c;
}

// Records every step's loss.
struct LossRecorder : Callback {
  std::vector<float> losses;
  void on_train_step_end(RunContext& ctx) override {
    losses.push_back(static_cast<float>(ctx.original_args().net_outputs.item()));
  }
};

// A callback with resumable state: counts the steps it saw.
struct StepCounter : Callback {
  std::int64_t steps = 0;
  void on_train_step_end(RunContext&) override { ++steps; }
  std::string state_key() const override { return "step_counter"; }
  std::string state() const override { return std::to_string(steps); }
  void load_state(const std::string& s) override { steps = std::stoll(s); }
};

// Everything of one run, built from scratch exactly the same way every time.
struct TrainRun {
  std::shared_ptr<nn::SequentialCell> net;
  std::shared_ptr<Optimizer> opt;
  std::unique_ptr<Model> model;
  std::unique_ptr<DataLoader> loader;
  std::unique_ptr<DataLoader> valid;
  bool fit = false;
  std::shared_ptr<LossRecorder> rec = std::make_shared<LossRecorder>();
  std::shared_ptr<StepCounter> counter = std::make_shared<StepCounter>();
  std::vector<std::shared_ptr<Callback>> callbacks() const { return {rec, counter}; }
};

TrainRun build(const Config& c, bool with_dropout = true) {
  set_seed(2024);  // the dropout cell seeds itself from default_generator()
  TrainRun r;
  Generator g(7);
  r.net = std::make_shared<nn::SequentialCell>();
  r.net->append(std::make_shared<nn::Dense>(16, 32, nn::DenseOptions{.generator = &g}));
  r.net->append(std::make_shared<nn::ReLU>());
  if (with_dropout) r.net->append(std::make_shared<nn::Dropout>(0.3));
  r.net->append(std::make_shared<nn::Dense>(32, 5, nn::DenseOptions{.generator = &g}));
  LearningRate lr = c.schedule ? LearningRate(std::make_shared<PiecewiseConstantLR>(std::vector<std::int64_t>{9, 1000},
                                                                                    std::vector<double>{0.05, 0.01}))
                               : LearningRate(0.05);
  if (c.opt == "sgd")
    r.opt = std::make_shared<SGD>(r.net->trainable_params(), lr);
  else if (c.opt == "momentum")
    r.opt = std::make_shared<Momentum>(r.net->trainable_params(), lr, 0.9);
  else
    r.opt = std::make_shared<Adam>(r.net->trainable_params(), lr);
  r.model = std::make_unique<Model>(r.net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), r.opt);
  auto data = testutil::separable_dataset(100, 16, 5, 42);
  r.loader = std::make_unique<DataLoader>(data, DataLoaderOptions{.batch_size = 16, .shuffle = true, .seed = 77,
                                                                 .prefetch = 2});
  r.valid = std::make_unique<DataLoader>(testutil::separable_dataset(40, 16, 5, 43),
                                        DataLoaderOptions{.batch_size = 20, .shuffle = false});
  r.fit = c.fit;
  return r;
}

// train() or fit() (with the validation loader) over `epochs` epochs.
void run_loop(TrainRun& r, int epochs, const std::vector<std::shared_ptr<Callback>>& cbs) {
  if (r.fit)
    r.model->fit(epochs, *r.loader, *r.valid, cbs);
  else
    r.model->train(epochs, *r.loader, cbs);
}

// Saves the train state at global step k from on_train_step_end, then stops the loop.
struct SaveAndStop : Callback {
  TrainRun* run;
  std::int64_t k;
  std::string path;
  SaveAndStop(TrainRun* r, std::int64_t k_, std::string p) : run(r), k(k_), path(std::move(p)) {}
  void on_train_step_end(RunContext& ctx) override {
    if (ctx.original_args().cur_step_num != k) return;
    save_train_state(path, ctx, ResumeSaveOptions{.durable = false});  // the loop's Model, loader, callbacks
    ctx.request_stop();
  }
};

// Exact bytes of the parameters, buffers and optimizer state, then the loss sequence, then the counter.
std::string fingerprint(const TrainRun& r) {
  std::string out;
  auto add = [&out](const NamedTensors& ts) {
    for (const auto& [name, t] : ts) {
      out += name + ":";
      out.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
    }
  };
  add(r.net->state_dict());
  add(r.opt->state_dict());
  out += "losses:";
  out.append(reinterpret_cast<const char*>(r.rec->losses.data()), r.rec->losses.size() * sizeof(float));
  out += "counter:" + std::to_string(r.counter->steps);
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The uninterrupted run: all kEpochs epochs.
TrainRun straight(const Config& c) {
  TrainRun r = build(c);
  run_loop(r, kEpochs, r.callbacks());
  return r;
}

// Runs the child (ResumeChild.ResumeAndFinish) in a new process; returns its fingerprint file's content.
std::string resume_in_child(const Config& c, const std::string& ckpt, const testutil::TempDir& dir) {
  const std::string exe = testutil::self_exe();
  const std::string out = dir.file("child.out");
  const std::string log = dir.file("child.log");
  const std::string cmd = "env " + std::string(kCkptEnv) + "='" + ckpt + "' " + kOutEnv + "='" + out + "' " +
                          kCfgEnv + "='" + encode(c) + "' '" + exe +
                          "' --gtest_filter=ResumeChild.ResumeAndFinish >'" + log + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << cmd << "\n" << read_file(log);
  return read_file(out);
}

// train k steps (saving at step k from a callback), destroy everything, resume in a new process.
// The child's fingerprint holds only the losses of steps k+1..N: prepend the first k losses here.
void check_resume_at_step(const Config& c, std::int64_t k) {
  testutil::TempDir dir;
  const std::string ckpt = dir.file("state.ckpt");
  std::vector<float> first;
  {
    TrainRun r = build(c);
    auto saver = std::make_shared<SaveAndStop>(&r, k, ckpt);
    auto cbs = r.callbacks();
    cbs.push_back(saver);
    run_loop(r, kEpochs, cbs);
    first = r.rec->losses;
  }
  ASSERT_EQ(static_cast<std::int64_t>(first.size()), k);
  const std::string child = resume_in_child(c, ckpt, dir);
  ASSERT_FALSE(child.empty());
  TrainRun s = straight(c);
  ASSERT_EQ(s.rec->losses.size(), 21u);
  // The expected child fingerprint: the straight run's final state with the losses after step k.
  std::vector<float> tail(s.rec->losses.begin() + k, s.rec->losses.end());
  EXPECT_EQ(std::vector<float>(s.rec->losses.begin(), s.rec->losses.begin() + k), first);
  std::swap(s.rec->losses, tail);
  EXPECT_TRUE(child == fingerprint(s)) << "resumed run (" << encode(c) << ", k = " << k
                                       << ") differs from the uninterrupted one";
}

}  // namespace

// Helper run in a child process by the tests below; skipped unless the environment asks for it.
TEST(ResumeChild, ResumeAndFinish) {
  const char* ckpt = std::getenv(kCkptEnv);
  const char* out = std::getenv(kOutEnv);
  const char* cfg = std::getenv(kCfgEnv);
  if (!ckpt || !out || !cfg) GTEST_SKIP() << "helper for the ExactResume tests (set " << kCkptEnv << ")";
  TrainRun r = build(decode(cfg));
  const ResumeResult res = resume(*r.model, *r.loader, ckpt, r.callbacks());
  EXPECT_EQ(res.progress.global_step, r.counter->steps);
  run_loop(r, kEpochs, r.callbacks());
  EXPECT_EQ(r.counter->steps, 21);
  std::ofstream f(out, std::ios::binary);
  f << fingerprint(r);
  f.close();
  ASSERT_TRUE(f.good()) << "cannot write " << out;
}

TEST(ExactResume, StraightRunIsDeterministicAndDropoutIsActive) {
  const Config c{"adam", false};
  TrainRun a = straight(c);
  TrainRun b = straight(c);
  EXPECT_TRUE(fingerprint(a) == fingerprint(b));
  ASSERT_EQ(a.rec->losses.size(), 21u);
  EXPECT_LT(a.rec->losses.back(), a.rec->losses.front());  // it learns
  // Dropout matters: without it the same run gives other losses.
  TrainRun nd = build(c, /*with_dropout=*/false);
  nd.model->train(kEpochs, *nd.loader, nd.callbacks());
  EXPECT_NE(nd.rec->losses, a.rec->losses);
}

TEST(ExactResume, SgdMidEpoch) { check_resume_at_step({"sgd", false}, 10); }
TEST(ExactResume, MomentumMidEpoch) { check_resume_at_step({"momentum", false}, 4); }
TEST(ExactResume, AdamMidEpoch) { check_resume_at_step({"adam", false}, 11); }
TEST(ExactResume, AdamMidFirstStep) { check_resume_at_step({"adam", false}, 1); }

// Saved from on_train_step_end of an epoch's last step (epoch-end hooks not yet run).
TEST(ExactResume, SgdAtEpochBoundaryFromStepEnd) { check_resume_at_step({"sgd", false}, 7); }
TEST(ExactResume, MomentumAtEpochBoundaryFromStepEnd) { check_resume_at_step({"momentum", false}, 14); }
TEST(ExactResume, AdamAtEpochBoundaryFromStepEnd) { check_resume_at_step({"adam", false}, 14); }

// The schedule changes the rate at step 9: resume after the change, and before it.
TEST(ExactResume, SgdAfterLrChange) { check_resume_at_step({"sgd", true}, 12); }
TEST(ExactResume, MomentumAfterLrChange) { check_resume_at_step({"momentum", true}, 12); }
TEST(ExactResume, AdamAfterLrChange) { check_resume_at_step({"adam", true}, 16); }
TEST(ExactResume, AdamBeforeLrChange) { check_resume_at_step({"adam", true}, 5); }

// Model::fit: the validation passes (dropout off) do not disturb the resumed stream.
TEST(ExactResume, FitMidEpochAndAtBoundary) {
  check_resume_at_step({"adam", true, true}, 10);
  check_resume_at_step({"momentum", false, true}, 7);
}

// Saved after train() returned at an epoch end (epoch-end hooks ran): the resume starts the next epoch.
TEST(ExactResume, AfterTrainReturnedAtEpochEnd) {
  for (const std::string opt : {"sgd", "momentum", "adam"}) {
    const Config c{opt, true};
    testutil::TempDir dir;
    const std::string ckpt = dir.file("state.ckpt");
    std::vector<float> first;
    {
      TrainRun r = build(c);
      r.model->train(2, *r.loader, r.callbacks());
      EXPECT_TRUE(r.model->progress().epoch_finished);
      EXPECT_EQ(r.model->progress().epoch, 2);
      save_train_state(ckpt, *r.model, *r.loader, r.callbacks(), ResumeSaveOptions{.durable = false});
      first = r.rec->losses;
    }
    ASSERT_EQ(first.size(), 14u);
    const std::string child = resume_in_child(c, ckpt, dir);
    TrainRun s = straight(c);
    std::vector<float> tail(s.rec->losses.begin() + 14, s.rec->losses.end());
    EXPECT_EQ(std::vector<float>(s.rec->losses.begin(), s.rec->losses.begin() + 14), first);
    std::swap(s.rec->losses, tail);
    EXPECT_TRUE(child == fingerprint(s)) << opt;
  }
}

// The same, without a new process: resume in-process into fresh objects (fast check, also of hooks).
TEST(ExactResume, InProcessResumeSkipsEpochBeginOfContinuedEpoch) {
  const Config c{"momentum", false};
  testutil::TempDir dir;
  const std::string ckpt = dir.file("state.ckpt");
  {
    TrainRun r = build(c);
    auto cbs = r.callbacks();
    cbs.push_back(std::make_shared<SaveAndStop>(&r, 10, ckpt));
    r.model->train(kEpochs, *r.loader, cbs);
  }
  TrainRun r = build(c);
  std::vector<std::string> log;
  auto hooks = std::make_shared<testutil::RecordingCallback>(&log);
  auto cbs = r.callbacks();
  const ResumeResult res = resume(*r.model, *r.loader, ckpt, cbs);
  EXPECT_EQ(res.progress.global_step, 10);
  EXPECT_EQ(res.progress.epoch, 2);
  EXPECT_EQ(res.progress.step_in_epoch, 3);
  EXPECT_EQ(res.data, (DataPosition{1, 3, 77}));
  EXPECT_TRUE(r.model->resume_pending());
  cbs.push_back(hooks);
  r.model->train(kEpochs, *r.loader, cbs);
  EXPECT_FALSE(r.model->resume_pending());
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log[0], "train_begin e1 s0 g10");
  EXPECT_EQ(log[1], "train_step_begin e2 s4 g11");  // no train_epoch_begin for the continued epoch 2
  EXPECT_EQ(log.back(), "train_end e3 s7 g21");
  EXPECT_EQ(r.counter->steps, 21);
  EXPECT_EQ(r.rec->losses.size(), 11u);
}

TEST(ResumeFile, IsAValidMindSporeCheckpointWithResumeEntries) {
  testutil::TempDir dir;
  const std::string ckpt = dir.file("state.ckpt");
  TrainRun r = build({"adam", true});
  auto cbs = r.callbacks();
  cbs.push_back(std::make_shared<SaveAndStop>(&r, 9, ckpt));
  r.model->train(kEpochs, *r.loader, cbs);
  const ParamDict d = load_checkpoint(ckpt, LoadOptions{.require_integrity = true});
  // Network, then optimizer state under MindSpore names, then append_info.
  EXPECT_EQ(d.entries().front().name, "0.weight");
  EXPECT_TRUE(d.contains("3.bias"));
  EXPECT_TRUE(d.contains("moment1.0.weight"));
  EXPECT_TRUE(d.contains("global_step"));
  EXPECT_EQ(d.get_int("epoch_num"), 2);
  EXPECT_EQ(d.get_int("step_num"), 9);
  EXPECT_EQ(d.get_int("global_step"), 9);
  EXPECT_EQ(d.tensor("epoch_num").dtype(), DType::kI64);
  EXPECT_TRUE(d.contains("__resume__.trainer"));
  EXPECT_TRUE(d.contains("__resume__.data.train"));
  EXPECT_EQ(d.tensor("__resume__.rng.global").dtype(), DType::kU8);
  EXPECT_EQ(d.tensor("__resume__.rng.cell.2").numel(), 56);
  EXPECT_EQ(d.string("__resume__.callback.step_counter"), "9");
  const TrainState st = train_state_from_entries(d);
  EXPECT_EQ(st.progress, (TrainProgress{9, 2, 2, 0, false}));
  EXPECT_EQ(st.data, (DataPosition{1, 2, 77}));
  ASSERT_EQ(st.rng.size(), 2u);
  EXPECT_EQ(st.rng[1].name, "cell.2");
  EXPECT_EQ(st.rng[1].state, dynamic_cast<nn::Dropout&>(r.net->child("2")).generator().state());
}

TEST(ResumeFile, AppendInfoRoundTripsEveryField) {
  TrainState st;
  st.progress = TrainProgress{123, 5, 4, 2, true};
  st.data = DataPosition{4, 7, 0xFFFFFFFFFFFFFFF0ull};
  Generator g(3);
  g.normal();  // leaves a cached spare
  st.rng = {{"global", g.state()}, {"cell.a.b", Generator(9).state()}};
  st.callbacks = {{"k1", "{\"x\": 1}"}, {"k2", ""}};
  ParamDict d;
  for (const auto& [name, v] : train_state_append_info(st, "tr")) d.set_append(name, v);
  const TrainState back = train_state_from_entries(d, "tr");
  EXPECT_EQ(back.progress, st.progress);
  EXPECT_EQ(back.data, st.data);
  EXPECT_EQ(back.rng, st.rng);
  EXPECT_TRUE(back.rng[0].state.has_spare);
  EXPECT_EQ(back.callbacks, st.callbacks);
  EXPECT_THROW(train_state_from_entries(d, "train"), Error);  // no such loader entry
}

TEST(ResumeErrors, NetworkWithoutDropoutIsRejectedBeforeAnythingChanges) {
  testutil::TempDir dir;
  const std::string ckpt = dir.file("state.ckpt");
  {
    TrainRun r = build({"sgd", false});
    auto cbs = r.callbacks();
    cbs.push_back(std::make_shared<SaveAndStop>(&r, 3, ckpt));
    r.model->train(kEpochs, *r.loader, cbs);
  }
  TrainRun other = build({"sgd", false}, /*with_dropout=*/false);
  const std::string before = fingerprint(other);
  try {
    resume(*other.model, *other.loader, ckpt, other.callbacks());
    ADD_FAILURE() << "resume accepted a network without the saved dropout stream";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("RNG streams"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fingerprint(other) == before);
  EXPECT_FALSE(other.model->resume_pending());
}

TEST(ResumeErrors, PlainCheckpointHasNoResumeState) {
  testutil::TempDir dir;
  TrainRun r = build({"sgd", false});
  save_checkpoint(*r.net, dir.file("plain"), SaveOptions{.optimizer = r.opt.get(), .durable = false});
  try {
    resume(*r.model, *r.loader, dir.file("plain.ckpt"));
    ADD_FAILURE() << "resume accepted a checkpoint without resume state";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no resume state"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(r.model->resume_pending());
}

TEST(ResumeErrors, ResumeFromRejectsInconsistentProgressAndTrainChecksInitialEpoch) {
  TrainRun r = build({"sgd", false});
  EXPECT_THROW(r.model->resume_from(TrainProgress{-1, 0, 0, 0, false}), Error);
  EXPECT_THROW(r.model->resume_from(TrainProgress{2, 1, 3, 0, false}), Error);
  EXPECT_FALSE(r.model->resume_pending());
  r.model->resume_from(TrainProgress{14, 2, 7, 0, true});
  EXPECT_THROW(r.model->train(1, *r.loader), Error);     // epoch 1 is before the resumed position
  EXPECT_THROW(r.model->train(3, *r.loader, {}, 1), Error);  // conflicting initial_epoch
  EXPECT_TRUE(r.model->resume_pending());
}

namespace {
// Saves the train state at each of `steps` (file "s<step>" in `dir`) without stopping.
struct SaveAtSteps : Callback {
  TrainRun* run;
  std::vector<std::int64_t> steps;
  std::string dir;
  SaveAtSteps(TrainRun* r, std::vector<std::int64_t> s, std::string d) : run(r), steps(std::move(s)), dir(std::move(d)) {}
  void on_train_step_end(RunContext& ctx) override {
    const std::int64_t g = ctx.original_args().cur_step_num;
    if (std::find(steps.begin(), steps.end(), g) == steps.end()) return;
    save_train_state(dir + "/s" + std::to_string(g), *run->model, *run->loader, run->callbacks(),
                     ResumeSaveOptions{.durable = false});
  }
};
}  // namespace

TEST(ResumeDirectory, FollowsLatestPointerElseNewestValidCheckpoint) {
  namespace fs = std::filesystem;
  testutil::TempDir dir;
  const std::string d = dir.path().string();
  {
    TrainRun r = build({"sgd", false});
    auto cbs = r.callbacks();
    cbs.push_back(std::make_shared<SaveAtSteps>(&r, std::vector<std::int64_t>{3, 6}, d));
    r.model->train(1, *r.loader, cbs);
  }
  const std::string s3 = d + "/s3.ckpt", s6 = d + "/s6.ckpt";
  fs::last_write_time(s3, fs::file_time_type::clock::now() - std::chrono::seconds(10));
  EXPECT_EQ(resolve_resume_path(s3), s3);               // a file is used as given
  EXPECT_EQ(resolve_resume_path(d), s6);                // no pointer: newest valid file
  { std::ofstream(d + "/run.latest") << "s3.ckpt\n"; }
  EXPECT_EQ(resolve_resume_path(d), s3);                // the pointer wins
  { std::ofstream(d + "/run.latest") << "gone.ckpt\n"; }
  EXPECT_EQ(resolve_resume_path(d), s6);                // dangling pointer: fall back
  {
    // A newer torn copy of s6 is skipped (require_integrity).
    const std::string bytes = read_file(s6);
    std::ofstream(d + "/torn.ckpt", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    fs::last_write_time(d + "/torn.ckpt", fs::file_time_type::clock::now() + std::chrono::seconds(10));
  }
  EXPECT_EQ(resolve_resume_path(d), s6);
  { std::ofstream(d + "/run.latest") << "s3.ckpt\n"; }
  TrainRun r = build({"sgd", false});
  const ResumeResult res = resume(*r.model, *r.loader, d, r.callbacks());
  EXPECT_EQ(res.path, s3);
  EXPECT_EQ(res.progress.global_step, 3);
  EXPECT_EQ(r.counter->steps, 3);
  testutil::TempDir empty;
  EXPECT_THROW(resolve_resume_path(empty.path().string()), Error);
  EXPECT_THROW(resolve_resume_path(d + "/missing.ckpt"), Error);
}

TEST(ResumeErrors, CaptureFromAnEvalHookIsRejected) {
  struct Capture : Callback {
    int threw = 0;
    void on_eval_step_end(RunContext& c) override {
      try {
        capture_train_state(c);
      } catch (const Error&) {
        ++threw;
      }
    }
  };
  TrainRun r = build({"sgd", false});
  auto cap = std::make_shared<Capture>();
  r.model->eval(*r.valid, {cap});
  EXPECT_EQ(cap->threw, 2);  // two validation batches
}

TEST(ResumeFile, LoadsIntoAPlainNetworkLikeAnyMindSporeCheckpoint) {
  testutil::TempDir dir;
  const std::string ckpt = dir.file("state.ckpt");
  TrainRun r = build({"momentum", false});
  auto cbs = r.callbacks();
  cbs.push_back(std::make_shared<SaveAndStop>(&r, 5, ckpt));
  r.model->train(kEpochs, *r.loader, cbs);
  TrainRun fresh = build({"momentum", false});
  auto [param_not_load, ckpt_not_load] = load_param_into_net(*fresh.net, load_checkpoint(ckpt));
  EXPECT_TRUE(param_not_load.empty());
  EXPECT_NE(std::find(ckpt_not_load.begin(), ckpt_not_load.end(), "__resume__.trainer"), ckpt_not_load.end());
  EXPECT_NE(std::find(ckpt_not_load.begin(), ckpt_not_load.end(), "moments.0.weight"), ckpt_not_load.end());
  for (const auto& [name, t] : r.net->state_dict()) {
    const Tensor loaded = [&] {
      for (const auto& [n2, t2] : fresh.net->state_dict())
        if (n2 == name) return t2;
      return Tensor();
    }();
    ASSERT_TRUE(loaded.defined()) << name;
    EXPECT_EQ(std::memcmp(t.data_ptr(), loaded.data_ptr(), t.nbytes()), 0) << name;
  }
}

TEST(ResumeErrors, TornFileIsRejectedBeforeAnythingChanges) {
  testutil::TempDir dir;
  const std::string ckpt = dir.file("state.ckpt");
  {
    TrainRun r = build({"adam", false});
    auto cbs = r.callbacks();
    cbs.push_back(std::make_shared<SaveAndStop>(&r, 4, ckpt));
    r.model->train(kEpochs, *r.loader, cbs);
  }
  const std::string bytes = read_file(ckpt);
  const std::string torn = dir.file("torn.ckpt");
  std::ofstream(torn, std::ios::binary) << bytes.substr(0, bytes.size() - 9);
  TrainRun r = build({"adam", false});
  const std::string before = fingerprint(r);
  EXPECT_THROW(resume(*r.model, *r.loader, torn, r.callbacks()), Error);
  EXPECT_TRUE(fingerprint(r) == before);
  EXPECT_FALSE(r.model->resume_pending());
  EXPECT_EQ(r.loader->position(), (DataPosition{0, 0, 77}));
}
