// LossMonitor, TimeMonitor and LambdaCallback (spec callbacks-and-checkpointing.md §2).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <regex>
#include <sstream>

#include "callbacks/LambdaCallback.h"
#include "callbacks/LossMonitor.h"
#include "callbacks/TimeMonitor.h"
#include "framework/core/Error.h"
#include "framework/ops/Arithmetic.h"
#include "framework/ops/Loss.h"
#include "tests/train/TrainTestUtil.h"

using namespace anvil;

namespace {

// 18 examples in batches of 6: 3 steps per epoch.
std::unique_ptr<DataLoader> small_loader(std::int64_t n = 18, std::int64_t batch = 6) {
  return std::make_unique<DataLoader>(testutil::separable_dataset(n, 4, 3, 1),
                                      DataLoaderOptions{.batch_size = batch, .shuffle = false, .prefetch = 0});
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Cross-entropy, multiplied by `factor` on call `bad_call` (NaN or Inf there).
class PoisonedLoss : public nn::LossCell {
 public:
  using nn::LossCell::forward;
  PoisonedLoss(int bad_call, double factor) : bad_call_(bad_call), factor_(factor) {}
  Tensor forward(const Tensor& logits, const Tensor& labels) override {
    Tensor loss = ops::softmax_cross_entropy(logits, labels);
    return ++calls_ == bad_call_ ? ops::scale(loss, factor_) : loss;
  }
  std::string type_name() const override { return "PoisonedLoss"; }

 private:
  int bad_call_;
  double factor_;
  int calls_ = 0;
};

}  // namespace

TEST(LossMonitor, PrintsEpochStepInEpochAndLossEveryStep) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::ostringstream out;
  std::vector<double> losses;
  auto rec = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
      .on_train_step_end = [&](RunContext& c) { losses.push_back(c.original_args().net_outputs.item()); }});
  s.model->train(2, *loader, {std::make_shared<LossMonitor>(1, out), rec});
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 6u);
  ASSERT_EQ(losses.size(), 6u);
  const std::regex re(R"(epoch: (\d+) step: (\d+), loss is ([0-9.e+-]+))");
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(lines[i], m, re)) << lines[i];
    EXPECT_EQ(std::stoi(m[1]), static_cast<int>(i / 3 + 1)) << lines[i];
    EXPECT_EQ(std::stoi(m[2]), static_cast<int>(i % 3 + 1)) << lines[i];
    EXPECT_EQ(std::stod(m[3]), losses[i]) << lines[i];  // shortest round-trip: parses back exactly
  }
}

TEST(LossMonitor, PerPrintTimesCountsGlobalStepsAndZeroNeverPrints) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::ostringstream every4, never;
  s.model->train(3, *loader, {std::make_shared<LossMonitor>(4, every4), std::make_shared<LossMonitor>(0, never)});
  const auto lines = lines_of(every4.str());
  ASSERT_EQ(lines.size(), 2u);  // global steps 4 and 8
  EXPECT_EQ(lines[0].rfind("epoch: 2 step: 1, loss is ", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1].rfind("epoch: 3 step: 2, loss is ", 0), 0u) << lines[1];
  EXPECT_TRUE(never.str().empty());
  EXPECT_THROW(LossMonitor(-1), Error);
  EXPECT_EQ(LossMonitor().per_print_times(), 1);
}

TEST(LossMonitor, FormatsLikeMindSpore) {
  CallbackParams p;
  RunContext ctx(p);
  std::ostringstream out;
  LossMonitor monitor(1, out);
  monitor.on_train_begin(ctx);
  p.cur_epoch_num = 3;
  p.cur_step_num = 7;
  p.step_in_epoch = 2;
  p.net_outputs = Tensor::scalar(2.0);
  monitor.on_train_step_end(ctx);
  p.cur_step_num = 8;
  p.step_in_epoch = 3;
  p.net_outputs = Tensor::from_vector<float>({0.25f, 0.75f, 2.0f, 1.0f}, Shape{4});  // mean of a tensor
  monitor.on_train_step_end(ctx);
  p.metrics = {{"accuracy", 0.875}, {"loss", 0.5}};
  monitor.on_train_epoch_end(ctx);
  EXPECT_EQ(out.str(),
            "epoch: 3 step: 2, loss is 2.0\n"
            "epoch: 3 step: 3, loss is 1.0\n"
            "Eval result: epoch 3, metrics: {'accuracy': 0.875, 'loss': 0.5}\n");
}

TEST(LossMonitor, NaNOrInfLossThrowsTheSpecMessage) {
  for (double factor : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    auto s = testutil::make_mlp_model(4, 8, 3, 1, 0.05, std::make_shared<PoisonedLoss>(5, factor));
    auto loader = small_loader();
    std::ostringstream out;
    std::vector<std::string> log;
    auto rec = std::make_shared<testutil::RecordingCallback>(&log);
    try {
      s.model->train(2, *loader, {std::make_shared<LossMonitor>(1, out), rec});
      FAIL() << "no exception for factor " << factor;
    } catch (const Error& e) {
      EXPECT_STREQ(e.what(), "epoch: 2 step: 2. Invalid loss, terminating training.");
    }
    EXPECT_EQ(lines_of(out.str()).size(), 4u);  // steps 1-4 printed
    ASSERT_GE(log.size(), 2u);
    EXPECT_EQ(log[log.size() - 2], "exception e2 s2 g5");
    EXPECT_EQ(log.back(), "train_end e2 s2 g5");
  }
}

