// Runs examples/train_amp on a small Fashion-MNIST subset (when the example and the data are present):
// it exits 0 only when the frozen conv1 kept its bytes; the output shows one optimizer step per two
// micro-batches and the two parameter groups' rates.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "framework/data/MnistDataset.h"
#include "tests/testutil/TempDir.h"

TEST(TrainAmpExample, RunsOnSubset) {
  const std::string exe = std::string(ANVIL_BINARY_DIR) + "/examples/train_amp";
  if (!std::filesystem::exists(exe)) GTEST_SKIP() << "example not built: " << exe;
  if (!std::filesystem::is_directory(anvil::default_fashion_mnist_dir()))
    GTEST_SKIP() << "Fashion-MNIST not found: " << anvil::default_fashion_mnist_dir();
  anvil::testutil::TempDir td;
  const std::string log = td.file("log.txt");
  const std::string cmd = exe + " --limit 2000 --epochs 1 > " + log + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::FILE* f = std::fopen(log.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, f)) out += buf;
  std::fclose(f);
  ASSERT_EQ(rc, 0) << cmd << "\n" << out;
  EXPECT_NE(out.find("amp_level O2, 7 trainable tensors in 2 groups (conv1 frozen)"), std::string::npos) << out;
  // 2000 images / 32 = 63 micro-batches -> 31 optimizer steps (one micro-batch left accumulated).
  EXPECT_NE(out.find("optimizer steps: 31 (63 micro-batches)"), std::string::npos) << out;
  EXPECT_NE(out.find("group lrs 0.01 / 0.02"), std::string::npos) << out;
  EXPECT_NE(out.find("conv1 unchanged: yes"), std::string::npos) << out;
}
