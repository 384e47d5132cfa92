// Save -> load round trips: every storage dtype, 0-d / empty / high-rank tensors, strings, append_info,
// slicing, and the exact canonical bytes the writer emits.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstring>

#include "serialization/Checkpoint.h"
#include "serialization/CheckpointReader.h"
#include "serialization/Crc32.h"
#include "serialization/LoadParam.h"
#include "serialization/TensorType.h"
#include "tests/serialization/CkptTestUtil.h"
#include "tests/testutil/TempDir.h"

namespace anvil {
namespace {

using testutil::fill_pattern;
using testutil::read_bytes;
using testutil::TempDir;

constexpr DType kAllDtypes[] = {DType::kBool, DType::kI8,  DType::kI16,  DType::kI32,       DType::kI64,
                                DType::kU8,   DType::kU16, DType::kU32,  DType::kU64,       DType::kF16,
                                DType::kBF16, DType::kF32, DType::kF64,  DType::kComplex64, DType::kComplex128};

Tensor patterned(const Shape& shape, DType dt, std::uint64_t seed) {
  Tensor t = Tensor::empty(shape, dt);
  fill_pattern(t.data_ptr(), t.nbytes(), seed);
  if (dt == DType::kBool) {
    auto* p = static_cast<unsigned char*>(t.data_ptr());
    for (std::size_t i = 0; i < t.nbytes(); ++i) p[i] &= 1;
  }
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.nbytes() == 0 || std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) == 0);
}

SaveOptions fast() {
  SaveOptions o;
  o.durable = false;
  return o;
}

TEST(CkptRoundTrip, EveryStorageDtype) {
  TempDir dir;
  NamedTensors in;
  std::uint64_t seed = 1;
  for (DType dt : kAllDtypes) {
    in.emplace_back("t_" + dtype_name(dt), patterned(Shape{3, 5}, dt, seed++));
    in.emplace_back("s_" + dtype_name(dt), patterned(Shape{}, dt, seed++));
  }
  const auto info = save_checkpoint(in, dir.file("all"), fast());
  EXPECT_EQ(info.path, dir.file("all.ckpt"));  // suffix appended
  EXPECT_EQ(info.entries, in.size());
  const ParamDict out = load_checkpoint(dir.file("all.ckpt"), {.require_integrity = true});
  ASSERT_EQ(out.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out.entries()[i].name, in[i].first);
    EXPECT_TRUE(same_bytes(out.tensor(in[i].first), in[i].second)) << in[i].first;
  }
  // The stored type strings are MindSpore's.
  CheckpointReader r(dir.file("all.ckpt"));
  EXPECT_EQ(r.find("t_bfloat16")->tensor_type, "BFloat16");
  EXPECT_EQ(r.find("t_uint16")->tensor_type, "UInt16");
  EXPECT_EQ(r.find("t_bool")->tensor_type, "Bool");
  EXPECT_EQ(r.find("t_complex128")->tensor_type, "Complex128");
  EXPECT_TRUE(r.find("s_float32")->stored_dims.empty());  // 0-d: no dims (MindSpore >= 2.3)
  EXPECT_EQ(r.integrity(), Integrity::kVerifiedCrc);
}

TEST(CkptRoundTrip, ZeroDEmptyAndHighRank) {
  TempDir dir;
  NamedTensors in = {
      {"scalar", Tensor::scalar(3.25, DType::kF32)},
      {"empty1d", Tensor::empty(Shape{0}, DType::kF32)},
      {"empty3d", Tensor::empty(Shape{2, 0, 3}, DType::kI64)},
      {"rank10", patterned(Shape{2, 1, 2, 1, 2, 1, 2, 1, 2, 3}, DType::kF64, 7)},
      {"one", patterned(Shape{1}, DType::kI32, 8)},
  };
  save_checkpoint(in, dir.file("shapes.ckpt"), fast());
  const ParamDict out = load_checkpoint(dir.file("shapes.ckpt"));
  for (const auto& [name, t] : in) EXPECT_TRUE(same_bytes(out.tensor(name), t)) << name << " " << out.tensor(name).desc();
  EXPECT_EQ(out.tensor("scalar").rank(), 0u);
  EXPECT_EQ(out.tensor("empty1d").shape(), (Shape{0}));
}

