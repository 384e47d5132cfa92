// Model: the train loop and its callback protocol (spec callbacks-and-checkpointing.md §1), eval,
// predict, fit, and determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "framework/core/Error.h"
#include "framework/ops/Loss.h"
#include "framework/train/CallbackList.h"
#include "framework/train/CallbackParams.h"
#include "tests/testutil/TempDir.h"
#include "tests/train/TrainTestUtil.h"

using namespace anvil;
using testutil::RecordingCallback;

namespace {

// 18 examples in batches of 6: 3 steps per epoch, dataset order.
std::unique_ptr<DataLoader> small_loader(std::uint64_t data_seed = 1, std::int64_t n = 18, std::int64_t batch = 6) {
  return std::make_unique<DataLoader>(testutil::separable_dataset(n, 4, 3, data_seed),
                                      DataLoaderOptions{.batch_size = batch, .shuffle = false, .prefetch = 0});
}

// Throws anvil::Error on its `throw_at`-th call, else softmax cross-entropy.
class ThrowingLoss : public nn::LossCell {
 public:
  using nn::LossCell::forward;
  explicit ThrowingLoss(int throw_at) : throw_at_(throw_at) {}
  Tensor forward(const Tensor& logits, const Tensor& labels) override {
    if (++calls_ == throw_at_) throw Error("ThrowingLoss: exploded on call " + std::to_string(calls_));
    return ops::softmax_cross_entropy(logits, labels);
  }
  std::string type_name() const override { return "ThrowingLoss"; }

 private:
  int throw_at_;
  int calls_ = 0;
};

// Calls request_stop at the end of global step `at`.
class StopAt : public Callback {
 public:
  explicit StopAt(std::int64_t at) : at_(at) {}
  void on_train_step_end(RunContext& ctx) override {
    if (ctx.original_args().cur_step_num == at_) ctx.request_stop();
  }

 private:
  std::int64_t at_;
};

// Throws from hook `which` ("step_end", "on_exception", "train_end") to test failure handling.
class ThrowingCallback : public Callback {
 public:
  explicit ThrowingCallback(std::string which, std::int64_t at_step = 2) : which_(std::move(which)), at_(at_step) {}
  void on_train_step_end(RunContext& ctx) override {
    if (which_ == "step_end" && ctx.original_args().cur_step_num == at_) throw Error("hook failed at step_end");
  }
  void on_exception(RunContext&, const std::exception&) override {
    if (which_ == "on_exception") throw Error("on_exception failed too");
  }
  void on_train_end(RunContext&) override {
    if (which_ == "train_end") throw Error("train_end failed too");
  }

 private:
  std::string which_;
  std::int64_t at_;
};

// Takes part in fit's evaluation pass and stops it after its first step.
struct StopInEval : Callback {
  int eval_steps = 0;
  bool runs_in_fit_eval() const override { return true; }
  void on_eval_step_end(RunContext& ctx) override {
    ++eval_steps;
    ctx.request_stop();
  }
};

}  // namespace

// (a) The exact hook sequence for 2 epochs x 3 steps.
TEST(ModelCallbacks, HookOrderTwoEpochsThreeSteps) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::vector<std::string> log;
  s.model->train(2, *loader, {std::make_shared<RecordingCallback>(&log)});
  const std::vector<std::string> expected{
      "train_begin e0 s0 g0",
      "train_epoch_begin e1 s0 g0",
      "train_step_begin e1 s1 g1",
      "train_step_end e1 s1 g1",
      "train_step_begin e1 s2 g2",
      "train_step_end e1 s2 g2",
      "train_step_begin e1 s3 g3",
      "train_step_end e1 s3 g3",
      "train_epoch_end e1 s3 g3",
      "train_epoch_begin e2 s0 g3",
      "train_step_begin e2 s1 g4",
      "train_step_end e2 s1 g4",
      "train_step_begin e2 s2 g5",
      "train_step_end e2 s2 g5",
      "train_step_begin e2 s3 g6",
      "train_step_end e2 s3 g6",
      "train_epoch_end e2 s3 g6",
      "train_end e2 s3 g6",
  };
  EXPECT_EQ(log, expected);
}

