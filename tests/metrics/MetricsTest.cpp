#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "framework/core/Error.h"
#include "framework/metrics/Accuracy.h"
#include "framework/metrics/Loss.h"
#include "framework/metrics/TopKCategoricalAccuracy.h"
#include "framework/tensor/Tensor.h"

using namespace anvil;

namespace {

template <typename F>
void expect_error(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "expected an anvil::Error";
  } catch (const Error& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

Tensor logits(const std::vector<float>& v, std::int64_t n, std::int64_t c) {
  return Tensor::from_vector<float>(v, Shape{n, c});
}

Tensor labels32(const std::vector<std::int32_t>& v) {
  return Tensor::from_vector<std::int32_t>(v, Shape{static_cast<std::int64_t>(v.size())});
}

}  // namespace

TEST(Accuracy, ArgmaxWithFirstMaximumOnTies) {
  Accuracy acc;
  EXPECT_EQ(acc.name(), "accuracy");
  // predictions: 1, 0, 0 (tie -> first), 1
  acc.update(logits({0.1f, 0.9f, 0.8f, 0.2f, 0.5f, 0.5f, 0.3f, 0.7f}, 4, 2), labels32({1, 0, 1, 0}));
  EXPECT_EQ(acc.correct(), 2);
  EXPECT_DOUBLE_EQ(acc.eval(), 0.5);
  // int64 labels accumulate with the previous batch: 2 more correct of 2.
  acc.update(logits({0.0f, 1.0f, 0.0f, 3.0f, 2.0f, 1.0f}, 2, 3),
             Tensor::from_vector<std::int64_t>({1, 0}, Shape{2}));
  EXPECT_DOUBLE_EQ(acc.eval(), 4.0 / 6.0);
  acc.clear();
  expect_error([&] { (void)acc.eval(); }, {"no samples"});
}

TEST(Accuracy, OneHotLabelsAndFloat64Logits) {
  Accuracy acc;
  Tensor l = Tensor::from_vector<double>({2.0, 1.0, 0.0, -1.0, 5.0, 4.0}, Shape{2, 3});
  Tensor onehot = Tensor::from_vector<float>({1, 0, 0, 0, 0, 1}, Shape{2, 3});
  acc.update(l, onehot);  // sample 0 correct (class 0), sample 1 predicts 1, label 2
  EXPECT_DOUBLE_EQ(acc.eval(), 0.5);
}

TEST(Accuracy, RejectsBadInputWithoutChangingState) {
  Accuracy acc;
  acc.update(logits({1, 0}, 1, 2), labels32({0}));
  expect_error([&] { acc.update(logits({1, 0, 0, 1}, 2, 2), labels32({0, 2})); },
               {"Accuracy.update", "label 2 of sample 1", "[0, 2)"});
  expect_error([&] { acc.update(logits({1, 0, 0, 1}, 2, 2), labels32({0})); }, {"1 labels for 2 predictions"});
  expect_error([&] { acc.update(Tensor::from_vector<float>({1, 0}, Shape{2}), labels32({0})); },
               {"[N, C]", "float32[2]"});
  expect_error([&] { acc.update(logits({1, 0}, 1, 2), Tensor::from_vector<std::uint8_t>({0}, Shape{1})); },
               {"int32/int64"});
  EXPECT_EQ(acc.total(), 1);
  EXPECT_DOUBLE_EQ(acc.eval(), 1.0);
}

TEST(TopKCategoricalAccuracy, TopFiveOnHandMadeLogits) {
  TopKCategoricalAccuracy top5(5);
  EXPECT_EQ(top5.name(), "top_5_accuracy");
  EXPECT_EQ(top5.k(), 5);
  // 7 classes. Row 0: label 6 has the 5th highest score -> correct.
  // Row 1: label 0 has the 6th highest score -> wrong.
  // Row 2: label 3 ties with class 2 for 5th/6th place; 4 classes are strictly higher -> correct.
  // Row 3: label 1 is ranked first -> correct.
  const std::vector<float> v = {
      7, 6, 5, 4, 1, 0, 3,    // label 6: higher = 7,6,5,4 -> 4 < 5
      1, 7, 6, 5, 4, 3, 2,    // label 0: higher = 6 classes
      7, 6, 3, 3, 5, 4, 0,    // label 3: higher = 7,6,5,4 -> 4 (the tie with class 2 does not count)
      0, 9, 1, 2, 3, 4, 5,    // label 1
  };
  top5.update(logits(v, 4, 7), labels32({6, 0, 3, 1}));
  EXPECT_DOUBLE_EQ(top5.eval(), 0.75);
  top5.clear();
  expect_error([&] { (void)top5.eval(); }, {"top_5_accuracy", "no samples"});
}

TEST(TopKCategoricalAccuracy, TiesFavourTheLabelUnderTheStrictlyGreaterRule) {
  TopKCategoricalAccuracy top1(1), top2(2), top3(3);
  // scores [1, 3, 3, 0]: labels 1 and 2 tie for first place.
  Tensor l = logits({1, 3, 3, 0, 1, 3, 3, 0, 1, 3, 3, 0}, 3, 4);
  Tensor y = labels32({1, 2, 0});
  top1.update(l, y);
  top2.update(l, y);
  top3.update(l, y);
  EXPECT_DOUBLE_EQ(top1.eval(), 2.0 / 3.0);  // labels 1 and 2 both count
  EXPECT_DOUBLE_EQ(top2.eval(), 2.0 / 3.0);  // label 0 has 2 classes above it
  EXPECT_DOUBLE_EQ(top3.eval(), 1.0);
  TopKCategoricalAccuracy top10(10);  // k >= C: every sample is correct
  top10.update(l, y);
  EXPECT_DOUBLE_EQ(top10.eval(), 1.0);
  expect_error([] { TopKCategoricalAccuracy(0); }, {"k must be >= 1"});
  expect_error([&] { top1.update(l, labels32({1, 2, 4})); }, {"label 4", "[0, 4)"});
}

TEST(Loss, BatchSizeWeightedRunningMean) {
  Loss loss;
  EXPECT_EQ(loss.name(), "loss");
  loss.update(Tensor::scalar(2.0), Tensor::zeros(Shape{4}, DType::kI32));  // weight 4
  loss.update(Tensor::scalar(1.0), Tensor::zeros(Shape{2}, DType::kI32));  // weight 2
  EXPECT_DOUBLE_EQ(loss.eval(), (4 * 2.0 + 2 * 1.0) / 6.0);
  loss.clear();
  loss.update(Tensor::scalar(3.0), Tensor{});  // weight 1
  loss.update(Tensor::from_vector<float>({1.0f, 2.0f}, Shape{2}), Tensor{});  // 1-D: averaged to 1.5, weight 1
  EXPECT_DOUBLE_EQ(loss.eval(), (3.0 + 1.5) / 2.0);
  loss.update(Tensor::full(Shape{1}, 0.5, DType::kF64), Tensor::zeros(Shape{2}, DType::kI64));
  EXPECT_DOUBLE_EQ(loss.eval(), (3.0 + 1.5 + 2 * 0.5) / 4.0);
}

TEST(Loss, ErrorsAndEmpty) {
  Loss loss;
  expect_error([&] { (void)loss.eval(); }, {"no samples"});
  expect_error([&] { loss.update(Tensor{}, Tensor{}); }, {"undefined"});
  expect_error([&] { loss.update(Tensor::zeros(Shape{2, 2}), Tensor{}); }, {"float32[2,2]"});
  expect_error([&] { loss.update(Tensor::zeros(Shape{1}, DType::kI32), Tensor{}); }, {"int32[1]"});
  loss.update(Tensor::scalar(1.0), Tensor::zeros(Shape{0}, DType::kI32));  // empty batch: weight 0
  expect_error([&] { (void)loss.eval(); }, {"no samples"});
  EXPECT_THROW((void)loss.eval(), Error);
}
