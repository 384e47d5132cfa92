// Multi-GB checkpoint (label `slow`, excluded from `make test`): a 2.4 GB tensor is written as five
// 512 MiB slices into a file over protobuf's 2 GiB limit, verified (CRC over the whole file), and loaded
// straight back into the existing buffer. Skips with a message when the disk or memory is too small.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <filesystem>

#include "serialization/Checkpoint.h"
#include "serialization/LoadParam.h"
#include "tests/serialization/CkptTestUtil.h"
#include "tests/testutil/TempDir.h"

namespace anvil {
namespace {

constexpr std::int64_t kElems = 600'000'000;  // uint32: 2.4e9 bytes (2.24 GiB)

std::uint32_t pattern(std::uint64_t i) { return static_cast<std::uint32_t>((i * 2654435761u) ^ (i >> 13)); }

TEST(CkptLarge, FileOverTwoGiBWithSlices) {
  testutil::TempDir dir;
  const std::uint64_t bytes = static_cast<std::uint64_t>(kElems) * 4;
  const auto space = std::filesystem::space(dir.path());
  if (space.available < 2 * bytes + (1ull << 30))
    GTEST_SKIP() << "needs " << (2 * bytes + (1ull << 30)) / (1 << 20) << " MiB free in " << dir.path() << ", have "
                 << space.available / (1 << 20) << " MiB";
  const long pages = ::sysconf(_SC_AVPHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) < bytes + (2ull << 30))
    GTEST_SKIP() << "needs about " << (bytes >> 20) + 2048 << " MiB of free memory";

  testutil::TestCell net;
  Tensor big = net.buffer("big", Tensor::empty(Shape{kElems}, DType::kU32));
  auto* p = static_cast<std::uint32_t*>(big.data_ptr());
  for (std::int64_t i = 0; i < kElems; ++i) p[i] = pattern(static_cast<std::uint64_t>(i));

  const auto info = save_checkpoint(net, dir.file("big"), {.append_info = {{"epoch_num", std::int64_t{1}}}});
  EXPECT_GT(info.bytes, 1ull << 31);
  EXPECT_EQ(info.entries, 5u + 1u);  // ceil(2.4e9 / 512 MiB) = 5 slices, plus epoch_num

  CheckpointReader r(dir.file("big.ckpt"), {.require_integrity = true});
  const CheckpointItem* item = r.find("big");
  ASSERT_NE(item, nullptr);
  EXPECT_EQ(item->entry_count, 5u);
  EXPECT_EQ(item->nbytes, bytes);
  const CheckpointEntry& last = r.entries()[item->first_entry + 4];
  EXPECT_GT(last.content_offset + last.content_size, 1ull << 31);  // offsets past 2 GiB

  std::memset(p, 0, bytes);
  auto res = load_checkpoint_into_net(net, dir.file("big.ckpt"), {.load = {.require_integrity = true}});
  EXPECT_TRUE(res.param_not_load.empty());
  std::int64_t wrong = 0;
  for (std::int64_t i = 0; i < kElems; ++i) wrong += p[i] != pattern(static_cast<std::uint64_t>(i));
  EXPECT_EQ(wrong, 0);
}

}  // namespace
}  // namespace anvil