TEST(LossMonitor, PrintsEvalResultsInFit) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  DataLoader valid(testutil::separable_dataset(8, 4, 3, 2), DataLoaderOptions{.batch_size = 4, .shuffle = false});
  std::ostringstream out;
  s.model->fit(2, *loader, valid, {std::make_shared<LossMonitor>(3, out)});
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 4u);
  const std::regex eval_re(R"(Eval result: epoch (\d), metrics: \{'accuracy': [0-9.e+-]+, 'loss': [0-9.e+-]+\})");
  EXPECT_EQ(lines[0].rfind("epoch: 1 step: 3, loss is ", 0), 0u) << lines[0];
  EXPECT_TRUE(std::regex_match(lines[1], eval_re)) << lines[1];
  EXPECT_EQ(lines[1].rfind("Eval result: epoch 1,", 0), 0u) << lines[1];
  EXPECT_EQ(lines[3].rfind("Eval result: epoch 2,", 0), 0u) << lines[3];
}

TEST(TimeMonitor, PrintsEpochAndPerStepTime) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::ostringstream out;
  s.model->train(2, *loader, {std::make_shared<TimeMonitor>(0, false, out)});
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 2u);
  const std::regex re(R"(Train epoch time: ([0-9]+\.[0-9]{3}) ms, per step time: ([0-9]+\.[0-9]{3}) ms)");
  for (const auto& line : lines) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, re)) << line;
    const double epoch_ms = std::stod(m[1]), step_ms = std::stod(m[2]);
    EXPECT_GT(epoch_ms, 0.0);
    EXPECT_NEAR(step_ms, epoch_ms / 3.0, 0.0011) << line;  // 3 batches per epoch
  }
}

TEST(TimeMonitor, DataTimeAndEvalLinesAndTakesPartInFitEval) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  DataLoader valid(testutil::separable_dataset(8, 4, 3, 2), DataLoaderOptions{.batch_size = 4, .shuffle = false});
  std::ostringstream out;
  auto tm = std::make_shared<TimeMonitor>(0, true, out);
  EXPECT_TRUE(tm->runs_in_fit_eval());
  s.model->fit(1, *loader, valid, {tm});
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(std::regex_match(lines[0], std::regex(R"(Eval epoch time: [0-9]+\.[0-9]{3} ms, per step time: [0-9]+\.[0-9]{3} ms)")))
      << lines[0];
  EXPECT_TRUE(std::regex_match(lines[1], std::regex(R"(Train epoch time: [0-9]+\.[0-9]{3} ms, per step time: )"
                                                    R"([0-9]+\.[0-9]{3} ms \(data time: [0-9]+\.[0-9]{3} ms\))")))
      << lines[1];
}

TEST(TimeMonitor, FallsBackToDataSizeAndRejectsBadArguments) {
  CallbackParams p;
  RunContext ctx(p);
  std::ostringstream out;
  TimeMonitor with_size(4, false, out);
  with_size.on_train_epoch_begin(ctx);
  with_size.on_train_epoch_end(ctx);  // batch_num 0 -> data_size 4
  EXPECT_TRUE(std::regex_match(lines_of(out.str()).at(0),
                               std::regex(R"(Train epoch time: [0-9.]+ ms, per step time: [0-9.]+ ms)")));
  TimeMonitor without(0, false, out);
  without.on_train_epoch_begin(ctx);
  EXPECT_THROW(without.on_train_epoch_end(ctx), Error);
  EXPECT_THROW(TimeMonitor(-1), Error);
}

TEST(LambdaCallback, CallsTheGivenFunctionsOnly) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  DataLoader valid(testutil::separable_dataset(8, 4, 3, 2), DataLoaderOptions{.batch_size = 4, .shuffle = false});
  std::vector<std::string> seen;
  auto note = [&seen](const char* what) { return [&seen, what](RunContext&) { seen.push_back(what); }; };
  auto cb = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
      .on_train_begin = note("train_begin"),
      .on_train_epoch_end = note("train_epoch_end"),
      .on_train_step_end =
          [&seen](RunContext& c) {
            seen.push_back("step " + std::to_string(c.original_args().cur_step_num));
            if (c.original_args().cur_step_num == 2) c.request_stop();
          },
      .on_eval_end = note("eval_end"),
      .runs_in_fit_eval = true,
  });
  EXPECT_TRUE(cb->runs_in_fit_eval());
  s.model->fit(3, *loader, valid, {cb});
  EXPECT_EQ(seen, (std::vector<std::string>{"train_begin", "step 1", "step 2", "eval_end", "train_epoch_end"}));
}

TEST(LambdaCallback, OnExceptionGetsTheError) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::string message;
  auto cb = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
      .on_train_step_begin = [](RunContext&) { throw Error("boom"); },
      .on_exception = [&message](RunContext&, const std::exception& e) { message = e.what(); },
  });
  EXPECT_THROW(s.model->train(1, *loader, {cb}), Error);
  EXPECT_EQ(message, "boom");
}
