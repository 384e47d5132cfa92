// Model's training options: gradient accumulation, clipping, loss scaling (fixed / dynamic, overflow
// skip), parameter groups and frozen layers in a training loop, per-group learning rates in the logs.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "callbacks/CSVLogger.h"
#include "callbacks/TensorBoard.h"
#include "framework/nn/layers/Activations.h"
#include "framework/nn/layers/Dense.h"
#include "framework/ops/Arithmetic.h"
#include "framework/optim/ClipGrad.h"
#include "framework/optim/SGD.h"
#include "models/LeNet5.h"
#include "framework/train/LossScaleManager.h"
#include "serialization/Checkpoint.h"
#include "serialization/LoadParam.h"
#include "tests/testutil/TempDir.h"
#include "tests/train/TrainTestUtil.h"

using namespace anvil;

namespace {

std::string bytes_of(const NamedTensors& ts) {
  std::string out;
  for (const auto& [n, t] : ts) out.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  return out;
}

double max_abs_diff(const NamedTensors& a, const NamedTensors& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto x = a[i].second.to_vector<float>(), y = b[i].second.to_vector<float>();
    for (std::size_t j = 0; j < x.size(); ++j) m = std::max(m, static_cast<double>(std::fabs(x[j] - y[j])));
  }
  return m;
}

// MLP 8 -> 16 -> 4 with `opt_kind` ("sgd" / "momentum"), trained on 128 examples for 2 epochs with the
// given batch size and options; returns the final parameters.
NamedTensors train_mlp(const std::string& opt_kind, std::int64_t batch, ModelOptions options, int epochs = 2) {
  Generator g(11);
  auto net = std::make_shared<models::MLP>(8, std::vector<std::int64_t>{16}, 4, &g);
  std::shared_ptr<Optimizer> opt;
  if (opt_kind == "sgd")
    opt = std::make_shared<SGD>(net->trainable_params(), 0.1);
  else
    opt = std::make_shared<Momentum>(net->trainable_params(), 0.05, 0.9);
  Model model(net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), opt, {}, std::move(options));
  DataLoader loader(testutil::separable_dataset(128, 8, 4, 5),
                    DataLoaderOptions{.batch_size = batch, .shuffle = false, .prefetch = 0});
  model.train(epochs, loader);
  NamedTensors out;
  for (const auto& [n, t] : net->parameters_and_names()) out.emplace_back(n, t.clone());
  return out;
}

// Multiplies the wrapped network's output by +inf on the calls listed in `poison_at` (1-based), which
// makes every gradient inf/NaN: an injected overflow.
class PoisonCell : public nn::Cell {
 public:
  PoisonCell(std::shared_ptr<nn::Cell> inner, std::vector<int> poison_at)
      : inner_(register_cell("inner", std::move(inner))), poison_at_(std::move(poison_at)) {}
  Tensor forward(const Tensor& x) override {
    Tensor y = inner_->forward(x);
    ++calls_;
    for (int c : poison_at_)
      if (c == calls_) return ops::scale(y, std::numeric_limits<double>::infinity());
    return y;
  }
  std::string type_name() const override { return "PoisonCell"; }

 private:
  std::shared_ptr<nn::Cell> inner_;
  std::vector<int> poison_at_;
  int calls_ = 0;
};

}  // namespace

TEST(Accumulation, FourMicroBatchesOf16MatchOneBatchOf64) {
  for (const std::string opt : {"sgd", "momentum"}) {
    const NamedTensors big = train_mlp(opt, 64, {});
    const NamedTensors micro = train_mlp(opt, 16, ModelOptions{.accumulate_steps = 4});
    ASSERT_EQ(big.size(), micro.size());
    EXPECT_LT(max_abs_diff(big, micro), 2e-6) << opt;
    // Without accumulation, batch 16 takes 4x the steps and ends elsewhere: the test can fail.
    EXPECT_GT(max_abs_diff(big, train_mlp(opt, 16, {})), 1e-3) << opt;
  }
}

