// BackupAndRestore (spec §2, §9): an interrupted run resumes from its backup with the same EarlyStopping
// stop epoch, History and bit-identical parameters as an uninterrupted run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "callbacks/BackupAndRestore.h"
#include "callbacks/CSVLogger.h"
#include "callbacks/EarlyStopping.h"
#include "callbacks/History.h"
#include "callbacks/LambdaCallback.h"
#include "callbacks/ReduceLROnPlateau.h"
#include "framework/core/Error.h"
#include "tests/train/TrainTestUtil.h"

using namespace anvil;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<DataLoader> loader12() {
  return std::make_unique<DataLoader>(testutil::separable_dataset(12, 4, 3, 1),
                                      DataLoaderOptions{.batch_size = 6, .shuffle = true, .seed = 7, .prefetch = 0});
}

std::shared_ptr<Callback> scripted_metric(std::vector<double> values) {
  return std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_epoch_end = [values](RunContext& c) {
    auto& p = c.original_args();
    const auto i = static_cast<std::size_t>(p.cur_epoch_num - 1);
    if (i < values.size()) p.eval_results["eval_loss"] = values[i];
  }});
}

struct TrainRun {
  testutil::MlpSetup s;
  std::unique_ptr<DataLoader> loader;
  std::shared_ptr<EarlyStopping> es;
  std::shared_ptr<History> history;
  std::shared_ptr<BackupAndRestore> backup;
  int epoch_ends = 0;
  std::vector<std::shared_ptr<Callback>> callbacks(std::shared_ptr<Callback> extra = nullptr) {
    std::vector<std::shared_ptr<Callback>> cbs = {
        scripted_metric({1.0, 0.5, 0.6, 0.55, 0.4}), es, history,
        std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_epoch_end = [this](RunContext&) { ++epoch_ends; }})};
    if (extra) cbs.push_back(extra);
    cbs.push_back(backup);
    return cbs;
  }
};

TrainRun make_run(const fs::path& dir) {
  TrainRun r;
  r.s = testutil::make_mlp_model(4, 8, 3, 3);
  r.loader = loader12();
  r.es = std::make_shared<EarlyStopping>(EarlyStopping::Options{.patience = 2});
  r.history = std::make_shared<History>();
  r.backup = std::make_shared<BackupAndRestore>(dir.string());
  return r;
}

}  // namespace

TEST(BackupAndRestore, ResumeStopsAtTheSameEpochWithIdenticalState) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("anvil_cb_backup_{}", ::getpid());
  fs::remove_all(dir);

  // Uninterrupted reference: best 0.5 at epoch 2, epochs 3 and 4 do not improve -> stops at 4.
  TrainRun ref = make_run(dir / "ref");
  ref.s.model->train(10, *ref.loader, ref.callbacks());
  ASSERT_EQ(ref.es->stopped_epoch(), 4);
  EXPECT_FALSE(fs::exists(ref.backup->backup_path()));  // deleted after a normal end

  // TrainRun A: killed (an exception) in the middle of epoch 3; the backup of epoch 2 stays.
  TrainRun a = make_run(dir / "run");
  auto crash = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_begin = [](RunContext& c) {
    if (c.original_args().cur_epoch_num == 3 && c.original_args().step_in_epoch == 2) throw Error("killed");
  }});
  EXPECT_THROW(a.s.model->train(10, *a.loader, a.callbacks(crash)), Error);
  ASSERT_TRUE(fs::exists(a.backup->backup_path()));

  // TrainRun B: fresh objects (other initial weights); train() resumes the backup by itself
  // (BackupAndRestore::on_before_train), before on_train_begin.
  TrainRun b = make_run(dir / "run");
  b.s = testutil::make_mlp_model(4, 8, 3, 99);
  int begin_wait = -1;
  double begin_best = 0.0;
  std::string resumed_from;
  std::int64_t begin_step = -1;
  auto probe = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_begin = [&](RunContext& c) {
    begin_wait = b.es->wait();
    begin_best = b.es->best();
    begin_step = c.original_args().cur_step_num;
  }, .on_train_end = [&](RunContext& c) { resumed_from = c.original_args().resumed_from; }});
  b.s.model->train(10, *b.loader, b.callbacks(probe));
  EXPECT_EQ(begin_wait, 0);
  EXPECT_DOUBLE_EQ(begin_best, 0.5);
  EXPECT_EQ(begin_step, 4);  // 2 epochs of 2 batches restored
  EXPECT_EQ(resumed_from, b.backup->backup_path());
  EXPECT_EQ(b.es->stopped_epoch(), 4);
  EXPECT_EQ(b.epoch_ends, 2);  // epochs 3 and 4 only
  EXPECT_EQ(b.history->epoch(), ref.history->epoch());
  EXPECT_EQ(b.history->history(), ref.history->history());
  const NamedTensors pr = ref.s.net->state_dict(), pb = b.s.net->state_dict();
  ASSERT_EQ(pr.size(), pb.size());
  for (std::size_t i = 0; i < pr.size(); ++i)
    EXPECT_EQ(pr[i].second.to_vector<float>(), pb[i].second.to_vector<float>()) << pr[i].first;
  EXPECT_FALSE(fs::exists(b.backup->backup_path()));
  fs::remove_all(dir);
}

