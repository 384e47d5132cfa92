// retention_to_delete: the pure retention policy (spec §6).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "callbacks/Retention.h"

using namespace anvil;

namespace {

constexpr std::int64_t kMin = 60LL * 1000000000LL;
constexpr std::int64_t kStart = 1000 * kMin;

// One save per minute for `n` minutes: f0 at the run's start, f1 one minute later, ...
std::vector<RetentionCandidate> per_minute(int n) {
  std::vector<RetentionCandidate> c;
  for (int i = 0; i < n; ++i) c.push_back({fmt::format("f{}", i), i + 1, kStart + i * kMin});  // (operator+ trips g++ 12 -Wrestrict)
  return c;
}

std::vector<std::string> survivors(const std::vector<RetentionCandidate>& c, const RetentionPolicy& p) {
  auto doomed = retention_to_delete(c, p);
  std::vector<std::string> out;
  for (const auto& x : c)
    if (std::find(doomed.begin(), doomed.end(), x.file) == doomed.end()) out.push_back(x.file);
  return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST(Retention, EmptyInputDeletesNothing) {
  EXPECT_TRUE(retention_to_delete({}, {.keep_checkpoint_max = 2}).empty());
}

TEST(Retention, KeepMaxKeepsTheNewestByStepThenTime) {
  EXPECT_EQ(survivors(per_minute(5), {.keep_checkpoint_max = 2, .run_start_time_ns = kStart}), (V{"f3", "f4"}));
  // Input order does not matter; output keeps the input order.
  auto c = per_minute(5);
  std::reverse(c.begin(), c.end());
  EXPECT_EQ(retention_to_delete(c, {.keep_checkpoint_max = 2, .run_start_time_ns = kStart}), (V{"f2", "f1", "f0"}));
  // Step decides before time (a clock that went backwards).
  std::vector<RetentionCandidate> odd = {{"a", 1, kStart + 5 * kMin}, {"b", 2, kStart}, {"c", 3, kStart + kMin}};
  EXPECT_EQ(survivors(odd, {.keep_checkpoint_max = 2}), (V{"b", "c"}));
  // Fewer candidates than K: nothing to delete.
  EXPECT_TRUE(retention_to_delete(per_minute(2), {.keep_checkpoint_max = 5}).empty());
}

TEST(Retention, PerNMinutesUsesAFixedGridFromTheRunStart) {
  // Spec §6: one save per minute for 20 minutes, N=5 -> f0, f5, f10, f15 and the latest f19.
  EXPECT_EQ(survivors(per_minute(20), {.keep_checkpoint_per_n_minutes = 5, .run_start_time_ns = kStart}),
            (V{"f0", "f5", "f10", "f15", "f19"}));
  // K=2, N=5 -> the union: f0, f5, f10, f15, f18, f19.
  EXPECT_EQ(survivors(per_minute(20),
                      {.keep_checkpoint_max = 2, .keep_checkpoint_per_n_minutes = 5, .run_start_time_ns = kStart}),
            (V{"f0", "f5", "f10", "f15", "f18", "f19"}));
  // The grid is anchored at the run's first start, not at the first checkpoint: start 2 minutes
  // earlier and the cells become [-2,3), [3,8), ... in checkpoint minutes.
  EXPECT_EQ(survivors(per_minute(10), {.keep_checkpoint_per_n_minutes = 5, .run_start_time_ns = kStart - 2 * kMin}),
            (V{"f0", "f3", "f8", "f9"}));
}

TEST(Retention, GridCellKeepsTheEarliestEvenWhenListedLater) {
  std::vector<RetentionCandidate> c = {{"late", 2, kStart + 3 * kMin}, {"early", 1, kStart + kMin},
                                       {"next", 3, kStart + 6 * kMin}};
  EXPECT_EQ(retention_to_delete(c, {.keep_checkpoint_per_n_minutes = 5, .run_start_time_ns = kStart}), (V{"late"}));
}

TEST(Retention, BestKByMetric) {
  auto c = per_minute(6);
  const double loss[] = {0.9, 0.3, 0.5, 0.2, 0.8, 0.7};
  for (int i = 0; i < 6; ++i) c[i].metric = loss[i];
  // min: best two are f3 (0.2), f1 (0.3); plus the newest f5.
  EXPECT_EQ(survivors(c, {.keep_best_k = 2}), (V{"f1", "f3", "f5"}));
  // max: f0 (0.9), f4 (0.8); plus f5.
  EXPECT_EQ(survivors(c, {.keep_best_k = 2, .best_is_max = true}), (V{"f0", "f4", "f5"}));
  // Union with keep_max=1.
  EXPECT_EQ(survivors(c, {.keep_checkpoint_max = 1, .keep_best_k = 1}), (V{"f3", "f5"}));
  // Candidates without a metric are not kept by this rule; ties go to the newer.
  c[3].metric.reset();
  c[2].metric = 0.3;
  EXPECT_EQ(survivors(c, {.keep_best_k = 1}), (V{"f2", "f5"}));
}

TEST(Retention, LatestAndPinnedAreAlwaysKept) {
  auto c = per_minute(4);
  c[1].pinned = true;
  // All rules off: only the latest and the pinned survive.
  EXPECT_EQ(survivors(c, {}), (V{"f1", "f3"}));
}
