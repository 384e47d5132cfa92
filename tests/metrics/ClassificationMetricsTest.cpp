// Precision, Recall, Fbeta/F1, MAE, MSE and the named top-k metrics against hand-computed cases.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "framework/core/Error.h"
#include "framework/metrics/Fbeta.h"
#include "framework/metrics/Precision.h"
#include "framework/metrics/Recall.h"
#include "framework/metrics/RegressionMetric.h"
#include "framework/metrics/TopKCategoricalAccuracy.h"
#include "framework/tensor/Tensor.h"
#include "tests/testutil/Errors.h"

using namespace anvil;
using anvil::testutil::error_of;
using anvil::testutil::has;

namespace {

// 5 samples, 3 classes. Predictions (argmax, first max on ties): 0, 1, 1, 0 (tie), 1; labels 0, 0, 1, 1, 2.
//   class 0: predicted 2 (r0, r3), actual 2 (r0, r1), TP 1
//   class 1: predicted 3 (r1, r2, r4), actual 2 (r2, r3), TP 1
//   class 2: predicted 0, actual 1, TP 0  (never predicted)
Tensor scores5() {
  return Tensor::from_vector<float>({0.9f, 0.05f, 0.05f, 0.1f, 0.8f, 0.1f, 0.2f, 0.7f, 0.1f, 0.5f, 0.5f, 0.0f,
                                     0.3f, 0.6f, 0.1f},
                                    Shape{5, 3});
}
Tensor labels5() { return Tensor::from_vector<std::int32_t>({0, 0, 1, 1, 2}, Shape{5}); }

void expect_near_vec(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << "class " << i;
}

}  // namespace

TEST(Precision, PerClassAndAverageWithNeverPredictedClass) {
  Precision p;
  EXPECT_EQ(p.name(), "precision");
  p.update(scores5(), labels5());
  EXPECT_EQ(p.num_classes(), 3);
  EXPECT_EQ(p.true_positives(), (std::vector<std::int64_t>{1, 1, 0}));
  EXPECT_EQ(p.predicted_positives(), (std::vector<std::int64_t>{2, 3, 0}));
  EXPECT_EQ(p.actual_positives(), (std::vector<std::int64_t>{2, 2, 1}));
  expect_near_vec(p.per_class(), {0.5, 1.0 / 3.0, 0.0});  // class 2 never predicted -> 0 (MindSpore)
  EXPECT_NEAR(p.eval(), (0.5 + 1.0 / 3.0) / 3.0, 1e-12);
}

TEST(Recall, PerClassAverageAndAccumulation) {
  Recall r;
  EXPECT_EQ(r.name(), "recall");
  r.update(scores5(), labels5());
  expect_near_vec(r.per_class(), {0.5, 0.5, 0.0});
  EXPECT_NEAR(r.eval(), 1.0 / 3.0, 1e-12);
  // A second batch accumulates: one sample of class 2 predicted correctly -> class 2 recall 1/2.
  r.update(Tensor::from_vector<float>({0, 0, 1}, Shape{1, 3}), Tensor::from_vector<std::int64_t>({2}, Shape{1}));
  expect_near_vec(r.per_class(), {0.5, 0.5, 0.5});
  EXPECT_EQ(r.total(), 6);
}

TEST(Fbeta, F1MatchesMindSporeExampleAndHandComputedCase) {
  F1 f1;
  EXPECT_EQ(f1.name(), "f1");
  // MindSpore's documented example: [[0.2,0.5],[0.3,0.1],[0.9,0.6]], y = [1,0,1] -> [2/3, 2/3].
  f1.update(Tensor::from_vector<double>({0.2, 0.5, 0.3, 0.1, 0.9, 0.6}, Shape{3, 2}),
            Tensor::from_vector<std::int32_t>({1, 0, 1}, Shape{3}));
  expect_near_vec(f1.per_class(), {2.0 / 3.0, 2.0 / 3.0});
  f1.clear();
  f1.update(scores5(), labels5());
  expect_near_vec(f1.per_class(), {0.5, 0.4, 0.0});  // 2TP / (actual + predicted)
  EXPECT_NEAR(f1.eval(), 0.3, 1e-12);

  Fbeta f2(2.0);
  f2.update(scores5(), labels5());
  expect_near_vec(f2.per_class(), {5.0 / 10.0, 5.0 / 11.0, 0.0});  // 5TP / (4 actual + predicted)
  EXPECT_TRUE(has(error_of([] { Fbeta bad(0.0); }), "beta"));
}

TEST(PerClassMetric, ClassAbsentEverywhereIsZeroNotNan) {
  // 3 classes, class 2 neither predicted nor present: precision, recall and F1 of class 2 are 0.
  Tensor s = Tensor::from_vector<float>({1, 0, 0, 0, 1, 0}, Shape{2, 3});
  Tensor y = Tensor::from_vector<std::int32_t>({0, 1}, Shape{2});
  Precision p;
  Recall r;
  F1 f;
  p.update(s, y);
  r.update(s, y);
  f.update(s, y);
  expect_near_vec(p.per_class(), {1, 1, 0});
  expect_near_vec(r.per_class(), {1, 1, 0});
  expect_near_vec(f.per_class(), {1, 1, 0});
  EXPECT_NEAR(f.eval(), 2.0 / 3.0, 1e-12);
}

