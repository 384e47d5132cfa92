// AtomicFile (temp in the same directory, fsync, rename, fsync dir) and crash safety of checkpoint
// saves: a child killed with SIGKILL mid-save never leaves a file under the final name that fails to
// load, and the previous checkpoint stays intact.
#include <gtest/gtest.h>

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "serialization/AtomicFile.h"
#include "serialization/Checkpoint.h"
#include "tests/serialization/CkptTestUtil.h"
#include "tests/testutil/TempDir.h"

namespace anvil {
namespace {

using testutil::read_bytes;
using testutil::TempDir;

std::vector<std::string> listing(const TempDir& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(AtomicFile, CommitWritesEverythingWithTheMode) {
  TempDir dir;
  const std::string final_path = dir.file("data.bin");
  std::vector<unsigned char> big(3 << 20);
  testutil::fill_pattern(big.data(), big.size(), 5);
  {
    AtomicFile f(final_path, {.durable = true, .mode = 0640, .temp_path = {}, .buffer_bytes = 4096, .writeback_bytes = 1 << 20});
    EXPECT_EQ(std::filesystem::path(f.temp_path()).parent_path(), dir.path());
    EXPECT_FALSE(std::filesystem::exists(final_path));
    f.write("head", 4);
    f.write(big.data(), big.size());  // larger than the buffer: written straight through
    f.write(std::string_view("tail"));
    EXPECT_EQ(f.size(), big.size() + 8);
    f.commit();
  }
  const auto got = read_bytes(final_path);
  ASSERT_EQ(got.size(), big.size() + 8);
  EXPECT_EQ(std::string(got.begin(), got.begin() + 4), "head");
  EXPECT_TRUE(std::equal(big.begin(), big.end(), got.begin() + 4));
  struct stat st {};
  ASSERT_EQ(::stat(final_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(listing(dir), (std::vector<std::string>{"data.bin"}));
}

TEST(AtomicFile, AbortAndDestructorRemoveTheTemporaryAndKeepTheOldFile) {
  TempDir dir;
  const std::string p = dir.file("keep.txt");
  write_file_atomic(p, "old");
  {
    AtomicFile f(p);
    f.write("new content");
    EXPECT_EQ(listing(dir).size(), 2u);
  }  // destroyed without commit
  EXPECT_EQ(listing(dir), (std::vector<std::string>{"keep.txt"}));
  AtomicFile g(p);
  g.write("x");
  g.abort();
  g.abort();  // idempotent
  EXPECT_THROW(g.write("y"), Error);
  const auto b = read_bytes(p);
  EXPECT_EQ(std::string(b.begin(), b.end()), "old");
}

TEST(AtomicFile, FinishKeepsTheTemporaryForCallerRenames) {
  TempDir dir;
  const std::string p = dir.file("x.ckpt");
  std::string temp;
  {
    AtomicFile f(p, {.durable = true, .mode = 0400, .temp_path = dir.file(".x.ckpt.tmp-owner-1"), .buffer_bytes = 1 << 20,
                     .writeback_bytes = 0});
    f.write("abc");
    f.finish();
    temp = f.temp_path();
  }  // a finished file survives the object
  EXPECT_EQ(temp, dir.file(".x.ckpt.tmp-owner-1"));
  ASSERT_TRUE(std::filesystem::exists(temp));
  durable_rename(temp, p);
  EXPECT_EQ(listing(dir), (std::vector<std::string>{"x.ckpt"}));
}

TEST(AtomicFile, ErrorsNameThePath) {
  TempDir dir;
  try {
    AtomicFile f(dir.file("missing/dir/f.bin"));
    FAIL();
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("missing/dir"), std::string::npos) << e.what();
    EXPECT_EQ(e.error_number(), ENOENT);
  }
  // An explicit temporary that already exists is refused (O_EXCL): never clobber another writer's file.
  write_file_atomic(dir.file("busy"), "x");
  try {
    AtomicFile f(dir.file("out"), {.durable = false, .mode = 0644, .temp_path = dir.file("busy"), .buffer_bytes = 16,
                                   .writeback_bytes = 0});
    FAIL();
  } catch (const FileError& e) {
    EXPECT_EQ(e.error_number(), EEXIST);
  }
  try {
    durable_rename(dir.file("nope"), dir.file("dst"));
    FAIL();
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos) << e.what();
  }
}

// The child saves a 24 MiB checkpoint over and over; each version holds one value everywhere. After
// each completed save it writes one byte to `progress`.
[[noreturn]] void save_loop(const std::string& path, int progress) {
  Tensor big = Tensor::empty(Shape{6 << 20}, DType::kF32);
  for (int i = 1;; ++i) {
    big.fill_(static_cast<double>(i));
    save_checkpoint(NamedTensors{{"big", big}, {"iter", Tensor::scalar(i)}}, path, {.slice_bytes = 8 << 20});
    const char b = 1;
    if (::write(progress, &b, 1) != 1) ::_exit(4);
  }
}

TEST(CkptCrashSafety, SigkillDuringSaveNeverLeavesABrokenFile) {
  TempDir dir;
  const std::string previous = dir.file("previous.ckpt");
  const std::string target = dir.file("target.ckpt");
  save_checkpoint(NamedTensors{{"w", Tensor::full(Shape{1000}, 7.0)}}, previous);
  save_checkpoint(NamedTensors{{"big", Tensor::zeros(Shape{6 << 20})}, {"iter", Tensor::scalar(0)}}, target);
  const auto previous_bytes = read_bytes(previous);
  std::mt19937 rng(42);
  int newer = 0;
  std::size_t leftovers = 0;
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE(round);
    // The child reports each completed save; the parent waits for the first one (so a newer version
    // exists whatever the machine's load), then kills it a random moment later: usually mid-save.
    int pipefd[2];
    ASSERT_EQ(::pipe(pipefd), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(pipefd[0]);
      try {
        save_loop(target, pipefd[1]);
      } catch (...) {
      }
      ::_exit(3);
    }
    ::close(pipefd[1]);
    pollfd pfd{pipefd[0], POLLIN, 0};
    const int ready = ::poll(&pfd, 1, 120000);
    char b = 0;
    const bool saved = ready == 1 && ::read(pipefd[0], &b, 1) == 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 60));
    ::kill(pid, SIGKILL);
    ::close(pipefd[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(saved) << "the child completed no save within 120 s";
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child ended on its own (status " << status << ")";
    // The final name always holds one complete version.
    const ParamDict d = load_checkpoint(target, {.require_integrity = true});
    const float iter = static_cast<float>(d.tensor("iter").item());
    const auto v = d.tensor("big").to_vector<float>();
    EXPECT_TRUE(std::all_of(v.begin(), v.end(), [&](float x) { return x == iter; })) << "mixed versions";
    EXPECT_GE(iter, 1.0f);  // at least the child's first save is there
    if (iter > 0) ++newer;
    EXPECT_EQ(read_bytes(previous), previous_bytes);
    // Leftover temporaries are dot-files that never end in ".ckpt".
    for (const auto& name : listing(dir))
      if (name != "previous.ckpt" && name != "target.ckpt") {
        ++leftovers;
        EXPECT_EQ(name[0], '.');
        EXPECT_EQ(name.find(".ckpt", name.size() - 5), std::string::npos) << name;
      }
  }
  EXPECT_GT(newer, 0) << "the child never completed a save before being killed";
  EXPECT_GT(leftovers, 0u) << "no kill landed inside a save (no temporary file was left behind)";
}

}  // namespace
}  // namespace anvil
