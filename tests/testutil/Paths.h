// Where tests find third-party fixtures and their own data.
#pragma once

#include <string>

namespace anvil::testutil {

/// ../shared/fixtures beside the checkout, or $ANVIL_FIXTURES_DIR when set.
std::string fixtures_dir();
/// True when fixtures_dir() exists; tests that need it call ANVIL_SKIP_WITHOUT_FIXTURES().
bool have_fixtures();
/// tests/data in the source tree.
std::string test_data_dir();
/// The running test binary (/proc/self/exe), for tests that re-run it as a child; "" when unknown.
std::string self_exe();

}  // namespace anvil::testutil

#define ANVIL_SKIP_WITHOUT_FIXTURES()                                                           \
  do {                                                                                           \
    if (!::anvil::testutil::have_fixtures())                                                     \
      GTEST_SKIP() << "fixtures folder not found: " << ::anvil::testutil::fixtures_dir()         \
                   << " (set ANVIL_FIXTURES_DIR)";                                               \
  } while (0)
