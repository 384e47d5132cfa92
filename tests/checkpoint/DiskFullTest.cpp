// A real full disk (issue 4 "disk full"): a forked child mounts a small tmpfs in its own mount namespace
// and trains with ModelCheckpoint(save_checkpoint_steps=1) until the file system fills up. The failing
// save must raise on the training thread (a FileError naming ENOSPC and the file), and every checkpoint
// committed before it must still load with require_integrity, with `<prefix>.latest` naming one of
// them. Sync and async saves. The child checks the directory itself (the parent cannot see inside the
// child's mount) and writes its findings to a report file beside the mount point.
#include <gtest/gtest.h>

#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "callbacks/ModelCheckpoint.h"
#include "framework/core/Error.h"
#include "serialization/Checkpoint.h"
#include "tests/testutil/TempDir.h"
#include "tests/train/TrainTestUtil.h"

using namespace anvil;
namespace fs = std::filesystem;

namespace {

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

// Enters a private mount namespace (as root directly, otherwise through a user namespace) and mounts a
// tmpfs of `kib` KiB on `dir`. Returns "" on success, else why not.
std::string mount_small_tmpfs(const std::string& dir, int kib) {
  const uid_t uid = getuid();
  const gid_t gid = getgid();
  if (unshare(CLONE_NEWNS) != 0) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return std::string("unshare: ") + std::strerror(errno);
    write_file("/proc/self/setgroups", "deny");
    if (!write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n") ||
        !write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n"))
      return "cannot write uid_map/gid_map";
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return std::string("mount --make-rprivate /: ") + std::strerror(errno);
  const std::string opts = "size=" + std::to_string(kib) + "k";
  if (mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) != 0) return std::string("mount tmpfs: ") + std::strerror(errno);
  return "";
}

// The child: trains until the disk is full, then checks the directory. Report lines: "skip <why>",
// "error <what>", "saved <n>", "failed <message>", "ok".
[[noreturn]] void child(const std::string& mnt, const std::string& report, bool async) {
  std::ostringstream out;
  auto finish = [&](int code) {
    write_file(report, out.str());
    _exit(code);
  };
  try {
    if (const std::string why = mount_small_tmpfs(mnt, 192); !why.empty()) {
      out << "skip " << why << "\n";
      finish(0);
    }
    // 64-64-3 MLP with Momentum: ~35 KiB per checkpoint, so a handful fit.
    auto s = testutil::make_mlp_model(64, 64, 3, 1);
    DataLoader loader(testutil::separable_dataset(18, 64, 3, 1),
                      DataLoaderOptions{.batch_size = 6, .shuffle = false, .prefetch = 0});
    CheckpointConfig cfg{.save_checkpoint_steps = 1, .keep_checkpoint_max = 1000};
    if (async) cfg.async_save = AsyncSave::kThread;
    auto ckpt = std::make_shared<ModelCheckpoint>("CKP", mnt, cfg);
    try {
      s.model->train(100, loader, {ckpt});
      out << "error training never failed on a " << 192 << " KiB file system\n";
    } catch (const FileError& e) {
      out << "failed " << e.what() << "\n";
    } catch (const std::exception& e) {
      out << "error not a FileError: " << e.what() << "\n";
    }
    int saved = 0;
    for (const auto& e : fs::directory_iterator(mnt)) {
      if (e.path().extension() != ".ckpt") continue;
      ++saved;
      try {
        if (load_checkpoint(e.path().string(), {.require_integrity = true}).empty())
          out << "error empty checkpoint " << e.path().filename().string() << "\n";
      } catch (const std::exception& x) {
        out << "error " << e.path().filename().string() << " does not load: " << x.what() << "\n";
      }
    }
    out << "saved " << saved << "\n";
    std::ifstream in(fs::path(mnt) / "CKP.latest");
    std::string latest;
    std::getline(in, latest);
    if (latest.empty() || !fs::exists(fs::path(mnt) / latest)) out << "error CKP.latest names '" << latest << "'\n";
    out << "ok\n";
    finish(0);
  } catch (const std::exception& e) {
    out << "error " << e.what() << "\n";
    finish(3);
  }
  _exit(4);  // not reached: finish() exits
}

std::string run_child(bool async) {
  testutil::TempDir dir;
  const std::string mnt = (dir.path() / "mnt").string();
  const std::string report = (dir.path() / "report.txt").string();
  fs::create_directories(mnt);
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) child(mnt, report, async);
  EXPECT_GT(pid, 0);
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  std::ifstream in(report);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void expect_full_disk_handled(const std::string& report) {
  if (report.rfind("skip ", 0) == 0) GTEST_SKIP() << "no private tmpfs here (" << report << ")";
  EXPECT_EQ(report.find("error"), std::string::npos) << report;
  EXPECT_NE(report.find("failed "), std::string::npos) << report;
  EXPECT_NE(report.find("No space left on device"), std::string::npos) << report;
  EXPECT_NE(report.find("CKP-"), std::string::npos) << report;  // the message names the file
  EXPECT_NE(report.find("\nok\n"), std::string::npos) << report;
  const auto at = report.find("saved ");
  ASSERT_NE(at, std::string::npos) << report;
  EXPECT_GE(std::stoi(report.substr(at + 6)), 2) << report;  // several checkpoints fit before the failure
}

}  // namespace

TEST(ModelCheckpointDiskFull, SyncSaveOnAFullTmpfsRaisesAndKeepsEarlierCheckpoints) {
  const std::string report = run_child(false);
  EXPECT_FALSE(report.empty());
  std::cout << report;
  expect_full_disk_handled(report);
}

TEST(ModelCheckpointDiskFull, AsyncSaveOnAFullTmpfsRaisesAndKeepsEarlierCheckpoints) {
  const std::string report = run_child(true);
  EXPECT_FALSE(report.empty());
  expect_full_disk_handled(report);
}
