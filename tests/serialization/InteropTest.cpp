// Files written by Anvil are readable by MindSpore >= 2.3, which strips the crc_num trailer and parses
// the rest with protobuf: decode an Anvil file, trailer removed, with protobuf's generated C++ classes,
// with python3-protobuf (Debian's /usr/bin/python3) and with `protoc --decode`, all against our
// serialization/proto/checkpoint.proto.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "checkpoint.pb.h"
#include "serialization/Checkpoint.h"
#include "tests/serialization/CkptTestUtil.h"
#include "tests/testutil/TempDir.h"

namespace anvil {
namespace {

using testutil::read_bytes;
using testutil::TempDir;
using testutil::write_bytes;

const char* kSchemaDir = ANVIL_SOURCE_DIR "/serialization/proto";

// Writes an Anvil checkpoint with several dtypes, a string, append_info and slices; returns the path of
// a copy with the 17-byte trailer removed (what MindSpore >= 2.3 parses).
std::string write_anvil_file(const TempDir& dir) {
  ParamDict d;
  d.set("conv1.weight", Tensor::from_vector<float>({0.5f, -1.25f, 3.0f, 4.0f, 5.0f, 6.0f}, Shape{6, 1, 1, 1}));
  d.set("fc.bias", Tensor::from_vector<double>({1.0, 2.0}, Shape{2}));
  d.set("global_step", Tensor::from_vector<std::int32_t>({7}, Shape{1}));
  d.set("note", std::string("anvil"));
  SaveOptions o;
  o.durable = false;
  o.slice_bytes = 16;  // conv1.weight (24 bytes) is written as two slices
  o.append_info = {{"epoch_num", std::int64_t{3}}, {"lr", 0.5}};
  save_checkpoint(d, dir.file("anvil.ckpt"), o);
  auto bytes = read_bytes(dir.file("anvil.ckpt"));
  EXPECT_EQ(std::string(bytes.end() - 17, bytes.end() - 10), "crc_num");
  bytes.resize(bytes.size() - 17);
  write_bytes(dir.file("stripped.ckpt"), bytes);
  return dir.file("stripped.ckpt");
}

int run(const std::string& cmd, std::string* out) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  const int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(CkptInterop, ProtobufGeneratedClassesParseAnvilFiles) {
  TempDir dir;
  const auto bytes = read_bytes(write_anvil_file(dir));
  msckpt::Checkpoint c;
  ASSERT_TRUE(c.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  EXPECT_TRUE(c.IsInitialized());  // every proto2 required field present
  EXPECT_TRUE(c.unknown_fields().empty());
  ASSERT_EQ(c.value_size(), 7);  // conv1.weight x2 (slices), fc.bias, global_step, note, epoch_num, lr
  EXPECT_EQ(c.value(0).tag(), "conv1.weight");
  EXPECT_EQ(c.value(1).tag(), "conv1.weight");
  EXPECT_EQ(c.value(0).tensor().dims_size(), 4);
  EXPECT_EQ(c.value(0).tensor().tensor_type(), "Float32");
  EXPECT_EQ(c.value(0).tensor().tensor_content().size() + c.value(1).tensor().tensor_content().size(), 24u);
  float first;
  std::memcpy(&first, c.value(0).tensor().tensor_content().data(), 4);
  EXPECT_EQ(first, 0.5f);
  EXPECT_EQ(c.value(2).tensor().tensor_type(), "Float64");
  EXPECT_EQ(c.value(3).tensor().tensor_type(), "Int32");
  EXPECT_EQ(c.value(4).tensor().tensor_type(), "str");
  EXPECT_EQ(c.value(4).tensor().tensor_content(), std::string("a\0\0\0n\0\0\0v\0\0\0i\0\0\0l\0\0\0", 20));
  EXPECT_EQ(c.value(5).tag(), "epoch_num");
  EXPECT_EQ(c.value(5).tensor().tensor_type(), "Int64");
  EXPECT_EQ(c.value(5).tensor().dims_size(), 0);  // 0-d: no dims (MindSpore >= 2.3)
  // Serialising the parsed message again gives the same bytes: our encoding is protobuf's canonical one.
  std::string again;
  ASSERT_TRUE(c.SerializeToString(&again));
  EXPECT_EQ(again, std::string(bytes.begin(), bytes.end()));
  // With the trailer left on, a plain protobuf parse fails ("crc_num" is not a field): that is why
  // readers strip it first.
  const auto with_trailer = read_bytes(dir.file("anvil.ckpt"));
  msckpt::Checkpoint c2;
  EXPECT_FALSE(c2.ParseFromArray(with_trailer.data(), static_cast<int>(with_trailer.size())));
}

TEST(CkptInterop, Python3ProtobufDecodesAnvilFiles) {
  const char* py = "/usr/bin/python3";
  std::string probe;
  if (run(std::string(py) + " -c 'import google.protobuf' 2>&1", &probe) != 0)
    GTEST_SKIP() << "python3-protobuf is not installed for " << py << " (apt-get install python3-protobuf)";
  TempDir dir;
  const std::string file = write_anvil_file(dir);
  std::string out;
  ASSERT_EQ(run(std::string(ANVIL_PROTOC) + " -I" + kSchemaDir + " --python_out=" + dir.path().string() + " " + kSchemaDir +
                    "/checkpoint.proto 2>&1",
                &out),
            0)
      << out;
  const std::string script = R"PY(
import sys, struct
sys.path.insert(0, sys.argv[1])
import checkpoint_pb2
c = checkpoint_pb2.Checkpoint()
c.ParseFromString(open(sys.argv[2], 'rb').read())
assert c.IsInitialized()
for v in c.value:
    t = v.tensor
    first = ''
    if t.tensor_type == 'Float32' and t.tensor_content: first = repr(struct.unpack('<f', t.tensor_content[:4])[0])
    if t.tensor_type == 'str': first = t.tensor_content.decode('utf-32-le')
    print(v.tag, list(t.dims), t.tensor_type, len(t.tensor_content), first)
)PY";
  const std::string script_path = dir.file("decode.py");
  write_bytes(script_path, reinterpret_cast<const unsigned char*>(script.data()), script.size());
  out.clear();
  ASSERT_EQ(run(std::string(py) + " " + script_path + " " + dir.path().string() + " " + file + " 2>&1", &out), 0) << out;
  EXPECT_EQ(out,
            "conv1.weight [6, 1, 1, 1] Float32 12 0.5\n"
            "conv1.weight [6, 1, 1, 1] Float32 12 4.0\n"
            "fc.bias [2] Float64 16 \n"
            "global_step [1] Int32 4 \n"
            "note [0] str 20 anvil\n"
            "epoch_num [] Int64 8 \n"
            "lr [] Float32 4 0.5\n");
}

TEST(CkptInterop, ProtocDecodesAnvilFiles) {
  std::string probe;
  if (run(std::string(ANVIL_PROTOC) + " --version 2>&1", &probe) != 0)
    GTEST_SKIP() << "protoc is not available: " << probe;
  TempDir dir;
  const std::string file = write_anvil_file(dir);
  std::string out;
  ASSERT_EQ(run(std::string(ANVIL_PROTOC) + " -I" + kSchemaDir + " --decode=msckpt.Checkpoint " + kSchemaDir +
                    "/checkpoint.proto < " + file + " 2>&1",
                &out),
            0)
      << out;
  EXPECT_NE(out.find("tag: \"conv1.weight\""), std::string::npos) << out;
  EXPECT_NE(out.find("tensor_type: \"str\""), std::string::npos) << out;
  EXPECT_NE(out.find("tag: \"epoch_num\""), std::string::npos) << out;
  EXPECT_EQ(out.find("crc_num"), std::string::npos);
}

}  // namespace
}  // namespace anvil
