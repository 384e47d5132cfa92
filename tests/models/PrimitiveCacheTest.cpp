#include <gtest/gtest.h>

#include "framework/autograd/Engine.h"
#include "framework/backend/Backend.h"
#include "framework/backend/onednn/OneDnnBackend.h"
#include "framework/ops/Loss.h"
#include "models/LeNet5.h"
#include "tests/testutil/GradCheck.h"

using namespace anvil;

TEST(OneDnnPrimitiveCache, SecondIdenticalTrainingStepBuildsNothing) {
  auto& bk = dynamic_cast<OneDnnBackend&>(onednn_backend());
  BackendScope scope(bk);
  models::LeNet5 net;
  Tensor x = testutil::random_f32({8, 1, 32, 32}, 1);
  Tensor labels = Tensor::from_vector<std::int32_t>({0, 1, 2, 3, 4, 5, 6, 7}, Shape{8});
  auto step = [&] {
    Tensor loss = ops::softmax_cross_entropy(net.forward(x), labels);
    backward(loss);
    for (auto& [n, p] : net.parameters_and_names()) p.zero_grad();
  };
  step();
  const std::size_t after_first = bk.primitives_created();
  EXPECT_GT(after_first, 0u);
  step();
  EXPECT_EQ(bk.primitives_created(), after_first);
  // A different batch size is a different shape: new primitives are expected.
  x = testutil::random_f32({3, 1, 32, 32}, 2);
  labels = Tensor::from_vector<std::int32_t>({0, 1, 2}, Shape{3});
  step();
  EXPECT_GT(bk.primitives_created(), after_first);
}
