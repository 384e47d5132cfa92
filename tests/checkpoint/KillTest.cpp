// Crash safety of ModelCheckpoint (issue 4 "kill test"), see KillHarness.h: 50 random SIGKILLs of a
// resuming child trainer with a checkpoint every step (sync saves), and 20 with async saves. More kills,
// with durable writes, run in tests/slow/KillSlowTest.cpp (label slow).
#include <gtest/gtest.h>

#include "tests/checkpoint/KillHarness.h"
#include "tests/testutil/TempDir.h"

using namespace anvil;

TEST(ModelCheckpointKill, RandomSigkillsNeverExposeATornCheckpoint) {
  testutil::TempDir dir;
  const int max_seen = testutil::run_kill_series(dir.path().string(), {.kills = 50});
  EXPECT_GT(max_seen, 0) << "no child ever committed a checkpoint";
}

TEST(ModelCheckpointKill, RandomSigkillsDuringAsyncSaves) {
  testutil::TempDir dir;
  const int max_seen = testutil::run_kill_series(dir.path().string(), {.kills = 20, .seed = 777, .async = true});
  EXPECT_GT(max_seen, 0) << "no child ever committed a checkpoint";
}
