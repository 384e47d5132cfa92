// EarlyStopping, TerminateOnNaN, History, LearningRateScheduler, ReduceLROnPlateau (spec §2).
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "callbacks/EarlyStopping.h"
#include "callbacks/History.h"
#include "callbacks/LambdaCallback.h"
#include "callbacks/LearningRateScheduler.h"
#include "callbacks/ReduceLROnPlateau.h"
#include "callbacks/TerminateOnNaN.h"
#include "framework/core/Error.h"
#include "framework/optim/ConstantLR.h"
#include "framework/ops/Arithmetic.h"
#include "framework/ops/Loss.h"
#include "tests/train/TrainTestUtil.h"

using namespace anvil;

namespace {

std::unique_ptr<DataLoader> small_loader(std::int64_t n = 12, std::int64_t batch = 6) {
  return std::make_unique<DataLoader>(testutil::separable_dataset(n, 4, 3, 1),
                                      DataLoaderOptions{.batch_size = batch, .shuffle = false, .prefetch = 0});
}

// Sets eval_results["eval_loss"] to values[epoch - 1] at every train epoch end (put it first in the list).
std::shared_ptr<Callback> scripted_metric(std::vector<double> values, std::string key = "eval_loss") {
  return std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_epoch_end = [values, key](RunContext& c) {
    auto& p = c.original_args();
    const auto i = static_cast<std::size_t>(p.cur_epoch_num - 1);
    if (i < values.size()) p.eval_results[key] = values[i];
  }});
}

// Counts train epoch ends.
std::shared_ptr<LambdaCallback> epoch_counter(int* n) {
  return std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_epoch_end = [n](RunContext&) { ++*n; }});
}

class NaNLoss : public nn::LossCell {
 public:
  using nn::LossCell::forward;
  explicit NaNLoss(int bad_call) : bad_call_(bad_call) {}
  Tensor forward(const Tensor& logits, const Tensor& labels) override {
    Tensor loss = ops::softmax_cross_entropy(logits, labels);
    return ++calls_ == bad_call_ ? ops::scale(loss, std::nan("")) : loss;
  }
  std::string type_name() const override { return "NaNLoss"; }

 private:
  int bad_call_;
  int calls_ = 0;
};

}  // namespace

TEST(EarlyStopping, StopsAfterPatienceNonImprovingEpochs) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  int epochs = 0;
  auto es = std::make_shared<EarlyStopping>(EarlyStopping::Options{.patience = 2});
  s.model->train(10, *loader, {scripted_metric({1.0, 0.5, 0.6, 0.55, 0.4, 0.3}), es, epoch_counter(&epochs)});
  // best 0.5 at epoch 2; epochs 3, 4 do not improve -> stop at 4.
  EXPECT_EQ(es->stopped_epoch(), 4);
  EXPECT_EQ(epochs, 4);
  EXPECT_DOUBLE_EQ(es->best(), 0.5);
}

TEST(EarlyStopping, PatienceZeroDoesNotStopAfterFirstEpoch) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  int epochs = 0;
  auto es = std::make_shared<EarlyStopping>(EarlyStopping::Options{.patience = 0});
  s.model->train(10, *loader, {scripted_metric({1.0, 0.9, 0.8, 0.8, 0.1}), es, epoch_counter(&epochs)});
  EXPECT_EQ(es->stopped_epoch(), 4);  // first epoch that does not improve
  EXPECT_EQ(epochs, 4);
}

TEST(EarlyStopping, BaselineIsTheStartingBestAndZeroIsAValue) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  int epochs = 0;
  auto es = std::make_shared<EarlyStopping>(
      EarlyStopping::Options{.monitor = "accuracy", .min_delta = 0.25, .patience = 2, .mode = "max", .baseline = 0.0});
  // max mode, baseline 0 (min_delta must not be taken as the baseline): 0.2 does not beat 0 + 0.25.
  s.model->train(10, *loader, {scripted_metric({0.2, 0.3, 0.2, 0.1}, "accuracy"), es, epoch_counter(&epochs)});
  EXPECT_EQ(es->stopped_epoch(), 4);
  EXPECT_EQ(epochs, 4);
  EXPECT_DOUBLE_EQ(es->best(), 0.3);
}

