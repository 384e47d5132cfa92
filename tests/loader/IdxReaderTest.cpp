#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "framework/core/Error.h"
#include "framework/core/Random.h"
#include "framework/data/IdxReader.h"
#include "tests/loader/IdxTestFiles.h"
#include "tests/testutil/TempDir.h"
#include "tests/testutil/Errors.h"

using namespace anvil;
using anvil::testutil::error_of;
using anvil::testutil::has;
using namespace anvil::loadertest;
using testutil::TempDir;

namespace {

std::vector<std::uint8_t> iota_bytes(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 3 + 1);
  return v;
}

}  // namespace

TEST(IdxReader, ReadsRawAndGzip) {
  TempDir tmp;
  const auto data = iota_bytes(3 * 2 * 4);
  const auto bytes = idx_bytes(0x00000803, {3, 2, 4}, data);
  for (bool gz : {false, true}) {
    const std::string path = tmp.file(gz ? "a.idx.gz" : "a.idx");
    write_file(path, bytes, gz);
    const IdxArray a = read_idx(path);
    EXPECT_EQ(a.path, path);
    EXPECT_EQ(a.magic, 2051u);
    EXPECT_EQ(a.dtype, DType::kU8);
    EXPECT_EQ(a.dims, (std::vector<std::int64_t>{3, 2, 4}));
    EXPECT_EQ(a.numel(), 24);
    EXPECT_EQ(a.bytes, data) << (gz ? "gzip" : "raw");
  }
  // Content decides, not the name: a gzip file without .gz and a raw file named .gz both read.
  write_file(tmp.file("gz-no-ext"), bytes, true);
  write_file(tmp.file("raw.gz"), bytes, false);
  EXPECT_EQ(read_idx(tmp.file("gz-no-ext")).bytes, data);
  EXPECT_EQ(read_idx(tmp.file("raw.gz")).bytes, data);
}

TEST(IdxReader, ExpectedMagicAccepted) {
  TempDir tmp;
  write_file(tmp.file("l"), idx_bytes(2049, {5}, iota_bytes(5)), true);
  const IdxArray a = read_idx(tmp.file("l"), {.expected_magic = kIdxMagicLabels, .role = "labels"});
  EXPECT_EQ(a.dims, (std::vector<std::int64_t>{5}));
}

TEST(IdxReader, EmptyDimensionGivesEmptyArray) {
  TempDir tmp;
  write_file(tmp.file("e"), idx_bytes(2051, {0, 28, 28}, {}), false);
  const IdxArray a = read_idx(tmp.file("e"));
  EXPECT_EQ(a.numel(), 0);
  EXPECT_TRUE(a.bytes.empty());
}

TEST(IdxReader, MissingFileNamesIt) {
  TempDir tmp;
  const std::string path = tmp.file("nope.gz");
  const std::string msg = error_of([&] { read_idx(path); });
  EXPECT_TRUE(has(msg, path)) << msg;
  EXPECT_TRUE(has(msg, "not found")) << msg;
  const std::string dir_msg = error_of([&] { read_idx(tmp.path().string()); });
  EXPECT_TRUE(has(dir_msg, "not a regular file")) << dir_msg;
}

TEST(IdxReader, TruncatedDataSaysExpectedAndGot) {
  TempDir tmp;
  auto bytes = idx_bytes(2051, {2, 3, 4}, iota_bytes(24));
  bytes.resize(bytes.size() - 5);  // 19 of 24 data bytes
  for (bool gz : {false, true}) {
    const std::string path = tmp.file(gz ? "t.gz" : "t");
    write_file(path, bytes, gz);
    const std::string msg = error_of([&] { read_idx(path); });
    EXPECT_TRUE(has(msg, path)) << msg;
    EXPECT_TRUE(has(msg, "truncated")) << msg;
    EXPECT_TRUE(has(msg, "expected 24 bytes")) << msg;
    EXPECT_TRUE(has(msg, "got 19")) << msg;
    EXPECT_TRUE(has(msg, "16-byte header")) << msg;
  }
}

TEST(IdxReader, TruncatedHeader) {
  TempDir tmp;
  auto bytes = idx_bytes(2051, {2, 3, 4}, {});
  bytes.resize(9);
  write_file(tmp.file("h"), bytes, false);
  std::string msg = error_of([&] { read_idx(tmp.file("h")); });
  EXPECT_TRUE(has(msg, "needs 16 bytes, got 9")) << msg;
  write_file(tmp.file("empty"), {}, false);
  msg = error_of([&] { read_idx(tmp.file("empty")); });
  EXPECT_TRUE(has(msg, "got 0")) << msg;
  write_file(tmp.file("empty.gz"), {}, true);
  msg = error_of([&] { read_idx(tmp.file("empty.gz")); });
  EXPECT_TRUE(has(msg, "got 0")) << msg;
}

