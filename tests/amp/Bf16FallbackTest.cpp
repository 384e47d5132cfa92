// Mixed precision on a CPU where oneDNN has no bfloat16 convolution/matmul: the oneDNN backend falls back
// to the reference backend's bf16 emulation (one warning) instead of failing. The CPU here has AMX, so
// the parent re-runs this binary with ONEDNN_MAX_CPU_ISA=AVX2 (oneDNN then offers no bf16 kernels) and
// the child checks that conv forward/backward and linear under bf16 equal the reference emulation
// bit for bit (the native oneDNN bf16 path would differ in the accumulation order).
#include <gtest/gtest.h>


#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "framework/backend/Backend.h"
#include "framework/backend/ComputePrecision.h"
#include "framework/backend/onednn/OneDnnBackend.h"
#include "framework/backend/reference/ReferenceBackend.h"
#include "framework/core/Random.h"
#include "tests/testutil/TempDir.h"
#include "tests/testutil/Paths.h"

using namespace anvil;

namespace {

constexpr const char* kChildEnv = "ANVIL_BF16_FALLBACK_CHILD";

Tensor random_tensor(const Shape& s, Generator& g) {
  Tensor t = Tensor::empty(s);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(g.uniform(-1.0, 1.0));
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) == 0;
}

}  // namespace

// The child half: only meaningful with ONEDNN_MAX_CPU_ISA=AVX2 set by the parent test below.
TEST(Bf16FallbackChild, OneDnnEqualsTheReferenceEmulation) {
  if (!std::getenv(kChildEnv)) GTEST_SKIP() << "helper for Bf16Fallback.WithoutBf16KernelsO2StillRuns";
  Generator g(5);
  OneDnnBackend dnn;
  ReferenceBackend ref;
  ComputePrecisionScope bf16(ComputePrecision::kBF16);
  const Tensor x = random_tensor(Shape{2, 3, 8, 8}, g), w = random_tensor(Shape{4, 3, 3, 3}, g),
               b = random_tensor(Shape{4}, g);
  const Conv2dParams p{.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
  const Tensor y = dnn.conv2d_forward(x, w, b, p);
  EXPECT_TRUE(same_bytes(y, ref.conv2d_forward(x, w, b, p)));
  const Tensor dy = random_tensor(y.shape(), g);
  EXPECT_TRUE(same_bytes(dnn.conv2d_backward_data(dy, w, x.shape(), p), ref.conv2d_backward_data(dy, w, x.shape(), p)));
  EXPECT_TRUE(same_bytes(dnn.conv2d_backward_weights(dy, x, w.shape(), true, p).dw,
                         ref.conv2d_backward_weights(dy, x, w.shape(), true, p).dw));
  const Tensor a = random_tensor(Shape{5, 7}, g), wl = random_tensor(Shape{3, 7}, g);
  EXPECT_TRUE(same_bytes(dnn.linear_forward(a, wl, Tensor()), ref.linear_forward(a, wl, Tensor())));
  EXPECT_TRUE(same_bytes(dnn.matmul(a, wl, false, true), ref.matmul(a, wl, false, true)));
}

TEST(Bf16Fallback, WithoutBf16KernelsO2StillRuns) {
  const std::string exe = testutil::self_exe();
  ASSERT_FALSE(exe.empty());
  testutil::TempDir dir;
  const std::string log = dir.file("child.txt");
  const std::string cmd = std::string(kChildEnv) + "=1 ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 " + exe +
                          " --gtest_filter=Bf16FallbackChild.* > " + log + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::string out;
  if (std::FILE* f = std::fopen(log.c_str(), "r")) {
    char buf[512];
    while (std::fgets(buf, sizeof buf, f)) out += buf;
    std::fclose(f);
  }
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("[  PASSED  ] 1 test"), std::string::npos) << out;
  EXPECT_NE(out.find("runs the reference backend's bfloat16 emulation"), std::string::npos) << out;
}
