// Exact resume in the middle of gradient accumulation, with dynamic loss scaling and parameter groups:
// "train N micro-steps" vs "train k, save, resume in a NEW process, train N - k" give identical
// parameter, optimizer and loss-scale bytes and the same loss sequence. The checkpoint carries the
// accumulated gradients and micro-step counter ("__resume__.accu_grads.*", "__resume__.accumulation")
// and the loss scale under MindSpore's names ("scale_sense", ...).
#include <gtest/gtest.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "framework/data/DataLoader.h"
#include "framework/nn/layers/Activations.h"
#include "framework/nn/layers/Dense.h"
#include "framework/nn/losses/LossCell.h"
#include "framework/optim/Momentum.h"
#include "framework/train/LossScaleManager.h"
#include "framework/train/Model.h"
#include "serialization/Checkpoint.h"
#include "serialization/Resume.h"
#include "tests/testutil/TempDir.h"
#include "tests/train/TrainTestUtil.h"
#include "tests/testutil/Paths.h"

using namespace anvil;

namespace {

constexpr const char* kCkptEnv = "ANVIL_TEST_ACCUM_CKPT";
constexpr const char* kOutEnv = "ANVIL_TEST_ACCUM_OUT";
constexpr int kEpochs = 3;  // 100 examples, batch 16 -> 7 micro-batches per epoch: 21, 7 optimizer steps

struct LossRecorder : Callback {
  std::vector<float> losses;
  void on_train_step_end(RunContext& ctx) override {
    losses.push_back(static_cast<float>(ctx.original_args().net_outputs.item()));
  }
};

struct AccumRun {
  std::shared_ptr<nn::SequentialCell> net;
  std::shared_ptr<Optimizer> opt;
  std::shared_ptr<DynamicLossScaleManager> scaler;
  std::unique_ptr<Model> model;
  std::unique_ptr<DataLoader> loader;
  std::shared_ptr<LossRecorder> rec = std::make_shared<LossRecorder>();
};

AccumRun build() {
  set_seed(99);
  AccumRun r;
  Generator g(5);
  r.net = std::make_shared<nn::SequentialCell>();
  r.net->append(std::make_shared<nn::Dense>(16, 32, nn::DenseOptions{.generator = &g}));
  r.net->append(std::make_shared<nn::ReLU>());
  r.net->append(std::make_shared<nn::Dense>(32, 5, nn::DenseOptions{.generator = &g}));
  NamedTensors weights, biases;
  for (const auto& [n, t] : r.net->trainable_params()) (n.ends_with("bias") ? biases : weights).emplace_back(n, t);
  r.opt = std::make_shared<Momentum>(
      OptimizerParams({ParamGroup{.params = weights, .weight_decay = 1e-3}, ParamGroup{.params = biases, .lr = 0.02}},
                      r.net->trainable_params()),
      0.05, 0.9);
  r.scaler = std::make_shared<DynamicLossScaleManager>(1024.0, 2.0, 3);
  r.model = std::make_unique<Model>(r.net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), r.opt,
                                    std::vector<std::shared_ptr<Metric>>{},
                                    ModelOptions{.loss_scale_manager = r.scaler, .accumulate_steps = 3,
                                                 .clip_grad_norm = 2.0});
  r.loader = std::make_unique<DataLoader>(testutil::separable_dataset(100, 16, 5, 42),
                                          DataLoaderOptions{.batch_size = 16, .shuffle = true, .seed = 3});
  return r;
}

std::string fingerprint(const AccumRun& r) {
  std::string out;
  auto add = [&out](const NamedTensors& ts) {
    for (const auto& [name, t] : ts) {
      out += name + ":";
      out.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
    }
  };
  add(r.net->state_dict());
  add(r.opt->state_dict());
  add(r.scaler->state_dict());
  out += "losses:";
  out.append(reinterpret_cast<const char*>(r.rec->losses.data()), r.rec->losses.size() * sizeof(float));
  return out;
}