TEST(IdxReader, TruncatedGzipStream) {
  TempDir tmp;
  const std::string full = tmp.file("full.gz");
  write_file(full, idx_bytes(2051, {10, 28, 28}, iota_bytes(7840)), true);
  ASSERT_EQ(read_all(full).size(), 16u + 7840u);
  std::ifstream in(full, std::ios::binary);
  std::vector<std::uint8_t> compressed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(compressed.size(), 40u);
  compressed.resize(compressed.size() / 2);  // cut the gzip stream in the middle
  write_file(tmp.file("cut.gz"), compressed, false);
  const std::string msg = error_of([&] { read_idx(tmp.file("cut.gz")); });
  EXPECT_TRUE(has(msg, tmp.file("cut.gz"))) << msg;
  EXPECT_TRUE(has(msg, "truncated")) << msg;
}

TEST(IdxReader, WrongMagicNamesExpected) {
  TempDir tmp;
  write_file(tmp.file("labels"), idx_bytes(2049, {3}, iota_bytes(3)), false);
  const std::string msg = error_of([&] {
    read_idx(tmp.file("labels"), {.expected_magic = kIdxMagicImages, .role = "MNIST images"});
  });
  EXPECT_TRUE(has(msg, "wrong magic number 2049")) << msg;
  EXPECT_TRUE(has(msg, "expected 2051")) << msg;
  EXPECT_TRUE(has(msg, "MNIST images")) << msg;
  EXPECT_TRUE(has(msg, tmp.file("labels"))) << msg;
}

TEST(IdxReader, RejectsNonIdxAndUnsupportedTypes) {
  TempDir tmp;
  write_file(tmp.file("text"), {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'}, false);
  std::string msg = error_of([&] { read_idx(tmp.file("text")); });
  EXPECT_TRUE(has(msg, "not an IDX file")) << msg;

  write_file(tmp.file("f32"), idx_bytes(0x00000D01, {2}, iota_bytes(8)), false);
  msg = error_of([&] { read_idx(tmp.file("f32")); });
  EXPECT_TRUE(has(msg, "type code 0x0D (float32)")) << msg;
  EXPECT_TRUE(has(msg, "only 0x08")) << msg;

  write_file(tmp.file("rank0"), idx_bytes(0x00000800, {}, {}), false);
  msg = error_of([&] { read_idx(tmp.file("rank0")); });
  EXPECT_TRUE(has(msg, "0 dimensions")) << msg;
}

TEST(IdxReader, RejectsAbsurdAndOverflowingDims) {
  TempDir tmp;
  write_file(tmp.file("huge"), idx_bytes(2051, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, iota_bytes(10)), false);
  std::string msg = error_of([&] { read_idx(tmp.file("huge")); });
  EXPECT_TRUE(has(msg, "absurd")) << msg;
  EXPECT_TRUE(has(msg, "[4294967295,4294967295,4294967295]")) << msg;

  // Within the limit but far beyond the file: a truncation error, without allocating the claimed 3 GB.
  write_file(tmp.file("lying"), idx_bytes(2051, {60000, 256, 256}, iota_bytes(100)), true);
  msg = error_of([&] { read_idx(tmp.file("lying")); });
  EXPECT_TRUE(has(msg, "expected 3932160000 bytes")) << msg;
  EXPECT_TRUE(has(msg, "got 100")) << msg;

  write_file(tmp.file("small"), idx_bytes(2049, {1000}, iota_bytes(1000)), false);
  msg = error_of([&] { read_idx(tmp.file("small"), {.max_bytes = 999}); });
  EXPECT_TRUE(has(msg, "max_bytes")) << msg;
}

TEST(IdxReader, RejectsTrailingData) {
  TempDir tmp;
  auto bytes = idx_bytes(2049, {4}, iota_bytes(4));
  bytes.push_back(7);
  write_file(tmp.file("trail.gz"), bytes, true);
  const std::string msg = error_of([&] { read_idx(tmp.file("trail.gz")); });
  EXPECT_TRUE(has(msg, "trailing data")) << msg;
}

// A small fuzz: random corruptions of valid files either read or throw anvil::Error — never crash.
TEST(IdxReader, FuzzedInputsThrowOnlyAnvilError) {
  TempDir tmp;
  const auto valid = idx_bytes(2051, {4, 5, 6}, iota_bytes(120));
  Generator gen(1234);
  int ok = 0, rejected = 0;
  for (int trial = 0; trial < 300; ++trial) {
    auto bytes = valid;
    const int kind = static_cast<int>(gen.randint(3));
    if (kind == 0) {  // flip a few bytes, biased towards the header
      for (int k = 0; k < 3; ++k) {
        const auto pos = gen.bernoulli(0.7) ? gen.randint(16) : gen.randint(bytes.size());
        bytes[pos] = static_cast<std::uint8_t>(gen.randint(256));
      }
    } else if (kind == 1) {  // truncate anywhere
      bytes.resize(gen.randint(bytes.size() + 1));
    } else {  // append garbage
      for (auto n = gen.randint(20) + 1; n > 0; --n) bytes.push_back(static_cast<std::uint8_t>(gen.randint(256)));
    }
    const std::string path = tmp.file("fuzz" + std::to_string(trial));
    write_file(path, bytes, trial % 2 == 0);
    try {
      const IdxArray a = read_idx(path, {.max_bytes = 1 << 20});
      EXPECT_EQ(static_cast<std::int64_t>(a.bytes.size()), a.numel());
      ++ok;
    } catch (const Error& e) {
      EXPECT_TRUE(has(e.what(), path)) << e.what();
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_EQ(ok + rejected, 300);
}
