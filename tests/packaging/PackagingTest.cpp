// Packaging: `cmake --install` of this build tree yields a usable package. The test installs into a
// temporary prefix, configures and builds the out-of-tree project tests/consumer against it with
// find_package(Anvil REQUIRED) (CMAKE_PREFIX_PATH = prefix), and runs the consumer program, which builds
// a Dense layer and LeNet-5 and prints their output shapes. The consumer also compiles one translation
// unit that includes every installed header, so a header that needs a file the install left out (or a
// dependency AnvilConfig.cmake does not provide) fails here. ANVIL_PACKAGING_HEADERS=each in the
// environment compiles every installed header on its own instead (self-containedness; ~30 s on 2 cores).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <sys/wait.h>

#include "tests/testutil/TempDir.h"

namespace fs = std::filesystem;

namespace {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

CommandResult run(const std::string& command) {
  CommandResult r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string cmake() { return quote(ANVIL_CMAKE_COMMAND); }

// lib or lib64 etc.: wherever GNUInstallDirs put the package config.
fs::path find_config_dir(const fs::path& prefix) {
  for (const char* libdir : {"lib", "lib64", "lib/x86_64-linux-gnu"}) {
    fs::path p = prefix / libdir / "cmake" / "Anvil";
    if (fs::exists(p / "AnvilConfig.cmake")) return p;
  }
  return {};
}

TEST(Packaging, InstalledPackageBuildsAndRunsConsumer) {
  anvil::testutil::TempDir tmp;
  const fs::path prefix = tmp.path() / "prefix";
  const fs::path build = tmp.path() / "consumer-build";
  const fs::path consumer_src = fs::path(ANVIL_SOURCE_DIR) / "tests" / "consumer";
  const std::string build_type = ANVIL_BUILD_TYPE;

  // 1. Install this build tree.
  std::string install = cmake() + " --install " + quote(ANVIL_BINARY_DIR) + " --prefix " + quote(prefix.string());
  if (!build_type.empty()) install += " --config " + quote(build_type);
  CommandResult r = run(install);
  ASSERT_EQ(r.exit_code, 0) << install << "\n" << r.output;

  const fs::path config_dir = find_config_dir(prefix);
  ASSERT_FALSE(config_dir.empty()) << "no lib*/cmake/Anvil/AnvilConfig.cmake under " << prefix;
  EXPECT_TRUE(fs::exists(config_dir / "AnvilConfigVersion.cmake"));
  EXPECT_TRUE(fs::exists(config_dir / "AnvilTargets.cmake"));
  EXPECT_TRUE(fs::exists(config_dir.parent_path().parent_path() / "libanvil.so"));
  EXPECT_TRUE(fs::exists(prefix / "include" / "anvil" / "models" / "LeNet5.h"));
  EXPECT_TRUE(fs::exists(prefix / "include" / "anvil" / "framework" / "nn" / "layers" / "Dense.h"));

  // 2. Configure the consumer against the prefix only (no package registry, no build tree).
  std::string configure = cmake() + " -S " + quote(consumer_src.string()) + " -B " + quote(build.string()) +
                          " -G " + quote(ANVIL_CMAKE_GENERATOR) +
                          " -DCMAKE_PREFIX_PATH=" + quote(prefix.string()) +
                          " -DCMAKE_CXX_COMPILER=" + quote(ANVIL_CXX_COMPILER) +
                          " -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON" +
                          " -DCMAKE_FIND_PACKAGE_NO_SYSTEM_PACKAGE_REGISTRY=ON";
  if (!build_type.empty()) configure += " -DCMAKE_BUILD_TYPE=" + quote(build_type);
  if (const char* headers = std::getenv("ANVIL_PACKAGING_HEADERS"); headers && *headers)
    configure += " -DANVIL_CONSUMER_HEADERS=" + quote(headers);
  r = run(configure);
  ASSERT_EQ(r.exit_code, 0) << configure << "\n" << r.output;
  EXPECT_NE(r.output.find("Anvil found: " + config_dir.string()), std::string::npos)
      << "find_package(Anvil) did not pick the installed package under " << config_dir << ":\n" << r.output;

  // 3. Build it (main.cpp and the all-headers translation unit).
  std::string compile = cmake() + " --build " + quote(build.string()) + " -j 2";
  r = run(compile);
  ASSERT_EQ(r.exit_code, 0) << compile << "\n" << r.output;

  // 4. Run it.
  const fs::path exe = build / "anvil_consumer";
  ASSERT_TRUE(fs::exists(exe)) << exe;
  r = run(quote(exe.string()));
  ASSERT_EQ(r.exit_code, 0) << exe << "\n" << r.output;
  EXPECT_EQ(r.output, "dense [2,3]\nlenet5 [2,10]\n");
}

}  // namespace