TEST(CkptRoundTrip, LegacyScalarDims) {
  TempDir dir;
  SaveOptions o = fast();
  o.legacy_scalar_dims = true;
  save_checkpoint(NamedTensors{{"lr", Tensor::scalar(0.5, DType::kF32)}, {"e", Tensor::empty(Shape{0})}},
                  dir.file("legacy.ckpt"), o);
  CheckpointReader r(dir.file("legacy.ckpt"));
  EXPECT_EQ(r.find("lr")->stored_dims, (std::vector<std::int64_t>{0}));
  EXPECT_EQ(r.find("lr")->shape, Shape{});  // [0] with one element's bytes = 0-d
  EXPECT_EQ(r.find("e")->shape, (Shape{0}));  // [0] with no bytes = empty 1-D
  EXPECT_FLOAT_EQ(static_cast<float>(r.read_tensor(*r.find("lr")).item()), 0.5f);
}

TEST(CkptRoundTrip, StringsAndAppendInfo) {
  TempDir dir;
  ParamDict d;
  d.set("w", patterned(Shape{4}, DType::kF32, 3));
  d.set("note", std::string("héllo wörld ✓ 𝄞"));
  d.set("blank", std::string());
  SaveOptions o = fast();
  o.append_info = {{"epoch_num", std::int64_t{12}},
                   {"step_num", 3400},
                   {"lr", 0.125},
                   {"flag", true},
                   {"tag", std::string("run-7")},
                   {"extra", patterned(Shape{2, 2}, DType::kI16, 4)}};
  save_checkpoint(d, dir.file("s.ckpt"), o);
  const ParamDict out = load_checkpoint(dir.file("s.ckpt"));
  EXPECT_EQ(out.names(), (std::vector<std::string>{"w", "note", "blank", "epoch_num", "step_num", "lr", "flag", "tag",
                                                   "extra"}));
  EXPECT_EQ(out.string("note"), "héllo wörld ✓ 𝄞");
  EXPECT_EQ(out.string("blank"), "");
  EXPECT_EQ(out.string("tag"), "run-7");
  EXPECT_EQ(out.tensor("epoch_num").dtype(), DType::kI64);
  EXPECT_EQ(out.tensor("epoch_num").rank(), 0u);
  EXPECT_EQ(out.get_int("epoch_num"), 12);
  EXPECT_EQ(out.get_int("step_num"), 3400);
  EXPECT_EQ(out.tensor("lr").dtype(), DType::kF32);
  EXPECT_DOUBLE_EQ(out.get_float("lr"), 0.125);
  EXPECT_EQ(out.tensor("flag").dtype(), DType::kBool);
  EXPECT_EQ(out.get_int("flag"), 1);
  EXPECT_TRUE(same_bytes(out.tensor("extra"), std::get<Tensor>(o.append_info[5].second)));
  CheckpointReader r(dir.file("s.ckpt"));
  EXPECT_EQ(r.find("note")->tensor_type, "str");
  EXPECT_EQ(r.find("note")->stored_dims, (std::vector<std::int64_t>{0}));
  EXPECT_EQ(r.find("blank")->nbytes, 4u);  // an empty string is written as one U+0000
}

TEST(CkptRoundTrip, StringEncodingMatchesSpec) {
  const std::string e = encode_utf32le("epoch");
  const unsigned char want[] = {0x65, 0, 0, 0, 0x70, 0, 0, 0, 0x6f, 0, 0, 0, 0x63, 0, 0, 0, 0x68, 0, 0, 0};
  ASSERT_EQ(e.size(), sizeof want);
  EXPECT_EQ(std::memcmp(e.data(), want, sizeof want), 0);
  std::string err;
  const unsigned char bad_len[] = {0x65, 0, 0};
  EXPECT_FALSE(decode_utf32le(bad_len, 3, &err));
  const unsigned char surrogate[] = {0x00, 0xd8, 0, 0};
  EXPECT_FALSE(decode_utf32le(surrogate, 4, &err));
  const unsigned char too_big[] = {0x00, 0x00, 0x11, 0};
  EXPECT_FALSE(decode_utf32le(too_big, 4, &err));
  EXPECT_THROW(encode_utf32le("\xff\xfe"), Error);
}