TEST(ModelCallbacks, DispatchFollowsListOrderForEveryHook) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::vector<std::string> log;
  s.model->train(1, *loader,
                 {std::make_shared<RecordingCallback>(&log, "A:"), std::make_shared<RecordingCallback>(&log, "B:")});
  ASSERT_EQ(log.size(), 2u * 10u);
  for (std::size_t i = 0; i < log.size(); i += 2) {
    EXPECT_EQ(log[i].substr(0, 2), "A:") << i;
    EXPECT_EQ(log[i + 1], "B:" + log[i].substr(2)) << i;
  }
}

TEST(ModelCallbacks, CallbackParamsDescribeTheRun) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  struct Check : Callback {
    Model* model = nullptr;
    DataLoader* loader = nullptr;
    int steps = 0;
    void on_train_step_end(RunContext& ctx) override {
      const CallbackParams& p = ctx.original_args();
      ++steps;
      EXPECT_EQ(p.mode, "train");
      EXPECT_EQ(p.network, model->network().get());
      EXPECT_EQ(p.train_network, model->network().get());
      EXPECT_EQ(p.loss_fn, model->loss_fn().get());
      EXPECT_EQ(p.optimizer, model->optimizer().get());
      EXPECT_EQ(p.train_dataset, loader);
      ASSERT_NE(p.list_callback, nullptr);
      EXPECT_EQ(p.list_callback->size(), 1u);
      EXPECT_EQ(p.batch_num, 3);
      EXPECT_EQ(p.epoch_num, 2);
      EXPECT_EQ(p.initial_epoch, 0);
      EXPECT_EQ(p.train_dataset_element.data.shape(), (Shape{6, 4}));
      EXPECT_EQ(p.train_dataset_element.label.shape(), (Shape{6}));
      ASSERT_TRUE(p.net_outputs.defined());
      EXPECT_EQ(p.net_outputs.numel(), 1);
      EXPECT_FALSE(p.net_outputs.requires_grad());
      EXPECT_TRUE(std::isfinite(p.net_outputs.item()));
      EXPECT_FALSE(p.exception);
      EXPECT_TRUE(model->network()->training());
      EXPECT_EQ(p.optimizer->global_step(), p.cur_step_num);
    }
  };
  auto check = std::make_shared<Check>();
  check->model = s.model.get();
  check->loader = loader.get();
  s.model->train(2, *loader, {check});
  EXPECT_EQ(check->steps, 6);
}

TEST(ModelCallbacks, InitialEpochRunsTheRemainingEpochsAndRestartsTheStepCounter) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::vector<std::string> log;
  s.model->train(3, *loader, {std::make_shared<RecordingCallback>(&log)}, 1);
  ASSERT_EQ(log.size(), 2u + 2u * 8u);
  EXPECT_EQ(log.front(), "train_begin e1 s0 g0");
  EXPECT_EQ(log[1], "train_epoch_begin e2 s0 g0");
  EXPECT_EQ(log[2], "train_step_begin e2 s1 g1");
  EXPECT_EQ(log.back(), "train_end e3 s3 g6");
}

// (b) request_stop at global step 4 of 2 x 3: that step ends, then the partial epoch's end and train end.
TEST(ModelCallbacks, RequestStopEndsTheStepThenEpochEndAndTrainEndFire) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::vector<std::string> log;
  s.model->train(2, *loader, {std::make_shared<StopAt>(4), std::make_shared<RecordingCallback>(&log)});
  const std::vector<std::string> expected{
      "train_begin e0 s0 g0",
      "train_epoch_begin e1 s0 g0",
      "train_step_begin e1 s1 g1",
      "train_step_end e1 s1 g1",
      "train_step_begin e1 s2 g2",
      "train_step_end e1 s2 g2",
      "train_step_begin e1 s3 g3",
      "train_step_end e1 s3 g3",
      "train_epoch_end e1 s3 g3",
      "train_epoch_begin e2 s0 g3",
      "train_step_begin e2 s1 g4",
      "train_step_end e2 s1 g4",
      "train_epoch_end e2 s1 g4",
      "train_end e2 s1 g4",
  };
  EXPECT_EQ(log, expected);
  EXPECT_EQ(s.opt->global_step(), 4);
}

