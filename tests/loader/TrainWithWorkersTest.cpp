// Model-level determinism of the multi-worker, augmenting DataLoader: training gives bit-identical
// parameters for every num_workers, and an exact resume (save_train_state / resume) mid-epoch with a
// different worker count continues with the same augmented batches.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "framework/core/Random.h"
#include "framework/data/DataLoader.h"
#include "framework/data/InMemoryDataset.h"
#include "framework/data/Transforms.h"
#include "framework/nn/layers/Activations.h"
#include "framework/nn/layers/Dense.h"
#include "framework/nn/losses/LossCell.h"
#include "framework/optim/Momentum.h"
#include "framework/train/Callback.h"
#include "framework/train/CallbackParams.h"
#include "framework/train/Model.h"
#include "framework/train/RunContext.h"
#include "serialization/Resume.h"
#include "tests/testutil/TempDir.h"

using namespace anvil;

namespace {

// 60 images [1, 5, 5] with values around i / 60, labels i % 3.
std::shared_ptr<InMemoryDataset> images() {
  std::vector<float> data;
  std::vector<std::int32_t> labels;
  for (int i = 0; i < 60; ++i) {
    for (int p = 0; p < 25; ++p) data.push_back(static_cast<float>((i % 3) * 10 + p % 7) / 30.0f);
    labels.push_back(i % 3);
  }
  return std::make_shared<InMemoryDataset>(Tensor::from_vector(data, Shape{60, 1, 5, 5}),
                                           Tensor::from_vector(labels, Shape{60}));
}

struct TrainRun {
  std::shared_ptr<nn::SequentialCell> net;
  std::unique_ptr<Model> model;
  std::unique_ptr<DataLoader> loader;
};

TrainRun build(std::int64_t workers) {
  set_seed(3);
  TrainRun r;
  Generator g(5);
  r.net = std::make_shared<nn::SequentialCell>();
  r.net->append(std::make_shared<nn::Flatten>());
  r.net->append(std::make_shared<nn::Dense>(25, 3, nn::DenseOptions{.generator = &g}));
  auto opt = std::make_shared<Momentum>(r.net->trainable_params(), 0.05, 0.9);
  r.model = std::make_unique<Model>(r.net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), opt);
  auto augment = std::make_shared<Compose>(std::vector<std::shared_ptr<const Transform>>{
      std::make_shared<RandomCrop>(5, 5, Padding{1}), std::make_shared<RandomHorizontalFlip>(0.5)});
  r.loader = std::make_unique<DataLoader>(
      images(), DataLoaderOptions{.batch_size = 8, .seed = 13, .transform = augment, .num_workers = workers});
  return r;
}

std::vector<std::vector<float>> params(const nn::Cell& net) {
  std::vector<std::vector<float>> out;
  for (const auto& [n, t] : net.parameters_and_names()) out.push_back(t.to_vector<float>());
  return out;
}

struct SaveAndStop : Callback {
  std::int64_t step;
  std::string path;
  SaveAndStop(std::int64_t s, std::string p) : step(s), path(std::move(p)) {}
  void on_train_step_end(RunContext& ctx) override {
    if (ctx.original_args().cur_step_num != step) return;
    save_train_state(path, ctx, ResumeSaveOptions{.durable = false});
    ctx.request_stop();
  }
};

}  // namespace

TEST(TrainWithWorkers, ParametersIdenticalForEveryWorkerCount) {
  TrainRun ref = build(0);
  const auto initial = params(*ref.net);
  ref.model->train(3, *ref.loader);
  const auto expected = params(*ref.net);
  EXPECT_NE(expected, initial);  // it trained
  for (std::int64_t workers : {1, 2, 3}) {
    TrainRun r = build(workers);
    r.model->train(3, *r.loader);
    EXPECT_EQ(params(*r.net), expected) << "num_workers " << workers;
  }
  set_seed(0);
}

TEST(TrainWithWorkers, ExactResumeMidEpochWithAnotherWorkerCount) {
  TrainRun ref = build(2);
  ref.model->train(3, *ref.loader);
  const auto expected = params(*ref.net);

  testutil::TempDir dir;
  const std::string path = dir.file("state.ckpt");
  {
    TrainRun first = build(3);
    first.model->train(3, *first.loader, {std::make_shared<SaveAndStop>(10, path)});  // epoch 2, step 2 of 8
    EXPECT_EQ(first.loader->position().epoch, 1);
  }
  TrainRun second = build(1);
  resume(*second.model, *second.loader, path);
  EXPECT_EQ(second.loader->position(), (DataPosition{1, 2, 13}));
  second.model->train(3, *second.loader);
  EXPECT_EQ(params(*second.net), expected);
  set_seed(0);
}