TEST(Accumulation, LeNetFourMicroBatchesOf16MatchOneBatchOf64) {
  // Random 1x32x32 images: 128 examples, 2 optimizer steps either way.
  Generator data_gen(17);
  std::vector<float> x(128 * 32 * 32);
  for (float& v : x) v = static_cast<float>(data_gen.normal());
  std::vector<std::int32_t> y(128);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<std::int32_t>(i % 10);
  auto data = std::make_shared<InMemoryDataset>(Tensor::from_vector(x, Shape{128, 1, 32, 32}),
                                                Tensor::from_vector(y, Shape{128}));
  auto run = [&](std::int64_t batch, int accumulate) {
    Generator g(2);
    auto net = std::make_shared<models::LeNet5>(10, 1, &g);
    auto opt = std::make_shared<Momentum>(net->trainable_params(), 0.05, 0.9);
    Model model(net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), opt, {},
                ModelOptions{.accumulate_steps = accumulate});
    DataLoader loader(data, DataLoaderOptions{.batch_size = batch, .shuffle = false, .prefetch = 0});
    model.train(1, loader);
    EXPECT_EQ(opt->global_step(), 128 / (batch * accumulate));
    NamedTensors out;
    for (const auto& [n, t] : net->parameters_and_names()) out.emplace_back(n, t.clone());
    return out;
  };
  const NamedTensors big = run(64, 1), micro = run(16, 4);
  EXPECT_LT(max_abs_diff(big, micro), 1e-5);
  EXPECT_GT(max_abs_diff(big, run(16, 1)), 1e-4);  // without accumulation: 8 steps, elsewhere
}

TEST(Accumulation, OptimizerStepsEveryNMicroBatches) {
  Generator g(3);
  auto net = std::make_shared<models::MLP>(4, std::vector<std::int64_t>{8}, 3, &g);
  auto opt = std::make_shared<SGD>(net->trainable_params(), 0.1);
  Model model(net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), opt, {}, ModelOptions{.accumulate_steps = 3});
  DataLoader loader(testutil::separable_dataset(40, 4, 3, 2), DataLoaderOptions{.batch_size = 4, .shuffle = false});
  model.train(1, loader);  // 10 micro-batches -> 3 optimizer steps, 1 left accumulated
  EXPECT_EQ(opt->global_step(), 3);
  EXPECT_EQ(model.micro_step(), 1);
  EXPECT_TRUE(net->trainable_params()[0].second.grad().defined());
  EXPECT_EQ(model.progress().global_step, 10);
  EXPECT_THROW(Model(net, nullptr, nullptr, {}, ModelOptions{.accumulate_steps = 0}), Error);
}

TEST(Clipping, ModelOptionClipsTheGlobalNormBeforeTheStep) {
  // SGD with lr 1: the update is exactly the clipped gradient, so its global norm must be max_norm.
  Generator g(4);
  auto net = std::make_shared<models::MLP>(4, std::vector<std::int64_t>{8}, 3, &g);
  auto opt = std::make_shared<SGD>(net->trainable_params(), 1.0);
  const double max_norm = 1e-3;
  Model model(net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), opt, {},
              ModelOptions{.clip_grad_norm = max_norm});
  NamedTensors before;
  for (const auto& [n, t] : net->trainable_params()) before.emplace_back(n, t.clone());
  auto data = testutil::separable_dataset(16, 4, 3, 9);
  DataLoader loader(data, DataLoaderOptions{.batch_size = 16, .shuffle = false});
  model.train(1, loader);
  ASSERT_EQ(opt->global_step(), 1);
  EXPECT_GT(model.last_grad_norm(), max_norm);
  double sq = 0;
  const NamedTensors after = net->trainable_params();
  for (std::size_t i = 0; i < after.size(); ++i) {
    const auto x = before[i].second.to_vector<double>(), y = after[i].second.to_vector<double>();
    for (std::size_t j = 0; j < x.size(); ++j) sq += (x[j] - y[j]) * (x[j] - y[j]);
  }
  EXPECT_NEAR(std::sqrt(sq), max_norm, 1e-3 * max_norm);
  // A huge max_norm leaves the step unclipped: the same as no clipping at all.
  EXPECT_EQ(bytes_of(train_mlp("sgd", 32, ModelOptions{.clip_grad_norm = 1e6})), bytes_of(train_mlp("sgd", 32, {})));
}