TEST(ModelCallbacks, RequestStopAtAnEpochsLastStepSkipsTheLaterEpochs) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::vector<std::string> log;
  s.model->train(5, *loader, {std::make_shared<StopAt>(3), std::make_shared<RecordingCallback>(&log)});
  ASSERT_GE(log.size(), 2u);
  EXPECT_EQ(log[log.size() - 2], "train_epoch_end e1 s3 g3");
  EXPECT_EQ(log.back(), "train_end e1 s3 g3");
  EXPECT_EQ(s.opt->global_step(), 3);
}

// (c) A step that throws: on_exception and on_train_end fire, no epoch end, the exception propagates.
TEST(ModelCallbacks, ThrowingStepRunsOnExceptionAndTrainEndThenRethrows) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1, 0.05, std::make_shared<ThrowingLoss>(2));
  auto loader = small_loader();
  std::vector<std::string> log;
  auto rec = std::make_shared<RecordingCallback>(&log);
  struct SeesException : Callback {
    bool at_end = false;
    void on_train_end(RunContext& ctx) override { at_end = static_cast<bool>(ctx.original_args().exception); }
  };
  auto sees = std::make_shared<SeesException>();
  try {
    s.model->train(2, *loader, {rec, sees});
    FAIL() << "train did not throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "ThrowingLoss: exploded on call 2");
  }
  const std::vector<std::string> expected{
      "train_begin e0 s0 g0",       "train_epoch_begin e1 s0 g0", "train_step_begin e1 s1 g1",
      "train_step_end e1 s1 g1",    "train_step_begin e1 s2 g2",  "exception e1 s2 g2",
      "train_end e1 s2 g2",
  };
  EXPECT_EQ(log, expected);
  EXPECT_EQ(rec->last_exception, "ThrowingLoss: exploded on call 2");
  EXPECT_TRUE(sees->at_end);
  EXPECT_EQ(s.opt->global_step(), 1);  // the failed step changed nothing
}

TEST(ModelCallbacks, LabelOutOfRangePropagatesAfterEndHooks) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  Tensor x = Tensor::zeros(Shape{6, 4});
  Tensor y = Tensor::from_vector<std::int32_t>({0, 1, 2, 7, 0, 1}, Shape{6});  // 7 >= 3 classes
  DataLoader loader(std::make_shared<InMemoryDataset>(x, y), DataLoaderOptions{.batch_size = 6, .prefetch = 0});
  std::vector<std::string> log;
  auto rec = std::make_shared<RecordingCallback>(&log);
  EXPECT_THROW(s.model->train(1, loader, {rec}), Error);
  ASSERT_EQ(log.size(), 5u);
  EXPECT_EQ(log[3], "exception e1 s1 g1");
  EXPECT_EQ(log[4], "train_end e1 s1 g1");
  EXPECT_FALSE(rec->last_exception.empty());
}

TEST(ModelCallbacks, ThrowingHookIsHandledLikeAThrowingStep) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::vector<std::string> log;
  auto rec = std::make_shared<RecordingCallback>(&log);
  try {
    s.model->train(2, *loader, {std::make_shared<ThrowingCallback>("step_end", 2), rec});
    FAIL() << "train did not throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "hook failed at step_end");
  }
  ASSERT_GE(log.size(), 2u);
  EXPECT_EQ(log[log.size() - 2], "exception e1 s2 g2");
  EXPECT_EQ(log.back(), "train_end e1 s2 g2");
}

TEST(ModelCallbacks, ErrorsInOnExceptionAndTrainEndNeverReplaceTheOriginal) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1, 0.05, std::make_shared<ThrowingLoss>(1));
  auto loader = small_loader();
  std::vector<std::string> log;
  auto rec = std::make_shared<RecordingCallback>(&log);
  try {
    s.model->train(1, *loader,
                   {std::make_shared<ThrowingCallback>("on_exception"), std::make_shared<ThrowingCallback>("train_end"),
                    rec});
    FAIL() << "train did not throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "ThrowingLoss: exploded on call 1");
  }
  // The recorder after the failing callbacks still got both hooks.
  ASSERT_GE(log.size(), 2u);
  EXPECT_EQ(log[log.size() - 2], "exception e1 s1 g1");
  EXPECT_EQ(log.back(), "train_end e1 s1 g1");
}

