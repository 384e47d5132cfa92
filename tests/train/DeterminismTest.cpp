// (e) Same seed -> bit-identical loss sequence, within one process and across two processes.
#include <gtest/gtest.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "framework/optim/Adam.h"
#include "tests/testutil/TempDir.h"
#include "tests/train/TrainTestUtil.h"
#include "tests/testutil/Paths.h"

using namespace anvil;

namespace {

constexpr const char* kOutEnv = "ANVIL_TEST_TRAIN_LOSSES_OUT";

// Collects net_outputs of every step.
struct LossRecorder : Callback {
  std::vector<float> losses;
  void on_train_step_end(RunContext& ctx) override {
    losses.push_back(static_cast<float>(ctx.original_args().net_outputs.item()));
  }
};

// 50 steps (5 epochs x 10 batches of 20, shuffled, prefetching) of an MLP with Adam, everything seeded.
std::vector<float> run_50_steps() {
  auto data = testutil::separable_dataset(200, 16, 5, 42);
  DataLoader loader(data, DataLoaderOptions{.batch_size = 20, .shuffle = true, .seed = 1234, .prefetch = 2});
  Generator g(99);
  auto net = std::make_shared<models::MLP>(16, std::vector<std::int64_t>{32}, 5, &g);
  auto opt = std::make_shared<Adam>(net->trainable_params(), 1e-2);
  Model model(net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), opt);
  auto rec = std::make_shared<LossRecorder>();
  model.train(5, loader, {rec});
  return rec->losses;
}

// One line per loss, as a C99 hex float (exact).
std::string to_hex_lines(const std::vector<float>& losses) {
  std::string out;
  char buf[64];
  for (float l : losses) {
    std::snprintf(buf, sizeof buf, "%a\n", static_cast<double>(l));
    out += buf;
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(ModelDeterminism, SameSeedGivesBitIdenticalLossesTwiceInOneProcess) {
  const auto a = run_50_steps();
  const auto b = run_50_steps();
  ASSERT_EQ(a.size(), 50u);
  EXPECT_EQ(to_hex_lines(a), to_hex_lines(b));
  EXPECT_LT(a.back(), a.front());  // it does learn
}

// Helper run by the next test in a child process; skipped unless the environment asks for it.
TEST(ModelDeterminism, WriteLossesHelper) {
  const char* out = std::getenv(kOutEnv);
  if (!out || !*out) GTEST_SKIP() << "helper for SameSeedGivesBitIdenticalLossesAcrossProcesses (set " << kOutEnv << ")";
  const std::string text = to_hex_lines(run_50_steps());
  std::ofstream f(out, std::ios::binary);
  f << text;
  f.close();
  ASSERT_TRUE(f.good()) << "cannot write " << out;
}

TEST(ModelDeterminism, SameSeedGivesBitIdenticalLossesAcrossProcesses) {
  testutil::TempDir dir;
  const std::string exe = testutil::self_exe();
  ASSERT_FALSE(exe.empty()) << "cannot read /proc/self/exe";
  const std::string out = dir.file("losses.txt");
  const std::string cmd = "env " + std::string(kOutEnv) + "='" + out + "' '" + exe +
                          "' --gtest_filter=ModelDeterminism.WriteLossesHelper >'" + dir.file("child.log") + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  ASSERT_EQ(rc, 0) << cmd << "\n" << read_file(dir.file("child.log"));
  const std::string child = read_file(out);
  const std::string mine = to_hex_lines(run_50_steps());
  EXPECT_EQ(std::count(mine.begin(), mine.end(), '\n'), 50);
  EXPECT_EQ(child, mine);
}