TEST(CkptRoundTrip, SlicesSplitLikeNumpyAndJoin) {
  TempDir dir;
  // 1000 float32 = 4000 bytes; slice_bytes 1024 -> ceil(4000/1024) = 4 parts of 250 elements.
  // 1001 int16 = 2002 bytes -> 2 parts: 501 and 500 elements (array_split: the first one longer).
  NamedTensors in = {{"a", patterned(Shape{10, 100}, DType::kF32, 1)},
                     {"b", patterned(Shape{7, 11, 13}, DType::kI16, 2)},
                     {"small", patterned(Shape{3}, DType::kF32, 3)}};
  SaveOptions o = fast();
  o.slice_bytes = 1024;
  const auto info = save_checkpoint(in, dir.file("sl.ckpt"), o);
  CheckpointReader r(dir.file("sl.ckpt"), {.require_integrity = true});
  EXPECT_EQ(info.entries, r.entries().size());
  const CheckpointItem* a = r.find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->entry_count, 4u);
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(r.entries()[a->first_entry + k].content_size, 1000u);
    EXPECT_EQ(r.entries()[a->first_entry + k].dims, (std::vector<std::int64_t>{10, 100}));  // full dims
  }
  const CheckpointItem* b = r.find("b");
  ASSERT_EQ(b->entry_count, 2u);
  EXPECT_EQ(r.entries()[b->first_entry].content_size, 501u * 2);
  EXPECT_EQ(r.entries()[b->first_entry + 1].content_size, 500u * 2);
  EXPECT_EQ(r.find("small")->entry_count, 1u);
  const ParamDict out = load_checkpoint(dir.file("sl.ckpt"));
  for (const auto& [name, t] : in) EXPECT_TRUE(same_bytes(out.tensor(name), t)) << name;
}

TEST(CkptRoundTrip, CanonicalBytes) {
  TempDir dir;
  Tensor w = Tensor::from_vector<float>({1.0f, 2.0f}, Shape{2, 1});
  SaveOptions o = fast();
  o.crc_check = false;
  save_checkpoint(NamedTensors{{"ab", w}, {"s", Tensor::scalar(1.0, DType::kF32)}}, dir.file("c.ckpt"), o);
  const auto bytes = read_bytes(dir.file("c.ckpt"));
  const std::vector<unsigned char> want = {
      0x0A, 0x1D,                                                      // entry, 29 bytes
      0x0A, 0x02, 'a', 'b',                                            // tag
      0x12, 0x17,                                                      // tensor, 23 bytes
      0x08, 0x02, 0x08, 0x01,                                          // dims [2,1]
      0x12, 0x07, 'F', 'l', 'o', 'a', 't', '3', '2',                   // type
      0x1A, 0x08, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40,                     // content
      0x0A, 0x14, 0x0A, 0x01, 's', 0x12, 0x0F,                         // entry 2: tag "s", tensor 15 bytes
      0x12, 0x07, 'F', 'l', 'o', 'a', 't', '3', '2', 0x1A, 0x04, 0, 0, 0x80, 0x3f};  // no dims
  EXPECT_EQ(bytes, want);
}

TEST(CkptRoundTrip, TrailerMatchesSpecExample) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  // The spec's example: the 227-byte goldenstick fixture plus a trailer ends in 63 72 63 5f 6e 75 6d
  // 00 00 00 00 00 00 61 17 df 19. Re-encode it from its parsed entries with the trailer on.
  const std::string src = testutil::ms_fixture("goldenstick_test_sq_predict_simplenet_2stage_fp.ckpt");
  TempDir dir;
  CheckpointReader r(src, {.warn_unverified = false});
  CheckpointWriterOptions wo;
  wo.file.durable = false;
  CheckpointWriter w(dir.file("t.ckpt"), wo);
  for (const auto& e : r.entries()) {
    std::vector<unsigned char> content(e.content_size);
    const CheckpointItem* item = r.find(e.tag);
    r.read_into(*item, content.data());
    w.write_raw_entry(e.tag, e.dims, e.tensor_type, content.data(), content.size());
  }
  const auto info = w.commit();
  const auto bytes = read_bytes(dir.file("t.ckpt"));
  ASSERT_EQ(bytes.size(), 227u + 17u);
  const std::vector<unsigned char> tail(bytes.end() - 17, bytes.end());
  const std::vector<unsigned char> want = {0x63, 0x72, 0x63, 0x5f, 0x6e, 0x75, 0x6d, 0, 0, 0, 0, 0, 0, 0x61, 0x17, 0xdf, 0x19};
  EXPECT_EQ(tail, want);
  EXPECT_EQ(info.data_crc32, 0x6117df19u);
  EXPECT_EQ(info.crc32, crc32_update(0, bytes.data(), bytes.size()));
  EXPECT_EQ(crc32_update(0, "123456789", 9), 0xCBF43926u);
}