TEST(LossScale, DynamicOverflowSkipsTheStepAndHalvesTheScale) {
  Generator g(6);
  auto mlp = std::make_shared<models::MLP>(4, std::vector<std::int64_t>{8}, 3, &g);
  auto net = std::make_shared<PoisonCell>(mlp, std::vector<int>{3});
  auto opt = std::make_shared<Momentum>(net->trainable_params(), 0.1, 0.9);
  auto scaler = std::make_shared<DynamicLossScaleManager>(1024.0, 2.0, 2);
  Model model(net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), opt, {},
              ModelOptions{.loss_scale_manager = scaler});
  auto data = testutil::separable_dataset(8, 4, 3, 1);
  DataLoader loader(data, DataLoaderOptions{.batch_size = 8, .shuffle = false, .prefetch = 0});
  loader.start_epoch(0);
  const Batch batch = *loader.next();

  model.train_step(batch);  // cur_iter 1: good
  EXPECT_FALSE(model.last_step_skipped());
  EXPECT_EQ(scaler->get_loss_scale(), 1024.0f);
  model.train_step(batch);  // cur_iter 2: good, 2 - 0 >= window 2 -> grows
  EXPECT_EQ(scaler->get_loss_scale(), 2048.0f);
  const std::string params_before = bytes_of(net->trainable_params());
  const std::string state_before = bytes_of(opt->state_dict());
  model.train_step(batch);  // poisoned: overflow
  EXPECT_TRUE(model.last_step_skipped());
  EXPECT_EQ(bytes_of(net->trainable_params()), params_before);  // parameters unchanged
  EXPECT_EQ(bytes_of(opt->state_dict()), state_before);         // optimizer state and global_step unchanged
  EXPECT_EQ(opt->global_step(), 2);
  EXPECT_EQ(scaler->get_loss_scale(), 1024.0f);  // halved
  EXPECT_EQ(scaler->last_overflow_iterator_step(), 3);
  EXPECT_FALSE(net->trainable_params()[0].second.grad().defined());  // the bad gradients are dropped
  model.train_step(batch);  // good again: the step is applied
  EXPECT_FALSE(model.last_step_skipped());
  EXPECT_EQ(opt->global_step(), 3);
  EXPECT_NE(bytes_of(net->trainable_params()), params_before);
}

TEST(LossScale, ScaledTrainingMatchesUnscaled) {
  // Power-of-two scales are exact: the unscaled gradients equal the plain ones bit for bit.
  const NamedTensors plain = train_mlp("momentum", 32, {});
  const NamedTensors scaled =
      train_mlp("momentum", 32, ModelOptions{.loss_scale_manager = std::make_shared<FixedLossScaleManager>(1024.0)});
  EXPECT_EQ(bytes_of(plain), bytes_of(scaled));
}

TEST(LossScale, DynamicRuleFollowsMindSpore) {
  DynamicLossScaleManager m(8.0, 2.0, 3);
  EXPECT_EQ(m.get_loss_scale(), 8.0f);
  m.update_loss_scale(false);  // cur 1
  m.update_loss_scale(false);  // cur 2
  EXPECT_EQ(m.get_loss_scale(), 8.0f);
  m.update_loss_scale(false);  // cur 3: 3 - 0 >= 3 -> grow
  EXPECT_EQ(m.get_loss_scale(), 16.0f);
  EXPECT_EQ(m.last_overflow_iterator_step(), 3);
  m.update_loss_scale(true);  // cur 4: overflow -> halve
  EXPECT_EQ(m.get_loss_scale(), 8.0f);
  for (int i = 0; i < 10; ++i) m.update_loss_scale(true);
  EXPECT_EQ(m.get_loss_scale(), 1.0f);  // never below 1
  EXPECT_EQ(m.current_iterator_step(), 15);
  // State round trip with MindSpore's names and dtypes.
  const NamedTensors st = m.state_dict();
  ASSERT_EQ(st.size(), 3u);
  EXPECT_EQ(st[0].first, "scale_sense");
  EXPECT_EQ(st[0].second.dtype(), DType::kF32);
  EXPECT_EQ(st[1].first, "current_iterator_step");
  EXPECT_EQ(st[1].second.dtype(), DType::kI32);
  EXPECT_EQ(st[2].first, "last_overflow_iterator_step");
  DynamicLossScaleManager n;
  n.load_state_dict(st);
  EXPECT_EQ(n.get_loss_scale(), 1.0f);
  EXPECT_EQ(n.current_iterator_step(), 15);
  EXPECT_EQ(n.last_overflow_iterator_step(), 14);
  EXPECT_THROW(n.load_state_dict({{"scale_sense", Tensor::scalar(0.5)}}), Error);
  EXPECT_THROW(DynamicLossScaleManager(4.0, 1.0), Error);
  FixedLossScaleManager f(64.0, false);
  EXPECT_FALSE(f.get_drop_overflow_update());
  EXPECT_EQ(f.state_dict().size(), 1u);
}

