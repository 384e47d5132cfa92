// .ckpt <-> OneFlow variable directory: the same state round-trips (names, shapes, dtypes, bytes).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "serialization/Checkpoint.h"
#include "serialization/ParamDict.h"
#include "serialization/oneflow/Convert.h"
#include "tests/testutil/Paths.h"
#include "tests/testutil/TempDir.h"

using namespace anvil;
using namespace anvil::oneflow;

TEST(OneFlowConvert, CkptToDirectoryAndBack) {
  testutil::TempDir td;
  NamedTensors ts;
  ts.emplace_back("conv1.weight", Tensor::full(Shape({4, 3, 3, 3}), 0.25));
  ts.emplace_back("fc.bias", Tensor::from_vector<double>({1, 2, 3}, Shape({3})));
  ts.emplace_back("global_step", Tensor::from_vector<std::int64_t>({42}, Shape({1})));
  ts.emplace_back("scalar", Tensor::scalar(1.5));
  save_checkpoint(ts, td.file("a.ckpt"));
  auto rep = ckpt_to_variable_directory(td.file("a.ckpt"), td.file("dir"));
  EXPECT_EQ(rep.tensors, 4u);
  EXPECT_TRUE(std::filesystem::exists(td.file("dir/snapshot_done")));
  // Refuses a non-empty target.
  EXPECT_THROW(ckpt_to_variable_directory(td.file("a.ckpt"), td.file("dir")), Error);
  variable_directory_to_ckpt(td.file("dir"), td.file("b.ckpt"));
  ParamDict back = load_checkpoint(td.file("b.ckpt"));
  ASSERT_EQ(back.size(), ts.size());
  for (auto& [n, t] : ts) {
    const Tensor& u = back.tensor(n);
    EXPECT_EQ(u.shape(), t.shape()) << n;
    EXPECT_EQ(u.dtype(), t.dtype()) << n;
    EXPECT_EQ(std::memcmp(u.data_ptr(), t.data_ptr(), t.nbytes()), 0) << n;
  }
  std::string d = describe_variable_directory(td.file("dir"));
  EXPECT_NE(d.find("conv1.weight"), std::string::npos);
  EXPECT_NE(d.find("kDouble"), std::string::npos);
  EXPECT_NE(d.find("(4, 3, 3, 3)"), std::string::npos);
}

TEST(OneFlowConvert, FixtureToCkptAndNegativeDescribed) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  testutil::TempDir td;
  const std::string of = testutil::fixtures_dir() + "/oneflow/";
  auto rep = variable_directory_to_ckpt(
      of + "Oneflow-Inc__oneflow/python/oneflow/test/modules/save_load_test_data/3x3_i3o3_conv2d_params", td.file("c.ckpt"));
  EXPECT_EQ(rep.tensors, 2u);
  ParamDict p = load_checkpoint(td.file("c.ckpt"));
  EXPECT_FLOAT_EQ(p.tensor("bias").to_vector<float>()[1], -0.16549598f);
  std::string d = describe_variable_directory(of + "Oneflow-Inc__oneflow_convert/nchw2nhwc_tool/resnet50_nhwc");
  EXPECT_NE(d.find("SIZE MISMATCH"), std::string::npos) << d;
  EXPECT_THROW(variable_directory_to_ckpt(of + "Oneflow-Inc__oneflow_convert/nchw2nhwc_tool/resnet50_nhwc",
                                          td.file("bad.ckpt")),
               Error);
  EXPECT_FALSE(std::filesystem::exists(td.file("bad.ckpt")));
}
