// Reader checks and errors (specs/mindspore-ckpt.md §9): missing/empty/encrypted files, the CRC trailer,
// truncation at every offset, cuts between entries, manifests, malformed entries, duplicates, map
// tensors, and random corruption of real fixtures (never a crash, always an error naming the file).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include <fmt/format.h>

#include "serialization/Checkpoint.h"
#include "serialization/CheckpointReader.h"
#include "serialization/Crc32.h"
#include "tests/serialization/CkptTestUtil.h"
#include "tests/testutil/TempDir.h"

namespace anvil {
namespace {

using testutil::expect_ckpt_error;
using testutil::ms_fixture;
using testutil::read_bytes;
using testutil::TempDir;
using testutil::write_bytes;
using Bytes = std::vector<unsigned char>;

// ---- a tiny protobuf encoder for hand-made entries ----
void varint(Bytes& b, std::uint64_t v) {
  while (v >= 0x80) {
    b.push_back(static_cast<unsigned char>(v | 0x80));
    v >>= 7;
  }
  b.push_back(static_cast<unsigned char>(v));
}
Bytes field(std::uint64_t key, const Bytes& payload) {
  Bytes b;
  varint(b, key);
  varint(b, payload.size());
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}
Bytes str(const std::string& s) { return Bytes(s.begin(), s.end()); }
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes dims(std::initializer_list<std::uint64_t> ds) {
  Bytes b;
  for (auto d : ds) {
    b.push_back(0x08);
    varint(b, d);
  }
  return b;
}
Bytes f32(std::initializer_list<float> v) {
  Bytes b(v.size() * 4);
  std::memcpy(b.data(), std::data(v), b.size());
  return b;
}
// One canonical entry: 0A len (0A tag 12 TensorProto).
Bytes entry(const std::string& tag, const Bytes& tensor_proto) {
  return field(0x0A, cat({field(0x0A, str(tag)), field(0x12, tensor_proto)}));
}
Bytes tensor(const Bytes& dims_bytes, const std::string& type, const Bytes& content) {
  return cat({dims_bytes, field(0x12, str(type)), field(0x1A, content)});
}

ParamDict load_bytes(const TempDir& dir, const std::string& name, const Bytes& b, LoadOptions o = {}) {
  write_bytes(dir.file(name), b);
  o.warn_unverified = false;
  return load_checkpoint(dir.file(name), o);
}

TEST(CkptIntegrity, MissingEmptyAndEncrypted) {
  TempDir dir;
  expect_ckpt_error([&] { load_checkpoint(dir.file("nope.ckpt")); }, CkptErrc::kNotFound, dir.file("nope.ckpt"));
  expect_ckpt_error([&] { load_checkpoint(dir.path().string()); }, CkptErrc::kNotFound, dir.path().string());
  write_bytes(dir.file("zero.ckpt"), Bytes{});
  const std::string msg =
      expect_ckpt_error([&] { load_checkpoint(dir.file("zero.ckpt")); }, CkptErrc::kEmpty, dir.file("zero.ckpt"));
  EXPECT_NE(msg.find("empty (0 bytes)"), std::string::npos) << msg;
  for (std::uint32_t magic : {0x7F3A5ED8u, 0x7F3A5ED9u, 0x7F3A5EDAu}) {
    Bytes b(64, 0x11);
    std::memcpy(b.data(), &magic, 4);
    write_bytes(dir.file("enc.ckpt"), b);
    expect_ckpt_error([&] { load_checkpoint(dir.file("enc.ckpt")); }, CkptErrc::kEncrypted, dir.file("enc.ckpt"));
  }
}

Bytes small_anvil_file(const TempDir& dir) {
  ParamDict d;
  d.set("a.weight", Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, Shape{2, 3}));
  d.set("a.bias", Tensor::from_vector<float>({-1, -2}, Shape{2}));
  d.set("note", std::string("ok"));
  SaveOptions o;
  o.durable = false;
  o.slice_bytes = 16;  // a.weight becomes two slices
  o.append_info = {{"epoch_num", std::int64_t{1}}};
  save_checkpoint(d, dir.file("small.ckpt"), o);
  return read_bytes(dir.file("small.ckpt"));
}

TEST(CkptIntegrity, AnvilFileTruncatedAtEveryOffsetIsAlwaysAClearError) {
  TempDir dir;
  const Bytes full = small_anvil_file(dir);
  ASSERT_GT(full.size(), 100u);
  EXPECT_EQ(load_bytes(dir, "full.ckpt", full, {.require_integrity = true}).size(), 4u);
  int boundary_cuts = 0;
  for (std::size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE(n);
    const std::string p = dir.file(fmt::format("cut_{}.ckpt", n));
    write_bytes(p, full.data(), n);
    try {
      load_checkpoint(p, {.require_integrity = true});
      ADD_FAILURE() << "a file cut at " << n << " of " << full.size() << " bytes loaded";
    } catch (const CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
      if (e.code() == CkptErrc::kUnverified) ++boundary_cuts;  // cut exactly between entries
    }
    // Without require_integrity a cut between entries parses (with a warning); that is why we
    // write trailers.
    try {
      load_checkpoint(p, {.warn_unverified = false});
    } catch (const CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
    std::filesystem::remove(p);
  }
  EXPECT_GE(boundary_cuts, 4);  // after each of the entries before the last
}

TEST(CkptIntegrity, CrcTrailerDetectsCorruption) {
  TempDir dir;
  Bytes b = small_anvil_file(dir);
  Bytes flipped = b;
  flipped[30] ^= 0x01;  // inside a tensor's content: still parses, but the CRC differs
  write_bytes(dir.file("flip.ckpt"), flipped);
  const std::string msg = expect_ckpt_error([&] { load_checkpoint(dir.file("flip.ckpt")); }, CkptErrc::kCrcMismatch,
                                            dir.file("flip.ckpt"));
  EXPECT_NE(msg.find("stored 0x"), std::string::npos);
  EXPECT_NE(msg.find("computed 0x"), std::string::npos);
  Bytes high = b;
  high[high.size() - 5] = 1;  // a non-zero high byte of the 10-byte CRC
  write_bytes(dir.file("high.ckpt"), high);
  expect_ckpt_error([&] { load_checkpoint(dir.file("high.ckpt")); }, CkptErrc::kCrcMismatch, dir.file("high.ckpt"));
  // A file cut inside its trailer is reported as truncated, not as a foreign field.
  write_bytes(dir.file("tt.ckpt"), b.data(), b.size() - 3);
  expect_ckpt_error([&] { load_checkpoint(dir.file("tt.ckpt")); }, CkptErrc::kTruncated, dir.file("tt.ckpt"));
}

TEST(CkptIntegrity, CutBetweenEntriesOfAForeignFile) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  TempDir dir;
  const Bytes full = read_bytes(ms_fixture("mindarmour_checkpoint_lenet-10_1875.ckpt"));
  write_bytes(dir.file("cut.ckpt"), full.data(), 202828);  // end of entry 4
  CheckpointReader r(dir.file("cut.ckpt"), {.warn_unverified = false});
  EXPECT_EQ(r.entries().size(), 4u);
  EXPECT_EQ(r.integrity(), Integrity::kUnverified);
  ASSERT_EQ(r.warnings().size(), 1u);
  EXPECT_NE(r.warnings()[0].find("truncation at an entry boundary cannot be ruled out"), std::string::npos);
  expect_ckpt_error([&] { load_checkpoint(dir.file("cut.ckpt"), {.require_integrity = true}); },
                    CkptErrc::kUnverified, dir.file("cut.ckpt"));
  write_bytes(dir.file("cut2.ckpt"), full.data(), 202831);
  const std::string msg =
      expect_ckpt_error([&] { load_checkpoint(dir.file("cut2.ckpt")); }, CkptErrc::kTruncated, dir.file("cut2.ckpt"));
  EXPECT_NE(msg.find("entry 4 at offset 202828"), std::string::npos) << msg;
}

TEST(CkptIntegrity, ManifestVerification) {
  TempDir dir;
  SaveOptions o;
  o.durable = false;
  o.crc_check = false;
  const auto info = save_checkpoint(NamedTensors{{"w", Tensor::ones(Shape{8})}, {"b", Tensor::ones(Shape{2})}},
                                    dir.file("m.ckpt"), o);
  const std::string manifest = dir.file("m.ckpt.manifest.json");
  auto write_manifest = [&](std::uint64_t bytes, std::uint32_t crc, std::uint64_t entries) {
    const std::string j = fmt::format(
        R"({{"format":"ckpt-manifest","version":1,"file":"m.ckpt","bytes":{},"crc32":{},"entries":{}}})", bytes, crc,
        entries);
    std::filesystem::remove(manifest);
    write_bytes(manifest, reinterpret_cast<const unsigned char*>(j.data()), j.size());
  };
  write_manifest(info.bytes, info.crc32, info.entries);
  EXPECT_EQ(CheckpointReader(dir.file("m.ckpt"), {.require_integrity = true}).integrity(),
            Integrity::kVerifiedManifest);
  write_manifest(info.bytes, info.crc32 ^ 1, info.entries);
  expect_ckpt_error([&] { load_checkpoint(dir.file("m.ckpt")); }, CkptErrc::kCrcMismatch, dir.file("m.ckpt"));
  write_manifest(info.bytes + 10, info.crc32, info.entries);
  expect_ckpt_error([&] { load_checkpoint(dir.file("m.ckpt")); }, CkptErrc::kTruncated, dir.file("m.ckpt"));
  // A manifest for another file does not vouch for this one.
  const std::string other = R"({"file":"other.ckpt","bytes":1,"crc32":1,"entries":1})";
  std::filesystem::remove(manifest);
  write_bytes(manifest, reinterpret_cast<const unsigned char*>(other.data()), other.size());
  expect_ckpt_error([&] { load_checkpoint(dir.file("m.ckpt"), {.require_integrity = true}); }, CkptErrc::kUnverified,
                    dir.file("m.ckpt"));
}

TEST(CkptIntegrity, AcceptsPackedDimsFieldOrderModelTypeAndLegacyTypeNames) {
  TempDir dir;
  Bytes packed_dims = field(0x0A, Bytes{2, 1});  // dims [2,1], packed
  const Bytes b = cat({
      field(0x12, str("normal")),  // v0.5 model_type
      // fields in reverse order inside both messages
      field(0x0A, cat({field(0x12, cat({field(0x1A, f32({1.5f, 2.5f})), field(0x12, str("Float32")), packed_dims})),
                       field(0x0A, str("w"))})),
      entry("u", tensor(dims({2}), "Uint16", Bytes{1, 0, 2, 0})),
  });
  const ParamDict d = load_bytes(dir, "ok.ckpt", b);
  EXPECT_EQ(d.tensor("w").shape(), (Shape{2, 1}));
  EXPECT_EQ(d.tensor("w").to_vector<float>(), (std::vector<float>{1.5f, 2.5f}));
  EXPECT_EQ(d.tensor("u").dtype(), DType::kU16);
}

TEST(CkptIntegrity, MalformedEntriesNameFieldAndOffset) {
  TempDir dir;
  struct Case {
    const char* name;
    Bytes bytes;
    CkptErrc code;
    const char* needle;
  };
  const Bytes good_tp = tensor(dims({2}), "Float32", f32({1, 2}));
  const std::vector<Case> cases = {
      {"unknown_value_field", field(0x0A, cat({field(0x0A, str("t")), field(0x12, good_tp), field(0x2A, str("x"))})),
       CkptErrc::kMalformed, "unknown field 5"},
      {"unknown_tensor_field", entry("t", cat({good_tp, field(0x22, str("zz"))})), CkptErrc::kMalformed,
       "unknown field 4"},
      {"no_tag", field(0x0A, field(0x12, good_tp)), CkptErrc::kMalformed, "no tag"},
      {"empty_tag", entry("", good_tp), CkptErrc::kMalformed, "empty tag"},
      {"bad_utf8_tag", entry("\xff", good_tp), CkptErrc::kMalformed, "UTF-8"},
      {"no_value", field(0x0A, field(0x0A, str("t"))), CkptErrc::kMalformed, "neither"},
      {"no_type", entry("t", cat({dims({2}), field(0x1A, f32({1, 2}))})), CkptErrc::kMalformed, "no tensor_type"},
      {"no_content", entry("t", cat({dims({2}), field(0x12, str("Float32"))})), CkptErrc::kMalformed,
       "no tensor_content"},
      {"inner_length", field(0x0A, Bytes{0x0A, 0x09, 't'}), CkptErrc::kMalformed, "declares 9 bytes"},
      {"bad_dtype", entry("t", tensor(dims({2}), "Float128", f32({1, 2}))), CkptErrc::kBadDtype, "'Float128'"},
      {"int4", entry("t", tensor(dims({2}), "Int4", Bytes{1})), CkptErrc::kBadDtype, "Int4"},
      {"size", entry("t", tensor(dims({3}), "Float32", f32({1, 2}))), CkptErrc::kSizeMismatch, "need 12 bytes"},
      {"slices", cat({entry("t", tensor(dims({2}), "Float32", f32({1}))), entry("t", tensor(dims({3}), "Float32", f32({1})))}),
       CkptErrc::kSliceMismatch, "slice 1"},
      {"bad_string", entry("s", tensor(dims({0}), "str", Bytes{1, 2, 3})), CkptErrc::kBadString, "multiple of 4"},
      {"top_level", Bytes{0x08, 0x01}, CkptErrc::kNotACheckpoint, "field 1, wire type 0"},
      {"only_model_type", field(0x12, str("quant")), CkptErrc::kNoEntries, "no checkpoint entries"},
      {"overflow_dims", entry("t", tensor(dims({1ull << 40, 1ull << 40}), "Float32", f32({1}))),
       CkptErrc::kSizeMismatch, "overflow"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string p = dir.file(std::string(c.name) + ".ckpt");
    write_bytes(p, c.bytes);
    const std::string msg = expect_ckpt_error([&] { load_checkpoint(p, {.warn_unverified = false}); }, c.code, p);
    EXPECT_NE(msg.find(c.needle), std::string::npos) << msg;
  }
}

TEST(CkptIntegrity, DuplicateTagsAndMapTensors) {
  TempDir dir;
  const Bytes dup = cat({entry("a", tensor(dims({1}), "Float32", f32({1}))),
                         entry("b", tensor(dims({1}), "Float32", f32({2}))),
                         entry("a", tensor(dims({1}), "Float32", f32({3})))});
  const ParamDict d = load_bytes(dir, "dup.ckpt", dup);
  EXPECT_EQ(d.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(d.tensor("a").to_vector<float>(), (std::vector<float>{3}));  // the later entry wins
  expect_ckpt_error([&] { load_bytes(dir, "dup.ckpt", dup, {.strict = true}); }, CkptErrc::kDuplicateTag,
                    dir.file("dup.ckpt"));
  const Bytes map = cat({entry("a", tensor(dims({1}), "Float32", f32({1}))),
                         field(0x0A, cat({field(0x0A, str("table")),
                                          field(0x1A, cat({field(0x0A, tensor(dims({1}), "int64", Bytes(8, 0))),
                                                           field(0x0A, tensor(dims({1}), "float32", f32({1})))}))}))});
  write_bytes(dir.file("map.ckpt"), map);
  CheckpointReader r(dir.file("map.ckpt"), {.warn_unverified = false});
  EXPECT_EQ(r.skipped(), (std::vector<std::string>{"table"}));
  EXPECT_EQ(load_bytes(dir, "map.ckpt", map).names(), (std::vector<std::string>{"a"}));
  expect_ckpt_error([&] { load_bytes(dir, "map.ckpt", map, {.strict = true}); }, CkptErrc::kUnsupported,
                    dir.file("map.ckpt"));
}

TEST(CkptIntegrity, RandomCorruptionOfFixturesNeverCrashes) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  TempDir dir;
  std::mt19937_64 rng(20240611);
  const char* files[] = {"goldenstick_test_sq_predict_simplenet_2stage_fp.ckpt", "mindscience_sciai_example_net_10000.ckpt",
                         "toolkits_net_diff_finder_ms_org_ckpt.ckpt", "serving_lenet_ascend_v111_offical_cv_mnist_bs32_acc98.ckpt"};
  int errors = 0, loads = 0;
  for (const char* f : files) {
    const Bytes orig = read_bytes(ms_fixture(f));
    const int rounds = orig.size() > 100000 ? 20 : 150;
    for (int i = 0; i < rounds; ++i) {
      Bytes b = orig;
      const int kind = static_cast<int>(rng() % 3);
      if (kind == 0) {
        for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n; ++k) b[rng() % b.size()] ^= static_cast<unsigned char>(1u << (rng() % 8));
      } else if (kind == 1) {
        b.resize(rng() % b.size());
      } else {
        b[rng() % b.size()] = static_cast<unsigned char>(rng());
        b.resize(b.size() - rng() % std::min<std::size_t>(b.size(), 64));
      }
      const std::string p = dir.file("m.ckpt");
      std::filesystem::remove(p);
      write_bytes(p, b);
      try {
        load_checkpoint(p, {.warn_unverified = false});
        ++loads;
      } catch (const CheckpointError& e) {
        ++errors;
        EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
      }
    }
  }
  EXPECT_GT(errors, 0);
  EXPECT_GT(loads, 0);  // flips inside tensor contents go unnoticed in trailer-less files
}

}  // namespace
}  // namespace anvil