TEST(ModelCallbacks, ThrowingTrainEndStillRunsLaterCallbacksAndPropagates) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::vector<std::string> log;
  auto rec = std::make_shared<RecordingCallback>(&log);
  try {
    s.model->train(1, *loader, {std::make_shared<ThrowingCallback>("train_end"), rec});
    FAIL() << "train did not throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "train_end failed too");
  }
  ASSERT_GE(log.size(), 2u);
  EXPECT_EQ(log[log.size() - 2], "train_end e1 s3 g3");  // once, then on_exception
  EXPECT_EQ(log.back(), "exception e1 s3 g3");
}

TEST(ModelCallbacks, NullCallbackIsRejectedBeforeAnyHook) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::vector<std::string> log;
  EXPECT_THROW(s.model->train(1, *loader, {std::make_shared<RecordingCallback>(&log), nullptr}), Error);
  EXPECT_TRUE(log.empty());
  EXPECT_THROW(CallbackList({nullptr}), Error);
  EXPECT_EQ(s.opt->global_step(), 0);
}

TEST(ModelCallbacks, InvalidArgumentsThrow) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  EXPECT_THROW(s.model->train(0, *loader), Error);
  EXPECT_THROW(s.model->train(2, *loader, {}, 3), Error);
  EXPECT_THROW(s.model->train(2, *loader, {}, -1), Error);
  EXPECT_THROW(s.model->fit(2, *loader, *loader, {}, 0), Error);
  EXPECT_THROW(Model(nullptr), Error);
  EXPECT_THROW(Model(s.net, nullptr, nullptr, {std::make_shared<Loss>()}), Error);  // Loss needs a loss_fn
  EXPECT_THROW(Model(s.net, nullptr, nullptr, {std::make_shared<Accuracy>(), std::make_shared<Accuracy>()}), Error);
  EXPECT_THROW(Model(s.net, nullptr, nullptr, {nullptr}), Error);
  Model eval_only(s.net, nullptr, nullptr, {std::make_shared<Accuracy>()});
  EXPECT_THROW(eval_only.train(1, *loader), Error);
  Batch b = loader->dataset().get_batch(std::vector<std::int64_t>{0, 1});
  EXPECT_THROW(eval_only.train_step(b), Error);
  EXPECT_EQ(s.opt->global_step(), 0);
}

TEST(ModelCallbacks, LegacyAliasesRunFromTrainAndEvalHooks) {
  struct OldStyle : Callback {
    int begins = 0, ends = 0, epoch_begins = 0, epoch_ends = 0, step_begins = 0, step_ends = 0;
    void begin(RunContext&) override { ++begins; }
    void end(RunContext&) override { ++ends; }
    void epoch_begin(RunContext&) override { ++epoch_begins; }
    void epoch_end(RunContext&) override { ++epoch_ends; }
    void step_begin(RunContext&) override { ++step_begins; }
    void step_end(RunContext&) override { ++step_ends; }
  };
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  auto old = std::make_shared<OldStyle>();
  s.model->train(2, *loader, {old});
  EXPECT_EQ(old->begins, 1);
  EXPECT_EQ(old->ends, 1);
  EXPECT_EQ(old->epoch_begins, 2);
  EXPECT_EQ(old->epoch_ends, 2);
  EXPECT_EQ(old->step_begins, 6);
  EXPECT_EQ(old->step_ends, 6);
  testing::internal::CaptureStderr();
  s.model->eval(*loader, {old});  // 3 batches; as in MindSpore the aliases also fire in eval
  const std::string warnings = testing::internal::GetCapturedStderr();
  // One warning per callback object, however many aliases and eval hooks ran.
  std::size_t count = 0;
  for (std::size_t pos = warnings.find("also runs during evaluation"); pos != std::string::npos;
       pos = warnings.find("also runs during evaluation", pos + 1))
    ++count;
  EXPECT_EQ(count, 1u) << warnings;
  EXPECT_EQ(old->begins, 2);
  EXPECT_EQ(old->ends, 2);
  EXPECT_EQ(old->epoch_begins, 3);
  EXPECT_EQ(old->epoch_ends, 3);
  EXPECT_EQ(old->step_begins, 9);
  EXPECT_EQ(old->step_ends, 9);
}