TEST(EarlyStopping, MissingMonitorDoesNothing) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  int epochs = 0;
  auto es = std::make_shared<EarlyStopping>(EarlyStopping::Options{.monitor = "nothing", .patience = 0});
  s.model->train(3, *loader, {es, epoch_counter(&epochs)});
  EXPECT_EQ(epochs, 3);
  EXPECT_EQ(es->stopped_epoch(), 0);
}

TEST(EarlyStopping, RestoreBestWeights) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::vector<double> at_epoch2;
  auto snap = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_epoch_end = [&](RunContext& c) {
    if (c.original_args().cur_epoch_num == 2) at_epoch2 = s.net->state_dict().front().second.to_vector<double>();
  }});
  auto es = std::make_shared<EarlyStopping>(EarlyStopping::Options{.patience = 2, .restore_best_weights = true});
  s.model->train(10, *loader, {scripted_metric({1.0, 0.5, 0.6, 0.7}), snap, es});
  EXPECT_EQ(es->stopped_epoch(), 4);
  ASSERT_FALSE(at_epoch2.empty());
  EXPECT_EQ(s.net->state_dict().front().second.to_vector<double>(), at_epoch2);
}

TEST(EarlyStopping, StateRoundTripAndValidation) {
  EarlyStopping a(EarlyStopping::Options{.patience = 3});
  EXPECT_EQ(a.best(), INFINITY);
  a.load_state("2 0.25 0");
  EXPECT_EQ(a.wait(), 2);
  EXPECT_DOUBLE_EQ(a.best(), 0.25);
  EXPECT_EQ(a.state(), "2 0.25 0");
  EXPECT_THROW(a.load_state("x"), Error);
  EXPECT_THROW(EarlyStopping(EarlyStopping::Options{.patience = -1}), Error);
  EXPECT_THROW(EarlyStopping(EarlyStopping::Options{.mode = "up"}), Error);
  EXPECT_EQ(EarlyStopping(EarlyStopping::Options{.monitor = "accuracy"}).best(), -INFINITY);
}

TEST(TerminateOnNaN, StopsWithoutThrowingAndEndHooksRun) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1, 0.05, std::make_shared<NaNLoss>(3));
  auto loader = small_loader();
  std::ostringstream out;
  auto t = std::make_shared<TerminateOnNaN>(out);
  int steps = 0, ends = 0;
  auto rec = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
      .on_train_end = [&](RunContext&) { ++ends; }, .on_train_step_end = [&](RunContext&) { ++steps; }});
  EXPECT_NO_THROW(s.model->train(5, *loader, {t, rec}));
  EXPECT_TRUE(t->triggered());
  EXPECT_EQ(steps, 3);
  EXPECT_EQ(ends, 1);
  EXPECT_EQ(out.str(), "Batch 3: Invalid loss, terminating training\n");
}

TEST(History, RecordsEpochsLossAndMetricsAndClearsAtTrainBegin) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  auto h = std::make_shared<History>();
  s.model->train(3, *loader, {scripted_metric({0.3, 0.2, 0.1}), h});
  EXPECT_EQ(h->epoch(), (std::vector<std::int64_t>{1, 2, 3}));
  ASSERT_EQ(h->history().at("net_output").size(), 3u);
  EXPECT_EQ(h->history().at("eval_loss"), (std::vector<double>{0.3, 0.2, 0.1}));
  History h2;
  h2.load_state(h->state());
  EXPECT_EQ(h2.epoch(), h->epoch());
  EXPECT_EQ(h2.history(), h->history());
  s.model->train(1, *loader, {h});
  EXPECT_EQ(h->epoch(), (std::vector<std::int64_t>{1}));
  EXPECT_THROW(h2.load_state("bad 1 2"), Error);
}