// A run with CSVLogger(append) and ReduceLROnPlateau, interrupted in epoch 4 and resumed, writes the
// same CSV file (no duplicate rows) and the same learning-rate changes as an uninterrupted run.
TEST(BackupAndRestore, ResumedCsvAndLrMatchAnUninterruptedRun) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("anvil_cb_backup_csv_{}", ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto run = [&](const std::string& name, bool crash, bool resume) {
    auto s = testutil::make_mlp_model(4, 8, 3, 3, 1.0);
    auto loader = loader12();
    std::vector<std::shared_ptr<Callback>> cbs = {
        scripted_metric({1.0, 1.0, 0.5, 0.5, 0.5, 0.5}),
        std::make_shared<ReduceLROnPlateau>(ReduceLROnPlateau::Options{.factor = 0.5, .patience = 1, .min_delta = 0.0}),
        std::make_shared<CSVLogger>((dir / (name + ".csv")).string(), ",", true)};
    if (crash)
      cbs.push_back(std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_begin = [](RunContext& c) {
        if (c.original_args().cur_epoch_num == 4 && c.original_args().step_in_epoch == 2) throw Error("killed");
      }}));
    auto backup = std::make_shared<BackupAndRestore>((dir / (name + "_backup")).string());
    cbs.push_back(backup);
    if (resume) {
      // Explicit restore(): the following train() must not restore a second time. Replacing the file
      // with garbage proves it: a second restore would fail on it.
      EXPECT_TRUE(backup->restore(*s.model, *loader, cbs));
      fs::remove(backup->backup_path());
      std::ofstream(backup->backup_path()) << "not a checkpoint";
    }
    s.model->train(6, *loader, cbs);
    return s.opt->current_learning_rate();
  };
  const double lr_ref = run("ref", false, false);
  EXPECT_THROW(run("run", true, false), Error);
  const double lr_resumed = run("run", false, true);
  EXPECT_DOUBLE_EQ(lr_ref, 0.0625);  // reductions at epochs 2, 4, 5 and 6
  EXPECT_EQ(lr_resumed, lr_ref);
  auto slurp = [](const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  const std::string ref_csv = slurp(dir / "ref.csv"), run_csv = slurp(dir / "run.csv");
  EXPECT_EQ(std::count(ref_csv.begin(), ref_csv.end(), '\n'), 7);
  EXPECT_EQ(run_csv, ref_csv);
  fs::remove_all(dir);
}

// An invalid backup fails train() before any hook, and is kept.
TEST(BackupAndRestore, InvalidBackupFailsTrainAndIsKept) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("anvil_cb_backup_bad_{}", ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  TrainRun r = make_run(dir);
  std::ofstream(r.backup->backup_path()) << "not a checkpoint";
  bool began = false;
  auto probe = std::make_shared<LambdaCallback>(
      LambdaCallback::Hooks{.on_train_begin = [&](RunContext&) { began = true; }});
  EXPECT_ANY_THROW(r.s.model->train(3, *r.loader, r.callbacks(probe)));
  EXPECT_FALSE(began);
  EXPECT_TRUE(fs::exists(r.backup->backup_path()));
  fs::remove_all(dir);
}

TEST(BackupAndRestore, Validation) {
  EXPECT_THROW(BackupAndRestore("", 1), Error);
  EXPECT_THROW(BackupAndRestore("x", 0), Error);
  EXPECT_EQ(BackupAndRestore("d").backup_path(), "d/backup.ckpt");
}
