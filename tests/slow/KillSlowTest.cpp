// The kill test at length (label slow): 300 random SIGKILLs with durable writes (fsync widens the
// windows between the temp write, the renames and the pruning), 300 with async saves. See
// tests/checkpoint/KillHarness.h for the invariants checked after every kill.
#include <gtest/gtest.h>

#include "tests/checkpoint/KillHarness.h"
#include "tests/testutil/TempDir.h"

using namespace anvil;

TEST(ModelCheckpointKillSlow, ThreeHundredKillsWithDurableWrites) {
  testutil::TempDir dir;
  const int max_seen = testutil::run_kill_series(
      dir.path().string(), {.kills = 300, .seed = 4242, .durable = true, .max_delay_us = 40000});
  EXPECT_GT(max_seen, 0) << "no child ever committed a checkpoint";
}

TEST(ModelCheckpointKillSlow, ThreeHundredKillsWithAsyncDurableWrites) {
  testutil::TempDir dir;
  const int max_seen = testutil::run_kill_series(
      dir.path().string(), {.kills = 300, .seed = 99, .durable = true, .async = true, .max_delay_us = 40000});
  EXPECT_GT(max_seen, 0) << "no child ever committed a checkpoint";
}
