#include "tests/testutil/Paths.h"

#include <cstdlib>
#include <filesystem>

namespace anvil::testutil {

std::string fixtures_dir() {
  if (const char* e = std::getenv("ANVIL_FIXTURES_DIR"); e && *e) return e;
  return ANVIL_DEFAULT_FIXTURES_DIR;
}

bool have_fixtures() { return std::filesystem::is_directory(fixtures_dir()); }

std::string test_data_dir() { return ANVIL_TEST_DATA_DIR; }

std::string self_exe() {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.string();
}

}  // namespace anvil::testutil
