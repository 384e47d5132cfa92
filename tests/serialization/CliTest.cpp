// `anvil ckpt info | verify | diff` run as a user would.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>

#include "serialization/Checkpoint.h"
#include "tests/serialization/CkptTestUtil.h"
#include "tests/testutil/TempDir.h"
#include "tests/testutil/Errors.h"

using anvil::testutil::has;

namespace anvil {
namespace {

#ifdef ANVIL_CLI
struct CliRun {
  int code;
  std::string out;
};

CliRun anvil_cli(const std::string& args) {
  CliRun r{-1, {}};
  FILE* p = ::popen((std::string(ANVIL_CLI) + " " + args + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(CkptCli, InfoVerifyDiff) {
  testutil::TempDir dir;
  ParamDict d;
  d.set("fc.weight", Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, Shape{2, 3}));
  d.set("note", std::string("hello"));
  SaveOptions o;
  o.durable = false;
  o.append_info = {{"epoch_num", std::int64_t{7}}};
  save_checkpoint(d, dir.file("a.ckpt"), o);

  CliRun info = anvil_cli("ckpt info " + dir.file("a.ckpt"));
  EXPECT_EQ(info.code, 0) << info.out;
  EXPECT_TRUE(has(info.out, "verified-crc")) << info.out;
  EXPECT_TRUE(has(info.out, "fc.weight")) << info.out;
  EXPECT_TRUE(has(info.out, "Float32")) << info.out;
  EXPECT_TRUE(has(info.out, "[2,3]")) << info.out;
  EXPECT_TRUE(has(info.out, "\"hello\"")) << info.out;
  EXPECT_TRUE(has(info.out, "= 7")) << info.out;

  CliRun ok = anvil_cli("ckpt verify --require-integrity --protobuf " + dir.file("a.ckpt"));
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_TRUE(has(ok.out, "OK")) << ok.out;

  auto bytes = testutil::read_bytes(dir.file("a.ckpt"));
  testutil::write_bytes(dir.file("cut.ckpt"), bytes.data(), bytes.size() - 30);
  CliRun bad = anvil_cli("ckpt verify " + dir.file("cut.ckpt"));
  EXPECT_EQ(bad.code, 1) << bad.out;
  EXPECT_TRUE(has(bad.out, "CKPT_")) << bad.out;
  EXPECT_TRUE(has(bad.out, dir.file("cut.ckpt"))) << bad.out;

  d.set("fc.weight", Tensor::from_vector<float>({1, 2, 3, 4, 5, 6.5f}, Shape{2, 3}));
  d.set("extra", Tensor::zeros(Shape{1}));
  save_checkpoint(d, dir.file("b.ckpt"), o);
  CliRun diff = anvil_cli("ckpt diff " + dir.file("a.ckpt") + " " + dir.file("b.ckpt"));
  EXPECT_EQ(diff.code, 1) << diff.out;
  EXPECT_TRUE(has(diff.out, "only in B: extra")) << diff.out;
  EXPECT_TRUE(has(diff.out, "fc.weight: 1 of 6 elements differ")) << diff.out;
  CliRun tol = anvil_cli("ckpt diff --atol 1 " + dir.file("a.ckpt") + " " + dir.file("a.ckpt"));
  EXPECT_EQ(tol.code, 0) << tol.out;

  CliRun missing = anvil_cli("ckpt info " + dir.file("nope.ckpt"));
  EXPECT_EQ(missing.code, 2) << missing.out;
  EXPECT_TRUE(has(missing.out, "CKPT_NOT_FOUND")) << missing.out;
}

TEST(CkptCli, VerifyRejectsTheStrategyFile) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  const std::string neg = testutil::ms_fixture("goldenstick_ckpt_strategy_rank_0_NOT_A_CHECKPOINT.ckpt");
  CliRun r = anvil_cli("ckpt verify " + neg);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(has(r.out, "CKPT_NOT_A_CHECKPOINT")) << r.out;
  CliRun ok = anvil_cli("ckpt verify --protobuf " + testutil::ms_fixture("mindarmour_checkpoint_lenet-10_1875.ckpt"));
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_TRUE(has(ok.out, "unverified")) << ok.out;
}
#else
TEST(CkptCli, NotBuilt) { GTEST_SKIP() << "tools/ (the anvil CLI) is not part of this build"; }
#endif

}  // namespace
}  // namespace anvil
