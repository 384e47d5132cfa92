// anvil_export_main (the `anvil export` subcommand).
#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "models/LeNet5.h"
#include "serialization/Checkpoint.h"
#include "serialization/onnx/ExportCli.h"
#include "tests/onnx/OnnxTestUtil.h"
#include "tests/testutil/TempDir.h"

using namespace anvil;
namespace fs = std::filesystem;

namespace {

struct CliResult {
  int code;
  std::string out, err;
};

CliResult run_cli(std::vector<std::string> args) {
  args.insert(args.begin(), "export");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  const int code = anvil_export_main(static_cast<int>(argv.size()), argv.data());
  CliResult r{code, testing::internal::GetCapturedStdout(), testing::internal::GetCapturedStderr()};
  return r;
}

}  // namespace

TEST(ExportCli, LeNetFromCheckpointWithChecker) {
  testutil::TempDir dir;
  Generator g(4);
  models::LeNet5 trained(10, 1, &g);
  save_checkpoint(trained, dir.file("lenet.ckpt"), SaveOptions{.durable = false});
  auto r = run_cli({"--model", "lenet", "--ckpt", dir.file("lenet.ckpt"), "--out", dir.file("lenet")});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("exported lenet (LeNet5, 61684 parameters from "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("onnx checker: OK"), std::string::npos) << r.out;
  ASSERT_TRUE(fs::exists(dir.file("lenet.onnx")));
  // The file holds the checkpoint's weights, not the CLI's random initialization.
  auto m = testutil::load_onnx(dir.file("lenet.onnx"));
  auto params = trained.parameters_and_names();
  ASSERT_EQ(m.graph().initializer_size(), static_cast<int>(params.size()));
  for (int i = 0; i < m.graph().initializer_size(); ++i) {
    const Tensor& p = params[static_cast<std::size_t>(i)].second;
    ASSERT_EQ(m.graph().initializer(i).raw_data().size(), p.nbytes());
    EXPECT_EQ(std::memcmp(m.graph().initializer(i).raw_data().data(), p.data_ptr(), p.nbytes()), 0);
  }
}

TEST(ExportCli, VerifyWithOnnxRuntime) {
  ANVIL_SKIP_WITHOUT_ORT();
  testutil::TempDir dir;
  auto r = run_cli({"--model", "resnet18", "--small-input", "--in-channels", "1", "--input-size", "28", "--base-width",
                    "8", "--out", dir.file("r18.onnx"), "--verify"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("batch 1: max abs error"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("batch 3: max abs error"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("FAILED"), std::string::npos) << r.out;
}

TEST(ExportCli, UsageAndExportErrors) {
  testutil::TempDir dir;
  auto r = run_cli({"--model", "vgg", "--out", dir.file("x")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown model 'vgg'"), std::string::npos) << r.err;
  r = run_cli({"--model", "lenet"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("usage: anvil export"), std::string::npos) << r.err;
  r = run_cli({"--model", "lenet", "--out", dir.file("x"), "--format", "MINDIR"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unsupported format 'MINDIR'"), std::string::npos) << r.err;
  r = run_cli({"--model", "lenet", "--out", dir.file("x"), "--opset", "18"});
  EXPECT_EQ(r.code, 2);
  r = run_cli({"--model", "lenet", "--out", dir.file("x"), "--ckpt", dir.file("missing.ckpt")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("missing.ckpt"), std::string::npos) << r.err;
  r = run_cli({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_FALSE(fs::exists(dir.file("x.onnx")));
}

TEST(ExportCli, MlpAndResNet50StaticBatchExternalData) {
  testutil::TempDir dir;
  auto r = run_cli({"--model", "mlp", "--hidden", "64,32", "--out", dir.file("mlp"), "--batch", "4", "--static-batch"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  auto m = testutil::load_onnx(dir.file("mlp.onnx"));
  EXPECT_EQ(m.graph().input(0).type().tensor_type().shape().dim(0).dim_value(), 4);
  r = run_cli({"--model", "resnet50", "--base-width", "4", "--input-size", "32", "--out", dir.file("r50"),
               "--external-data", "always", "--opset", "17"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("external data: "), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(dir.file("r50.onnx.data")));
  EXPECT_TRUE(testutil::onnx_check(dir.file("r50.onnx")));
}