TEST(LossScale, ScaleStateRoundTripsThroughACheckpoint) {
  testutil::TempDir dir;
  DynamicLossScaleManager m(2048.0, 2.0, 5);
  m.update_loss_scale(true);
  m.update_loss_scale(false);
  save_checkpoint(m.state_dict(), dir.file("scale.ckpt"), SaveOptions{.durable = false});
  const ParamDict d = load_checkpoint(dir.file("scale.ckpt"));
  NamedTensors st;
  for (const auto& e : d) st.emplace_back(e.name, std::get<Tensor>(e.value));
  DynamicLossScaleManager n;
  n.load_state_dict(st);
  EXPECT_EQ(n.get_loss_scale(), 1024.0f);
  EXPECT_EQ(n.current_iterator_step(), 3);
  EXPECT_EQ(n.last_overflow_iterator_step(), 1);
}

TEST(FrozenLayer, KeepsItsBytesAndIsStillSaved) {
  Generator g(8);
  auto net = std::make_shared<nn::SequentialCell>();
  auto first = std::make_shared<nn::Dense>(4, 8, nn::DenseOptions{.generator = &g});
  net->append(first);
  net->append(std::make_shared<nn::ReLU>());
  net->append(std::make_shared<nn::Dense>(8, 3, nn::DenseOptions{.generator = &g}));
  for (auto& [n, t] : net->parameters_and_names())
    if (n.rfind("0.", 0) == 0) t.set_requires_grad(false);
  const std::string frozen_before = bytes_of({net->parameters_and_names()[0], net->parameters_and_names()[1]});
  const std::string trained_before = bytes_of({net->parameters_and_names()[2]});
  // Groups over every parameter: frozen ones are dropped (no state); no weight decay on biases.
  NamedTensors weights, biases;
  for (const auto& [n, t] : net->parameters_and_names()) (n.ends_with("bias") ? biases : weights).emplace_back(n, t);
  auto opt = std::make_shared<Momentum>(
      OptimizerParams({ParamGroup{.params = weights, .weight_decay = 1e-3}, ParamGroup{.params = biases, .weight_decay = 0.0}}),
      0.1, 0.9);
  EXPECT_EQ(opt->parameters().size(), 2u);
  Model model(net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), opt, {},
              ModelOptions{.accumulate_steps = 2, .clip_grad_norm = 5.0});
  DataLoader loader(testutil::separable_dataset(32, 4, 3, 4), DataLoaderOptions{.batch_size = 8, .shuffle = false});
  model.train(2, loader);
  const NamedTensors all = net->parameters_and_names();
  EXPECT_EQ(bytes_of({all[0], all[1]}), frozen_before);
  EXPECT_FALSE(all[0].second.grad().defined());  // no gradient accumulated for a frozen parameter
  EXPECT_NE(bytes_of({all[2]}), trained_before);
  testutil::TempDir dir;
  save_checkpoint(*net, dir.file("net.ckpt"), SaveOptions{.optimizer = opt.get(), .durable = false});
  const ParamDict d = load_checkpoint(dir.file("net.ckpt"));
  ASSERT_NE(d.find("0.weight"), nullptr);
  EXPECT_EQ(std::get<Tensor>(d.find("0.weight")->value).to_vector<float>(), all[0].second.to_vector<float>());
  EXPECT_EQ(d.find("moments.0.weight"), nullptr);
  EXPECT_NE(d.find("moments.2.weight"), nullptr);
}

TEST(GroupLearningRates, AppearInTheCsvLog) {
  Generator g(9);
  auto net = std::make_shared<models::MLP>(4, std::vector<std::int64_t>{8}, 3, &g);
  NamedTensors weights, biases;
  for (const auto& [n, t] : net->trainable_params()) (n.ends_with("bias") ? biases : weights).emplace_back(n, t);
  auto opt = std::make_shared<SGD>(
      OptimizerParams({ParamGroup{.params = weights, .lr = 0.125}, ParamGroup{.params = biases, .lr = 0.375}}), 0.01);
  Model model(net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), opt);
  testutil::TempDir dir;
  DataLoader loader(testutil::separable_dataset(16, 4, 3, 4), DataLoaderOptions{.batch_size = 8, .shuffle = false});
  auto tb = std::make_shared<TensorBoard>(dir.file("tb"));
  model.train(1, loader, {std::make_shared<CSVLogger>(dir.file("log.csv")), tb});
  std::ifstream in(dir.file("log.csv"));
  std::string header, row;
  std::getline(in, header);
  std::getline(in, row);
  EXPECT_NE(header.find("lr_group0"), std::string::npos) << header;
  EXPECT_NE(header.find("lr_group1"), std::string::npos) << header;
  EXPECT_NE(row.find("0.125"), std::string::npos) << row;
  EXPECT_NE(row.find("0.375"), std::string::npos) << row;
  // TensorBoard: "train/lr_group<i>" scalars with the groups' rates (float32 little-endian in the event).
  std::ifstream ev(tb->file_path(), std::ios::binary);
  const std::string events((std::istreambuf_iterator<char>(ev)), {});
  const float lr1 = 0.375f;
  const std::string lr1_bytes(reinterpret_cast<const char*>(&lr1), sizeof lr1);
  EXPECT_NE(events.find("train/lr_group0"), std::string::npos);
  EXPECT_NE(events.find("train/lr_group1"), std::string::npos);
  EXPECT_NE(events.find(lr1_bytes), std::string::npos);
}