TEST(LearningRateScheduler, AssignsPerStep) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1, 0.1);
  auto loader = small_loader();
  std::vector<double> lrs;
  auto sched = std::make_shared<LearningRateScheduler>([](double lr, std::int64_t step) { return step % 2 == 0 ? lr * 0.5 : lr; });
  auto rec = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
      .on_train_step_end = [&](RunContext& c) { lrs.push_back(c.original_args().optimizer->current_learning_rate()); }});
  s.model->train(2, *loader, {sched, rec});
  ASSERT_EQ(lrs.size(), 4u);
  EXPECT_DOUBLE_EQ(lrs[0], 0.1);
  EXPECT_DOUBLE_EQ(lrs[1], 0.05);
  EXPECT_DOUBLE_EQ(lrs[2], 0.05);
  EXPECT_DOUBLE_EQ(lrs[3], 0.025);
  EXPECT_THROW(LearningRateScheduler(nullptr), Error);
}

TEST(ReduceLROnPlateau, LrSequenceWithPatienceCooldownAndMinLr) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1, 1.0);
  auto loader = small_loader();
  std::vector<double> lrs;
  auto r = std::make_shared<ReduceLROnPlateau>(
      ReduceLROnPlateau::Options{.factor = 0.5, .patience = 1, .min_delta = 0.0, .cooldown = 2, .min_lr = 0.2});
  auto rec = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_epoch_end = [&](RunContext& c) {
    lrs.push_back(c.original_args().optimizer->current_learning_rate());
  }});
  // e1 improves (best 1); e2 no -> wait 1 >= 1: lr 0.5, cooldown 2; e3 cooldown 2 -> 1, no change;
  // e4 cooldown 1 -> 0, then (outside cooldown, as Keras/MindSpore) wait 1 -> lr 0.25, cooldown 2;
  // e5 cooldown; e6 -> max(0.125, 0.2) = 0.2; e7 cooldown; e8 lr == min_lr -> stays.
  s.model->train(8, *loader, {scripted_metric({1, 1, 1, 1, 1, 1, 1, 1}), r, rec});
  EXPECT_EQ(lrs, (std::vector<double>{1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2}));
  EXPECT_THROW(ReduceLROnPlateau(ReduceLROnPlateau::Options{.factor = 1.0}), Error);
  EXPECT_THROW(ReduceLROnPlateau(ReduceLROnPlateau::Options{.patience = -1}), Error);
}

TEST(ReduceLROnPlateau, ImprovementResetsWait) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1, 1.0);
  auto loader = small_loader();
  auto r = std::make_shared<ReduceLROnPlateau>(ReduceLROnPlateau::Options{.factor = 0.1, .patience = 2, .min_delta = 0.0});
  s.model->train(5, *loader, {scripted_metric({1.0, 1.0, 0.5, 0.6, 0.4}), r});
  EXPECT_DOUBLE_EQ(s.opt->current_learning_rate(), 1.0);
  EXPECT_DOUBLE_EQ(r->best(), 0.4);
  ReduceLROnPlateau r2(ReduceLROnPlateau::Options{});
  r2.load_state(r->state());
  EXPECT_EQ(r2.state(), r->state());
}

TEST(ReduceLROnPlateau, DynamicLearningRateIsAnErrorAtTrainBegin) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  s.opt->set_learning_rate_schedule(std::make_shared<ConstantLR>(0.1));
  auto loader = small_loader();
  int steps = 0;
  auto count = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_end = [&](RunContext&) { ++steps; }});
  EXPECT_THROW(s.model->train(1, *loader, {std::make_shared<ReduceLROnPlateau>(), count}), Error);
  EXPECT_THROW(s.model->train(1, *loader, {std::make_shared<LearningRateScheduler>([](double lr, std::int64_t) { return lr; }), count}),
               Error);
  EXPECT_EQ(steps, 0);
}