TEST(ModelCallbacks, RunContextUserMap) {
  CallbackParams p;
  RunContext ctx(p);
  EXPECT_EQ(&ctx.original_args(), &p);
  EXPECT_FALSE(ctx.get_stop_requested());
  ctx.request_stop();
  EXPECT_TRUE(ctx.get_stop_requested());
  EXPECT_FALSE(ctx.contains("best"));
  ctx.set("best", 0.25);
  EXPECT_TRUE(ctx.contains("best"));
  EXPECT_EQ(ctx.get_as<double>("best"), 0.25);
  EXPECT_THROW(ctx.get_as<int>("best"), Error);
  EXPECT_THROW(ctx.get("missing"), Error);
  ctx.user_data()["n"] = 3;
  EXPECT_EQ(ctx.get_as<int>("n"), 3);
}

TEST(ModelCallbacks, UserMapIsSharedBetweenCallbacksOfOneRun) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  struct Writer : Callback {
    void on_train_step_end(RunContext& ctx) override { ctx.set("last_step", ctx.original_args().cur_step_num); }
  };
  struct Reader : Callback {
    std::int64_t seen = -1;
    void on_train_end(RunContext& ctx) override { seen = ctx.get_as<std::int64_t>("last_step"); }
  };
  auto reader = std::make_shared<Reader>();
  s.model->train(1, *loader, {std::make_shared<Writer>(), reader});
  EXPECT_EQ(reader->seen, 3);
}

// (d) A 2-layer MLP reaches 100% training accuracy on linearly separable data in a few hundred steps.
TEST(ModelTraining, MlpFitsSeparableDataToFullAccuracy) {
  auto data = testutil::separable_dataset(512, 8, 4, 21);
  DataLoader loader(data, DataLoaderOptions{.batch_size = 32, .shuffle = true, .seed = 5});
  DataLoader eval_loader(data, DataLoaderOptions{.batch_size = 128, .shuffle = false});
  auto s = testutil::make_mlp_model(8, 32, 4, 3, 0.05);
  const double before = s.model->eval(eval_loader).at("accuracy");
  s.model->train(20, loader);  // 16 steps per epoch: 320 steps
  EXPECT_EQ(s.opt->global_step(), 320);
  auto results = s.model->eval(eval_loader);
  EXPECT_LT(before, 0.9);
  EXPECT_EQ(results.at("accuracy"), 1.0) << "loss " << results.at("loss");
  EXPECT_LT(results.at("loss"), 0.1);
}

// (f) eval returns the metric map; the Loss metric gets the loss.
TEST(ModelEval, ReturnsMetricMapWithLossAndAccuracy) {
  auto data = testutil::separable_dataset(50, 4, 3, 8);
  DataLoader loader(data, DataLoaderOptions{.batch_size = 16, .shuffle = false});  // 16,16,16,2
  auto s = testutil::make_mlp_model(4, 8, 3, 2);
  auto results = s.model->eval(loader);
  ASSERT_EQ(results.size(), 2u);
  ASSERT_TRUE(results.count("accuracy"));
  ASSERT_TRUE(results.count("loss"));
  EXPECT_FALSE(s.net->training());
  // Whole-set reference computed directly: the per-sample mean loss and the accuracy.
  Tensor logits = s.model->predict(data->data());
  const double loss = ops::softmax_cross_entropy(logits, data->labels()).item();
  EXPECT_NEAR(results.at("loss"), loss, 1e-5);
  const auto l = logits.to_vector<float>();
  const auto y = data->labels().to_vector<std::int32_t>();
  int correct = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    int best = 0;
    for (int c = 1; c < 3; ++c)
      if (l[i * 3 + c] > l[i * 3 + best]) best = c;
    correct += best == y[i];
  }
  EXPECT_DOUBLE_EQ(results.at("accuracy"), correct / 50.0);
  EXPECT_EQ(s.opt->global_step(), 0);  // eval never steps
}

