// When initializers go to ONNX external data: the writer's decision under ExternalData::kAuto/kNever
// (with a lowered size limit), and — only with ANVIL_ONNX_LARGE_TEST=1, since it writes 2.3 GB — a real
// model over protobuf's 2 GiB limit, checked and run by ONNX Runtime.
#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>
#include <unistd.h>

#include "framework/autograd/GradMode.h"
#include "framework/nn/layers/Dense.h"
#include "serialization/onnx/Export.h"
#include "serialization/onnx/OnnxGraph.h"
#include "serialization/onnx/OnnxWriter.h"
#include "tests/onnx/OnnxTestUtil.h"
#include "tests/testutil/GradCheck.h"
#include "tests/testutil/TempDir.h"

using namespace anvil;
namespace fs = std::filesystem;

namespace {

onnx_export::Graph traced_dense(nn::Dense& net) {
  onnx_export::GraphBuilder b(net, 13, "test");
  Tensor x = Tensor::zeros({2, 16});
  b.add_input(x, "input", true);
  Tensor y;
  {
    NoGradGuard ng;
    ops::TraceScope scope(b);
    y = net.forward(x);
  }
  return b.finish(y, "output", true);
}

}  // namespace

TEST(OnnxExternalData, AutoSwitchesAboveTheLimitAndNeverRefuses) {
  testutil::TempDir dir;
  nn::Dense net(16, 16);  // weight 1024 bytes, bias 64 bytes
  auto graph = traced_dense(net);
  onnx_export::WriteOptions o{.durable = false};
  auto r = onnx_export::write_model(graph, dir.file("small.onnx"), o);
  EXPECT_TRUE(r.data_path.empty());
  EXPECT_TRUE(testutil::onnx_check(dir.file("small.onnx")));
  o.max_inline_bytes = 600;  // the weight no longer fits
  r = onnx_export::write_model(graph, dir.file("auto.onnx"), o);
  EXPECT_EQ(r.data_path, dir.file("auto.onnx.data"));
  EXPECT_EQ(fs::file_size(r.data_path), 1024u);  // the weight only: the bias stays inline
  EXPECT_TRUE(testutil::onnx_check(dir.file("auto.onnx")));
  o.external_data = ExternalData::kNever;
  try {
    onnx_export::write_model(graph, dir.file("never.onnx"), o);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("external data is off"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.file("never.onnx")));
  // Even external data cannot help when the inline rest is too big.
  o.external_data = ExternalData::kAuto;
  o.max_inline_bytes = 100;
  EXPECT_THROW(onnx_export::write_model(graph, dir.file("tiny.onnx"), o), Error);
  if (testutil::shared_ort()) {
    Tensor x = testutil::random_f32({3, 16}, 1);
    NoGradGuard ng;
    auto got = testutil::shared_ort()->run(dir.file("auto.onnx"), {x});
    EXPECT_TRUE(testutil::compare(net.forward(x), got.at(0)).ok());
  }
}

TEST(OnnxExternalData, ModelOverTwoGiB) {
  const char* on = std::getenv("ANVIL_ONNX_LARGE_TEST");
  if (!on || std::string(on) != "1") GTEST_SKIP() << "writes 2.3 GB: set ANVIL_ONNX_LARGE_TEST=1 to run";
  testutil::TempDir dir;
  const std::int64_t n = 24000;  // Dense(24000, 24000): 2.30e9 bytes of weight
  const std::uint64_t bytes = static_cast<std::uint64_t>(n) * n * 4;
  if (fs::space(dir.path()).available < bytes + (1ull << 30)) GTEST_SKIP() << "not enough disk in " << dir.path();
  const long pages = ::sysconf(_SC_AVPHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) < 3 * bytes)
    GTEST_SKIP() << "needs about " << 3 * (bytes >> 20) << " MiB of free memory";
  nn::Dense net(n, n, nn::DenseOptions{.has_bias = true});
  auto info = export_network(net, {testutil::random_f32({1, n}, 2)}, dir.file("big"), "ONNX",
                             ExportOptions{.durable = false});
  ASSERT_EQ(info.data_path, dir.file("big.onnx.data"));
  EXPECT_GE(fs::file_size(info.data_path), bytes);
  EXPECT_LT(fs::file_size(info.path), 1u << 20);
  EXPECT_TRUE(testutil::onnx_check(info.path));
  ANVIL_SKIP_WITHOUT_ORT();
  Tensor x = testutil::random_f32({2, n}, 3);
  auto got = testutil::shared_ort()->run(info.path, {x}, 600);
  NoGradGuard ng;
  auto r = testutil::compare(net.forward(x), got.at(0));
  EXPECT_TRUE(r.ok()) << r.max_abs_err << " vs scale " << r.scale;
}
