#include <gtest/gtest.h>

#include "framework/autograd/GradMode.h"
#include "framework/ops/Trace.h"
#include "models/LeNet5.h"

using namespace anvil;

namespace {
class Recorder : public ops::OpTracer {
 public:
  void on_op(const ops::TracedOp& op) override { ops.push_back(op); }
  std::vector<ops::TracedOp> ops;
};
}  // namespace

TEST(Trace, LeNetForwardIsRecordedInOrderWithConnectedValues) {
  models::LeNet5 net;
  net.set_train(false);
  Recorder rec;
  Tensor x = Tensor::zeros(Shape{2, 1, 32, 32});
  Tensor y;
  {
    NoGradGuard ng;
    ops::TraceScope scope(rec);
    y = net.forward(x);
  }
  using K = ops::OpKind;
  std::vector<K> expect{K::kConv2d, K::kEltwise, K::kPool2d, K::kConv2d, K::kEltwise, K::kPool2d,
                        K::kReshape, K::kLinear, K::kEltwise, K::kLinear, K::kEltwise, K::kLinear};
  ASSERT_EQ(rec.ops.size(), expect.size());
  for (std::size_t i = 0; i < expect.size(); ++i) EXPECT_EQ(rec.ops[i].kind, expect[i]) << i;
  EXPECT_TRUE(rec.ops.front().inputs[0].same(x));
  auto params = net.parameters_and_names();
  EXPECT_TRUE(rec.ops.front().inputs[1].same(params[0].second));  // conv1.weight
  for (std::size_t i = 1; i < rec.ops.size(); ++i) EXPECT_TRUE(rec.ops[i].inputs[0].same(rec.ops[i - 1].output)) << i;
  EXPECT_TRUE(rec.ops.back().output.same(y));
  // Outside the scope nothing is recorded.
  (void)net.forward(x);
  EXPECT_EQ(rec.ops.size(), expect.size());
}