TEST(CkptRoundTrip, FileModeSuffixAndOverwrite) {
  TempDir dir;
  NamedTensors in = {{"x", Tensor::ones(Shape{2})}};
  save_checkpoint(in, dir.file("m"), {});  // durable default
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("m.ckpt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);
  // Overwriting a read-only checkpoint works (rename replaces it) and leaves no temporary behind.
  in[0].second.fill_(5.0);
  save_checkpoint(in, dir.file("m.ckpt"), {});
  EXPECT_EQ(load_checkpoint(dir.file("m.ckpt")).tensor("x").to_vector<float>(), (std::vector<float>{5, 5}));
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST(CkptRoundTrip, InvalidInputRejectedBeforeWriting) {
  TempDir dir;
  SaveOptions o = fast();
  o.append_info = {{"x", std::int64_t{1}}};
  try {
    save_checkpoint(NamedTensors{{"x", Tensor::ones(Shape{1})}}, dir.file("dup.ckpt"), o);
    FAIL() << "duplicate accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'x'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(save_checkpoint(NamedTensors{{"u", Tensor()}}, dir.file("u.ckpt"), fast()), Error);
  EXPECT_THROW(save_checkpoint(NamedTensors{{"", Tensor::ones(Shape{1})}}, dir.file("e.ckpt"), fast()), Error);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  // A missing directory is a FileError naming the path.
  try {
    save_checkpoint(NamedTensors{{"a", Tensor::ones(Shape{1})}}, dir.file("no/such/dir/x.ckpt"), fast());
    FAIL();
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/dir"), std::string::npos) << e.what();
  }
}

TEST(CkptRoundTrip, LargeFileReadThroughTheMapping) {
  // Files of kMapThresholdBytes or more are checksummed and copied from a memory mapping; the result must
  // equal the pread path's, slices included.
  TempDir dir;
  const std::int64_t n = static_cast<std::int64_t>(kMapThresholdBytes / 4) + 12345;
  Tensor big = patterned(Shape{n}, DType::kF32, 11);
  SaveOptions o = fast();
  o.slice_bytes = 8 << 20;
  save_checkpoint(NamedTensors{{"big", big}, {"small", patterned(Shape{7}, DType::kI8, 12)}}, dir.file("big.ckpt"), o);
  ASSERT_GE(std::filesystem::file_size(dir.file("big.ckpt")), kMapThresholdBytes);
  for (bool use_mmap : {true, false}) {
    SCOPED_TRACE(use_mmap);
    CheckpointReader r(dir.file("big.ckpt"), {.require_integrity = true, .use_mmap = use_mmap});
    EXPECT_EQ(r.find("big")->entry_count, 5u);
    EXPECT_TRUE(same_bytes(r.read_tensor(*r.find("big")), big));
  }
  testutil::TestCell net;
  Tensor dst = net.param("big", Tensor::zeros(Shape{n}));
  auto res = load_checkpoint_into_net(net, dir.file("big.ckpt"), {.load = {.require_integrity = true}});
  EXPECT_TRUE(res.param_not_load.empty());
  EXPECT_TRUE(same_bytes(dst, big));
  // A flipped bit deep inside is caught by the CRC computed over the mapping.
  auto bytes = read_bytes(dir.file("big.ckpt"));
  bytes[bytes.size() / 2] ^= 0x10;
  testutil::write_bytes(dir.file("flip.ckpt"), bytes);
  testutil::expect_ckpt_error([&] { load_checkpoint(dir.file("flip.ckpt")); }, CkptErrc::kCrcMismatch,
                              dir.file("flip.ckpt"));
}

TEST(CkptRoundTrip, NetworkAndOptimizerInOneFile) {
  TempDir dir;
  testutil::TestCell net;
  net.param("w", patterned(Shape{3, 2}, DType::kF32, 1));
  net.buffer("running", patterned(Shape{3}, DType::kF32, 2));
  save_checkpoint(net, dir.file("n"), fast());
  const ParamDict out = load_checkpoint(dir.file("n.ckpt"));
  EXPECT_EQ(out.names(), (std::vector<std::string>{"w", "running"}));
}

}  // namespace
}  // namespace anvil
