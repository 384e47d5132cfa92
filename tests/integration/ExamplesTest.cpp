// Runs examples/save_best and examples/layers_tour (when built) and checks what they claim: the best
// checkpoint reloads to the accuracy it was kept for, and the layers tour learns its task.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>

#include "framework/data/MnistDataset.h"
#include "tests/testutil/TempDir.h"

namespace {

// Runs `cmd` with stdout+stderr to a file; returns (exit status, output).
std::pair<int, std::string> run(const std::string& cmd, const std::string& log) {
  const int rc = std::system((cmd + " > " + log + " 2>&1").c_str());
  std::string out;
  if (std::FILE* f = std::fopen(log.c_str(), "r")) {
    char buf[512];
    while (std::fgets(buf, sizeof buf, f)) out += buf;
    std::fclose(f);
  }
  return {rc, out};
}

std::string example(const char* name) { return std::string(ANVIL_BINARY_DIR) + "/examples/" + name; }

}  // namespace

TEST(SaveBestExample, KeepsAndReloadsTheBestEpoch) {
  const std::string exe = example("save_best");
  if (!std::filesystem::exists(exe)) GTEST_SKIP() << "example not built: " << exe;
  if (!std::filesystem::is_directory(anvil::default_fashion_mnist_dir()))
    GTEST_SKIP() << "Fashion-MNIST not found: " << anvil::default_fashion_mnist_dir();
  anvil::testutil::TempDir td;
  const auto [rc, out] = run(exe + " " + td.file("ckpts"), td.file("log.txt"));
  ASSERT_EQ(rc, 0) << out;
  // The best epoch's accuracy, as printed per epoch, must be the one of the kept file and its reload.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(best checkpoint: \S+/(lenet-\d+_\d+\.ckpt) \(test accuracy ([0-9.]+)\))")))
      << out;
  const std::string file = m[1], best = m[2];
  double max_epoch = 0;
  const std::regex epoch_line(R"(epoch \d+: test accuracy ([0-9.]+))");
  for (std::sregex_iterator it(out.begin(), out.end(), epoch_line), end; it != end; ++it)
    max_epoch = std::max(max_epoch, std::stod((*it)[1]));
  EXPECT_DOUBLE_EQ(std::stod(best), max_epoch) << out;
  EXPECT_TRUE(std::filesystem::exists(td.path() / "ckpts" / file)) << out;
  EXPECT_NE(out.find("reloaded from " + file + ": test accuracy " + best), std::string::npos) << out;
}

TEST(LayersTourExample, LearnsTheSyntheticTask) {
  const std::string exe = example("layers_tour");
  if (!std::filesystem::exists(exe)) GTEST_SKIP() << "example not built: " << exe;
  anvil::testutil::TempDir td;
  const auto [rc, out] = run(exe, td.file("log.txt"));
  ASSERT_EQ(rc, 0) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(accuracy on \d+ fresh sequences: ([0-9.]+) %)"))) << out;
  EXPECT_GT(std::stod(m[1]), 90.0) << out;
}