struct SaveAndStop : Callback {
  std::int64_t k;
  std::string path;
  SaveAndStop(std::int64_t k_, std::string p) : k(k_), path(std::move(p)) {}
  void on_train_step_end(RunContext& ctx) override {
    if (ctx.original_args().cur_step_num != k) return;
    save_train_state(path, ctx, ResumeSaveOptions{.durable = false});
    ctx.request_stop();
  }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void check_resume_at(std::int64_t k) {
  testutil::TempDir dir;
  const std::string ckpt = dir.file("state.ckpt");
  std::vector<float> first;
  std::int64_t micro = -1;
  {
    AccumRun r = build();
    r.model->train(kEpochs, *r.loader, {r.rec, std::make_shared<SaveAndStop>(k, ckpt)});
    first = r.rec->losses;
    micro = r.model->micro_step();
  }
  ASSERT_EQ(static_cast<std::int64_t>(first.size()), k);
  EXPECT_EQ(micro, k % 3);
  // The file holds the accumulation position and, mid-accumulation, the accumulated gradients.
  const ParamDict d = load_checkpoint(ckpt);
  ASSERT_NE(d.find("scale_sense"), nullptr);
  EXPECT_EQ(std::get<Tensor>(d.find("scale_sense")->value).dtype(), DType::kF32);
  EXPECT_NE(d.find("current_iterator_step"), nullptr);
  ASSERT_NE(d.find("__resume__.accumulation"), nullptr);
  EXPECT_EQ(d.find("__resume__.accu_grads.0.weight") != nullptr, micro != 0);
  EXPECT_NE(d.find("learning_rate_group_1"), nullptr);

  const std::string out = dir.file("child.out"), log = dir.file("child.log");
  std::string cmd = "env ";
  cmd += kCkptEnv;
  cmd += "='" + ckpt + "' ";
  cmd += kOutEnv;
  cmd += "='" + out + "' '" + testutil::self_exe() + "' --gtest_filter=AccumulationResumeChild.ResumeAndFinish >'" + log +
         "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(log);
  const std::string child = slurp(out);
  ASSERT_FALSE(child.empty());

  AccumRun s = build();
  s.model->train(kEpochs, *s.loader, {s.rec});
  ASSERT_EQ(s.rec->losses.size(), 21u);
  EXPECT_EQ(std::vector<float>(s.rec->losses.begin(), s.rec->losses.begin() + k), first);
  std::vector<float> tail(s.rec->losses.begin() + k, s.rec->losses.end());
  std::swap(s.rec->losses, tail);
  EXPECT_TRUE(child == fingerprint(s)) << "resumed run (k = " << k << ") differs from the uninterrupted one";
}

}  // namespace

TEST(AccumulationResumeChild, ResumeAndFinish) {
  const char* ckpt = std::getenv(kCkptEnv);
  const char* out = std::getenv(kOutEnv);
  if (!ckpt || !out) GTEST_SKIP() << "helper for the AccumulationResume tests (set " << kCkptEnv << ")";
  AccumRun r = build();
  resume(*r.model, *r.loader, ckpt);
  r.model->train(kEpochs, *r.loader, {r.rec});
  std::ofstream f(out, std::ios::binary);
  f << fingerprint(r);
  f.close();
  ASSERT_TRUE(f.good());
}

TEST(AccumulationResume, StraightRunChangesTheScale) {
  AccumRun r = build();
  r.model->train(kEpochs, *r.loader, {r.rec});
  EXPECT_EQ(r.opt->global_step(), 7);
  EXPECT_GT(r.scaler->get_loss_scale(), 1024.0f);  // grown every 3 good steps
  EXPECT_EQ(r.model->micro_step(), 0);
}

TEST(AccumulationResume, MidAccumulationTwoOfThree) { check_resume_at(8); }
TEST(AccumulationResume, MidAccumulationOneOfThree) { check_resume_at(10); }
TEST(AccumulationResume, AtAnOptimizerStep) { check_resume_at(9); }
