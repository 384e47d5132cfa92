// Deterministic fuzzing of the checkpoint reader, always part of `make test`: thousands of seeded
// mutations (bit flips, byte stores, truncations, insertions, deletions, duplicated ranges, splices,
// varint bombs) of the real MindSpore fixtures and of Anvil-written files (trailer, strings, slices)
// go through CheckpointReader and reads of every item. Each must succeed or throw CheckpointError naming
// the input; no other exception, no crash (the serialization tests also run under ASan/UBSan in CI).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "framework/core/Log.h"
#include "serialization/Checkpoint.h"
#include "serialization/CheckpointReader.h"
#include "tests/serialization/CkptTestUtil.h"
#include "tests/testutil/TempDir.h"

namespace anvil {
namespace {

using Bytes = std::vector<unsigned char>;

struct Outcome {
  int ok = 0, errors = 0;
};

void feed(const Bytes& b, const std::string& name, Outcome& out, bool strict = false) {
  try {
    ReaderOptions o;
    o.strict = strict;
    o.warn_unverified = false;
    CheckpointReader r(name, b.data(), b.size(), o);
    for (const auto& it : r.items()) {
      if (it.kind == CheckpointItem::Kind::kTensor) {
        const Tensor t = r.read_tensor(it);
        ASSERT_EQ(t.nbytes(), it.nbytes);
      } else if (it.kind == CheckpointItem::Kind::kString) {
        (void)r.read_string(it);
      }
    }
    ++out.ok;
  } catch (const CheckpointError& e) {
    ++out.errors;
    ASSERT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    FAIL() << "non-CheckpointError exception for " << name << ": " << e.what();
  }
}

Bytes mutate(const Bytes& in, const std::vector<Bytes>& pool, std::mt19937_64& rng) {
  Bytes b = in;
  const int ops = 1 + static_cast<int>(rng() % 3);
  for (int k = 0; k < ops; ++k) {
    const std::size_t n = b.size();
    auto pos = [&] { return n ? static_cast<std::size_t>(rng() % n) : 0; };
    switch (rng() % 9) {
      case 0: if (n) b[pos()] ^= static_cast<unsigned char>(1u << (rng() % 8)); break;
      case 1: if (n) b[pos()] = static_cast<unsigned char>(rng()); break;
      case 2: b.resize(pos()); break;
      case 3: {  // insert random bytes
        const std::size_t p = pos(), len = 1 + rng() % 8;
        Bytes ins(len);
        for (auto& c : ins) c = static_cast<unsigned char>(rng());
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(p), ins.begin(), ins.end());
        break;
      }
      case 4: {  // delete a range
        const std::size_t p = pos(), len = std::min<std::size_t>(n - p, 1 + rng() % 32);
        b.erase(b.begin() + static_cast<std::ptrdiff_t>(p), b.begin() + static_cast<std::ptrdiff_t>(p + len));
        break;
      }
      case 5: {  // duplicate a range
        const std::size_t p = pos(), len = std::min<std::size_t>(n - p, 1 + rng() % 64);
        Bytes r(b.begin() + static_cast<std::ptrdiff_t>(p), b.begin() + static_cast<std::ptrdiff_t>(p + len));
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(pos()), r.begin(), r.end());
        break;
      }
      case 6: {  // splice: our prefix, another input's suffix
        const Bytes& o = pool[rng() % pool.size()];
        const std::size_t p = pos(), q = o.empty() ? 0 : rng() % o.size();
        b.resize(p);
        b.insert(b.end(), o.begin() + static_cast<std::ptrdiff_t>(q), o.end());
        break;
      }
      case 7: {  // varint bomb: a run of continuation bytes
        const std::size_t p = pos();
        for (std::size_t i = p; i < std::min(n, p + 1 + rng() % 12); ++i) b[i] = 0xFF;
        break;
      }
      default: {  // a plausible huge length right after a key
        if (n > 2) {
          const std::size_t p = pos() % (n - 1);
          b[p] = 0x0A;
          b[p + 1] = static_cast<unsigned char>(0x80 | rng());
        }
        break;
      }
    }
  }
  return b;
}

