// `anvil convert` and `anvil ckpt info DIR` (when the CLI is built beside the tests).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sys/wait.h>
#include <string>

#include "serialization/oneflow/VarDir.h"
#include "tests/testutil/TempDir.h"

namespace {
std::string run(const std::string& cmd, int* rc) {
  std::string out;
  std::FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  int st = ::pclose(p);
  *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}
}  // namespace

TEST(OneFlowCli, ConvertBothWaysAndInfo) {
  const std::string exe = std::string(ANVIL_BINARY_DIR) + "/tools/anvil";
  if (!std::filesystem::exists(exe)) GTEST_SKIP() << "CLI not built: " << exe;
  anvil::testutil::TempDir td;
  anvil::oneflow::save_variable_directory(td.file("vd"), {{"dense1-weight", anvil::Tensor::ones(anvil::Shape({3, 2}))},
                                                          {"dense1-bias", anvil::Tensor::zeros(anvil::Shape({3}))}});
  int rc = -1;
  std::string out = run(exe + " convert " + td.file("vd") + " " + td.file("m.ckpt"), &rc);
  EXPECT_EQ(rc, 0) << out;
  out = run(exe + " convert " + td.file("m.ckpt") + " " + td.file("vd2"), &rc);
  EXPECT_EQ(rc, 0) << out;
  out = run(exe + " ckpt info " + td.file("vd2"), &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("dense1-weight"), std::string::npos) << out;
  EXPECT_NE(out.find("(3, 2)"), std::string::npos) << out;
  EXPECT_NE(out.find("snapshot_done"), std::string::npos) << out;
  out = run(exe + " convert " + td.file("m.ckpt") + " " + td.file("vd2"), &rc);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("is a file or non-empty directory!"), std::string::npos) << out;
}