TEST(PerClassMetric, OneHotLabelsClearAndErrors) {
  Precision p;
  Tensor onehot = Tensor::from_vector<float>({1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1}, Shape{5, 3});  // labels 0,0,1,1,2
  p.update(scores5(), onehot);
  expect_near_vec(p.per_class(), {0.5, 1.0 / 3.0, 0.0});
  p.clear();
  EXPECT_EQ(p.num_classes(), 0);
  EXPECT_TRUE(has(error_of([&] { (void)p.eval(); }), "no samples"));

  // Bad shapes name the tensor; the metric is unchanged.
  p.update(scores5(), labels5());
  const std::string rank_err = error_of([&] { p.update(Tensor::zeros(Shape{5}), labels5()); });
  EXPECT_TRUE(has(rank_err, "Precision.update")) << rank_err;
  EXPECT_TRUE(has(rank_err, "[5]")) << rank_err;
  const std::string classes_err = error_of([&] { p.update(Tensor::zeros(Shape{5, 4}), labels5()); });
  EXPECT_TRUE(has(classes_err, "4 classes")) << classes_err;
  EXPECT_TRUE(has(classes_err, "[5,4]")) << classes_err;
  const std::string n_err = error_of([&] { p.update(Tensor::zeros(Shape{4, 3}), labels5()); });
  EXPECT_TRUE(has(n_err, "5 labels for 4 predictions")) << n_err;
  EXPECT_EQ(p.total(), 5);
  expect_near_vec(p.per_class(), {0.5, 1.0 / 3.0, 0.0});
}

TEST(MAE, MeanAbsoluteErrorAndClear) {
  MAE mae;
  EXPECT_EQ(mae.name(), "mae");
  // |0.5-1| + |2-2| + |-1-1| = 0.5 + 0 + 2 = 2.5 over 3 samples; targets [3] mix with predictions [3, 1].
  mae.update(Tensor::from_vector<float>({0.5f, 2.0f, -1.0f}, Shape{3, 1}),
             Tensor::from_vector<float>({1.0f, 2.0f, 1.0f}, Shape{3}));
  EXPECT_NEAR(mae.eval(), 2.5 / 3.0, 1e-7);
  // int targets; second batch: |4-1| = 3 -> (2.5 + 3) / 4
  mae.update(Tensor::from_vector<double>({4.0}, Shape{1}), Tensor::from_vector<std::int32_t>({1}, Shape{1}));
  EXPECT_NEAR(mae.eval(), 5.5 / 4.0, 1e-7);
  mae.clear();
  EXPECT_EQ(mae.samples(), 0);
  EXPECT_THROW((void)mae.eval(), Error);
}

TEST(MSE, SumsOverElementsPerSampleLikeMindSpore) {
  MSE mse;
  EXPECT_EQ(mse.name(), "mse");
  // 2 samples of 2 values: (1-0)^2 + (2-0)^2 + (0-0)^2 + (3-1)^2 = 1 + 4 + 0 + 4 = 9, / 2 samples.
  mse.update(Tensor::from_vector<float>({1, 2, 0, 3}, Shape{2, 2}), Tensor::from_vector<float>({0, 0, 0, 1}, Shape{2, 2}));
  EXPECT_NEAR(mse.eval(), 4.5, 1e-12);
  const std::string err = error_of([&] { mse.update(Tensor::zeros(Shape{2, 2}), Tensor::zeros(Shape{3})); });
  EXPECT_TRUE(has(err, "MSE.update")) << err;
  EXPECT_TRUE(has(err, "[2,2]")) << err;
  EXPECT_TRUE(has(err, "[3]")) << err;
  EXPECT_EQ(mse.samples(), 2);
  EXPECT_THROW(mse.update(Tensor::zeros(Shape{2}, DType::kI32), Tensor::zeros(Shape{2})), Error);
}

TEST(TopKCategoricalAccuracy, NamedTop1AndTop5) {
  Top1CategoricalAccuracy top1;
  Top5CategoricalAccuracy top5;
  EXPECT_EQ(top1.name(), "top_1_accuracy");
  EXPECT_EQ(top5.name(), "top_5_accuracy");
  EXPECT_EQ(top1.k(), 1);
  EXPECT_EQ(top5.k(), 5);
  // 6 classes; label of row 0 ranks 1st, row 1 ranks 6th, row 2 ranks 4th.
  Tensor s = Tensor::from_vector<float>({9, 1, 2, 3, 4, 5,  //
                                         0, 1, 2, 3, 4, 5,  //
                                         0, 5, 4, 3, 1, 2},
                                        Shape{3, 6});
  Tensor y = Tensor::from_vector<std::int32_t>({0, 0, 5}, Shape{3});
  top1.update(s, y);
  top5.update(s, y);
  EXPECT_DOUBLE_EQ(top1.eval(), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(top5.eval(), 2.0 / 3.0);
}