std::vector<Bytes> seeds() {
  std::vector<Bytes> out;
  if (testutil::have_fixtures()) {
    for (const char* f : {"goldenstick_test_sq_predict_simplenet_2stage_fp.ckpt",
                          "goldenstick_test_linears_woq_predict_2stage_fp32.ckpt", "toolkits_troubleshooter_test.ckpt",
                          "toolkits_net_diff_finder_ms_org_ckpt.ckpt", "mindscience_sciai_example_net_10000.ckpt"}) {
      out.push_back(testutil::read_bytes(testutil::ms_fixture(f)));
    }
    // The start of the negative fixture (a strategy file) and of a LeNet file.
    Bytes neg = testutil::read_bytes(testutil::ms_fixture("goldenstick_ckpt_strategy_rank_0_NOT_A_CHECKPOINT.ckpt"));
    neg.resize(std::min<std::size_t>(neg.size(), 2048));
    out.push_back(neg);
    Bytes lenet = testutil::read_bytes(testutil::ms_fixture("mindarmour_checkpoint_lenet-10_1875.ckpt"));
    lenet.resize(std::min<std::size_t>(lenet.size(), 12000));
    out.push_back(lenet);
  }
  testutil::TempDir dir;
  ParamDict d;
  d.set("w", Tensor::from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8}, Shape{2, 4}));
  d.set("h", Tensor::zeros(Shape{3}, DType::kI64));
  d.set("s", std::string("text ✓"));
  SaveOptions o;
  o.durable = false;
  o.slice_bytes = 12;
  o.append_info = {{"epoch_num", std::int64_t{4}}, {"flag", true}};
  save_checkpoint(d, dir.file("a.ckpt"), o);
  out.push_back(testutil::read_bytes(dir.file("a.ckpt")));
  o.crc_check = false;
  o.legacy_scalar_dims = true;
  save_checkpoint(d, dir.file("b.ckpt"), o);
  out.push_back(testutil::read_bytes(dir.file("b.ckpt")));
  return out;
}

TEST(CkptReaderFuzz, SeededMutationsNeverCrash) {
  const LogLevel saved = log_level();
  set_log_level(LogLevel::kError);  // duplicate-tag and map-tensor warnings would flood the log
  const std::vector<Bytes> pool = seeds();
  std::mt19937_64 rng(0xC0FFEE);
  Outcome out;
  for (std::size_t s = 0; s < pool.size(); ++s) feed(pool[s], "seed-" + std::to_string(s), out);
  // Only the strategy file and the LeNet prefix (cut inside an entry) are rejected.
  EXPECT_EQ(out.errors, testutil::have_fixtures() ? 2 : 0);
  constexpr int kIterations = 10000;
  for (int i = 0; i < kIterations; ++i) {
    const Bytes& base = pool[static_cast<std::size_t>(i) % pool.size()];
    const Bytes m = mutate(base, pool, rng);
    feed(m, "mutant-" + std::to_string(i) + ".ckpt", out, (i & 1) != 0);
    if (HasFatalFailure()) break;
  }
  set_log_level(saved);
  RecordProperty("loaded", out.ok);
  RecordProperty("rejected", out.errors);
  EXPECT_GT(out.errors, kIterations / 4);
  EXPECT_GT(out.ok, 0);
}

TEST(CkptReaderFuzz, EveryTruncationAndSingleBitFlipOfAnAnvilFile) {
  const LogLevel saved = log_level();
  set_log_level(LogLevel::kError);
  const std::vector<Bytes> pool = seeds();
  const Bytes& file = pool[pool.size() - 2];  // the Anvil file with a trailer
  Outcome out;
  for (std::size_t n = 0; n < file.size(); ++n) feed(Bytes(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(n)), "cut.ckpt", out);
  // With the trailer, every single-bit flip anywhere is detected.
  Outcome flips;
  for (std::size_t i = 0; i < file.size(); ++i)
    for (int bit = 0; bit < 8; bit += 3) {
      Bytes b = file;
      b[i] ^= static_cast<unsigned char>(1u << bit);
      feed(b, "flip.ckpt", flips);
    }
  set_log_level(saved);
  EXPECT_EQ(flips.ok, 0);
}

}  // namespace
}  // namespace anvil
