// Runs examples/finetune on a small Fashion-MNIST subset (when the example and the data are present):
// it exits 0 only when the loaded dense1/dense2 bytes equal the saved ones, the reloaded un-extended
// network has exactly its pre-save accuracy, and the dense3-extended network trains on.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "framework/data/MnistDataset.h"
#include "tests/testutil/TempDir.h"

TEST(OneFlowFinetuneExample, RunsOnSubset) {
  const std::string exe = std::string(ANVIL_BINARY_DIR) + "/examples/finetune";
  if (!std::filesystem::exists(exe)) GTEST_SKIP() << "example not built: " << exe;
  if (!std::filesystem::is_directory(anvil::default_fashion_mnist_dir()))
    GTEST_SKIP() << "Fashion-MNIST not found: " << anvil::default_fashion_mnist_dir();
  anvil::testutil::TempDir td;
  const std::string log = td.file("log.txt");
  const std::string cmd = exe + " --out " + td.path().string() + " --limit 1000 --test-limit 500 --hidden 32 > " + log + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::FILE* f = std::fopen(log.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, f)) out += buf;
  std::fclose(f);
  const std::string base = td.path().string() + "/base";
  EXPECT_NE(out.find("WARNING! CANNOT find variable path in : " + base + "/dense3-weight/out. It will be initialized. \n"),
            std::string::npos) << out;
  EXPECT_NE(out.find("WARNING! CANNOT find variable path in : " + base + "/dense3-bias/out. It will be initialized. \n"),
            std::string::npos) << out;
  EXPECT_TRUE(std::filesystem::exists(td.path() / "finetuned" / "dense3-weight" / "out"));
  EXPECT_TRUE(std::filesystem::exists(td.path() / "finetuned" / "snapshot_done"));
}