TEST(ModelEval, HookSequenceAndStop) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::vector<std::string> log;
  s.model->eval(*loader, {std::make_shared<RecordingCallback>(&log)});
  const std::vector<std::string> expected{
      "eval_begin e0 s0 g0",     "eval_epoch_begin e0 s0 g0", "eval_step_begin e0 s1 g1", "eval_step_end e0 s1 g1",
      "eval_step_begin e0 s2 g2", "eval_step_end e0 s2 g2",    "eval_step_begin e0 s3 g3", "eval_step_end e0 s3 g3",
      "eval_epoch_end e0 s3 g3", "eval_end e0 s3 g3",
  };
  EXPECT_EQ(log, expected);

  struct StopFirst : Callback {
    std::map<std::string, double> at_end;
    void on_eval_step_end(RunContext& ctx) override { ctx.request_stop(); }
    void on_eval_end(RunContext& ctx) override {
      at_end = ctx.original_args().metrics;
      EXPECT_EQ(ctx.original_args().mode, "eval");
    }
  };
  auto stop = std::make_shared<StopFirst>();
  log.clear();
  auto results = s.model->eval(*loader, {stop, std::make_shared<RecordingCallback>(&log)});
  EXPECT_EQ(log.size(), 6u);  // begin, epoch_begin, step 1 begin/end, epoch_end, end
  EXPECT_EQ(stop->at_end, results);
}

TEST(ModelEval, ExceptionRunsOnExceptionAndEvalEnd) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  Tensor x = Tensor::zeros(Shape{4, 4});
  Tensor y = Tensor::from_vector<std::int32_t>({0, 1, 9, 0}, Shape{4});
  DataLoader loader(std::make_shared<InMemoryDataset>(x, y), DataLoaderOptions{.batch_size = 2, .shuffle = false});
  std::vector<std::string> log;
  EXPECT_THROW(s.model->eval(loader, {std::make_shared<RecordingCallback>(&log)}), Error);
  ASSERT_EQ(log.size(), 7u);
  EXPECT_EQ(log[5], "exception e0 s2 g2");
  EXPECT_EQ(log[6], "eval_end e0 s2 g2");
}

TEST(ModelPredict, ShapeAndInferenceMode) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  Tensor out = s.model->predict(Tensor::zeros(Shape{5, 4}));
  EXPECT_EQ(out.shape(), (Shape{5, 3}));
  EXPECT_FALSE(out.requires_grad());
  EXPECT_FALSE(s.net->training());
  EXPECT_THROW(s.model->predict(Tensor::zeros(Shape{5, 7})), Error);
}

TEST(ModelTrainStep, ReturnsDetachedLossAndStepsTheOptimizer) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  Batch b = *loader->next();
  Tensor w0 = s.net->parameters_and_names()[0].second.clone();
  Tensor loss = s.model->train_step(b);
  EXPECT_EQ(loss.numel(), 1);
  EXPECT_FALSE(loss.requires_grad());
  EXPECT_EQ(s.opt->global_step(), 1);
  for (const auto& [name, p] : s.net->trainable_params()) EXPECT_FALSE(p.grad().defined()) << name;
  EXPECT_NE(s.net->parameters_and_names()[0].second.to_vector<float>(), w0.to_vector<float>());
}