TEST(Accumulation, RestoreAccumulationValidatesThenSetsGradients) {
  Generator g(12);
  auto net = std::make_shared<models::MLP>(4, std::vector<std::int64_t>{8}, 3, &g);
  auto opt = std::make_shared<SGD>(net->trainable_params(), 0.1);
  Model model(net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), opt, {}, ModelOptions{.accumulate_steps = 2});
  const NamedTensors params = net->trainable_params();
  const std::string name = params[0].first;
  const Tensor p = params[0].second;
  const Tensor grad = Tensor::full(p.shape(), 0.5);
  EXPECT_THROW(model.restore_accumulation(2, {}), Error);                              // out of range
  EXPECT_THROW(model.restore_accumulation(1, {{"nope", grad}}), Error);                // not a parameter
  EXPECT_THROW(model.restore_accumulation(0, {{name, grad}}), Error);                  // grads at micro_step 0
  EXPECT_THROW(model.restore_accumulation(1, {{name, Tensor::zeros(Shape{1})}}), Error);  // shape
  EXPECT_EQ(model.micro_step(), 0);
  EXPECT_FALSE(p.grad().defined());
  model.restore_accumulation(1, {{name, grad}});
  EXPECT_EQ(model.micro_step(), 1);
  ASSERT_TRUE(p.grad().defined());
  EXPECT_EQ(p.grad().to_vector<float>(), grad.to_vector<float>());
  EXPECT_FALSE(p.grad().shares_storage(grad));  // copied
}

TEST(GroupLearningRates, GroupedOptimizerStateRoundTripsThroughACheckpointFile) {
  auto build = [](std::shared_ptr<models::MLP>& net) {
    Generator g(21);
    net = std::make_shared<models::MLP>(4, std::vector<std::int64_t>{8}, 3, &g);
    NamedTensors weights, biases;
    for (const auto& [n, t] : net->trainable_params()) (n.ends_with("bias") ? biases : weights).emplace_back(n, t);
    return std::make_shared<Momentum>(
        OptimizerParams({ParamGroup{.params = weights, .lr = 0.03, .weight_decay = 1e-3},
                         ParamGroup{.params = biases, .lr = 0.07, .weight_decay = 0.0}}),
        0.01, 0.9);
  };
  std::shared_ptr<models::MLP> net;
  auto opt = build(net);
  Model model(net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), opt);
  DataLoader loader(testutil::separable_dataset(24, 4, 3, 4), DataLoaderOptions{.batch_size = 8, .shuffle = false});
  model.train(1, loader);
  opt->set_group_learning_rate(1, 0.0625);
  testutil::TempDir dir;
  save_checkpoint(*net, dir.file("grouped.ckpt"), SaveOptions{.optimizer = opt.get(), .durable = false});
  const ParamDict d = load_checkpoint(dir.file("grouped.ckpt"));
  ASSERT_NE(d.find("learning_rate_group_1"), nullptr);
  EXPECT_EQ(d.find("learning_rate"), nullptr);
  EXPECT_FLOAT_EQ(static_cast<float>(std::get<Tensor>(d.find("learning_rate_group_1")->value).item()), 0.0625f);

  std::shared_ptr<models::MLP> net2;
  auto opt2 = build(net2);
  load_checkpoint_into_net(*net2, dir.file("grouped.ckpt"), LoadIntoNetOptions{.optimizer = opt2.get()});
  EXPECT_EQ(bytes_of(net2->state_dict()), bytes_of(net->state_dict()));
  EXPECT_EQ(bytes_of(opt2->state_dict()), bytes_of(opt->state_dict()));
  EXPECT_EQ(opt2->current_learning_rates(), (std::vector<double>{0.03, 0.0625}));
  EXPECT_EQ(opt2->global_step(), 3);
}