// fit: an evaluation pass with only the callbacks that opt in, before on_train_epoch_end.
TEST(ModelFit, EvalPassRunsOnlyOptInCallbacksAndFillsEvalResults) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  DataLoader valid(testutil::separable_dataset(8, 4, 3, 2), DataLoaderOptions{.batch_size = 4, .shuffle = false});
  std::vector<std::string> in_log, out_log;
  struct EpochEndCheck : Callback {
    int epoch_ends = 0;
    void on_train_epoch_end(RunContext& ctx) override {
      const CallbackParams& p = ctx.original_args();
      ++epoch_ends;
      EXPECT_EQ(p.mode, "train");
      EXPECT_EQ(p.batch_num, 3);
      EXPECT_EQ(p.cur_step_num, 3 * p.cur_epoch_num);
      EXPECT_EQ(p.list_callback->size(), 3u);
      EXPECT_TRUE(p.net_outputs.defined());
      EXPECT_TRUE(p.network->training());
      ASSERT_EQ(p.metrics.size(), 2u);
      EXPECT_TRUE(p.metrics.count("accuracy"));
      ASSERT_EQ(p.eval_results.size(), 3u);
      EXPECT_TRUE(p.eval_results.count("eval_loss"));
      EXPECT_NEAR(p.eval_results.at("eval_loss"), p.eval_results.at("loss"), 1e-6);
    }
    void on_train_step_begin(RunContext& ctx) override {
      EXPECT_TRUE(ctx.original_args().metrics.empty());  // cleared after the epoch end
      EXPECT_TRUE(ctx.original_args().eval_results.empty());
    }
  };
  auto check = std::make_shared<EpochEndCheck>();
  s.model->fit(2, *loader, valid,
               {std::make_shared<RecordingCallback>(&in_log, "", true), std::make_shared<RecordingCallback>(&out_log),
                check},
               1);
  EXPECT_EQ(check->epoch_ends, 2);
  // The callback that does not opt in sees exactly the train loop.
  EXPECT_EQ(out_log.size(), 18u);
  for (const auto& line : out_log) EXPECT_EQ(line.rfind("eval", 0), std::string::npos) << line;
  // The one that opts in sees the eval pass between the last step and the epoch end.
  const std::vector<std::string> epoch1_tail{
      "train_step_end e1 s3 g3",   "eval_begin e1 s0 g0",     "eval_epoch_begin e1 s0 g0",
      "eval_step_begin e1 s1 g1",  "eval_step_end e1 s1 g1",  "eval_step_begin e1 s2 g2",
      "eval_step_end e1 s2 g2",    "eval_epoch_end e1 s2 g2", "eval_end e1 s2 g2",
      "train_epoch_end e1 s3 g3",  "train_epoch_begin e2 s0 g3",
  };
  ASSERT_EQ(in_log.size(), 18u + 2u * 8u);
  EXPECT_EQ(std::vector<std::string>(in_log.begin() + 7, in_log.begin() + 18), epoch1_tail);
  EXPECT_EQ(in_log.back(), "train_end e2 s3 g6");
}

TEST(ModelFit, ValidFrequencyChoosesTheEpochs) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  DataLoader valid(testutil::separable_dataset(8, 4, 3, 2), DataLoaderOptions{.batch_size = 8, .shuffle = false});
  std::vector<std::string> log;
  s.model->fit(5, *loader, valid, {std::make_shared<RecordingCallback>(&log, "", true)}, 2);
  std::vector<std::string> eval_begins;
  for (const auto& line : log)
    if (line.rfind("eval_begin", 0) == 0) eval_begins.push_back(line);
  EXPECT_EQ(eval_begins, (std::vector<std::string>{"eval_begin e2 s0 g0", "eval_begin e4 s0 g0"}));
}

TEST(ModelFit, StopRequestedDuringTheEvalPassEndsOnlyThePass) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  DataLoader valid(testutil::separable_dataset(8, 4, 3, 2), DataLoaderOptions{.batch_size = 2, .shuffle = false});
  auto stopper = std::make_shared<StopInEval>();
  std::vector<std::string> log;
  s.model->fit(2, *loader, valid, {stopper, std::make_shared<RecordingCallback>(&log, "", true)});
  EXPECT_EQ(stopper->eval_steps, 2);  // one per pass
  EXPECT_EQ(s.opt->global_step(), 6);
  EXPECT_EQ(log.back(), "train_end e2 s3 g6");
}

TEST(ModelFit, ExceptionInTheEvalPassEndsTheEvalThenTheTrainLoop) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  Tensor x = Tensor::zeros(Shape{4, 4});
  Tensor y = Tensor::from_vector<std::int32_t>({0, 1, 9, 0}, Shape{4});  // 9 is not a class
  DataLoader valid(std::make_shared<InMemoryDataset>(x, y), DataLoaderOptions{.batch_size = 2, .shuffle = false});
  std::vector<std::string> log;
  auto rec = std::make_shared<RecordingCallback>(&log, "", true);
  EXPECT_THROW(s.model->fit(2, *loader, valid, {rec}), Error);
  // The eval pass's own end hook, then the train loop's failure handling with the train state restored.
  const std::vector<std::string> tail{"eval_step_begin e1 s2 g2", "eval_end e1 s2 g2", "exception e1 s3 g3",
                                      "train_end e1 s3 g3"};
  ASSERT_GE(log.size(), tail.size());
  EXPECT_EQ(std::vector<std::string>(log.end() - 4, log.end()), tail);
  EXPECT_FALSE(rec->last_exception.empty());
}
