// OneFlow variable directories: fixtures of every era (spec §11), meta bytes, writer rules.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "serialization/oneflow/VarDir.h"
#include "tests/testutil/Paths.h"
#include "tests/testutil/TempDir.h"
#include "tests/testutil/Errors.h"

namespace fs = std::filesystem;
using namespace anvil;
using anvil::testutil::error_of;
using namespace anvil::oneflow;

namespace {

std::string fx(const std::string& rel) { return testutil::fixtures_dir() + "/oneflow/" + rel; }
const char* kConvParams = "Oneflow-Inc__oneflow/python/oneflow/test/modules/save_load_test_data/3x3_i3o3_conv2d_params";
const char* kConvWhole = "Oneflow-Inc__oneflow/python/oneflow/test/modules/save_load_test_data/3x3_i3o3_conv2d";
const char* kAffine = "Oneflow-Inc__oneflow/oneflow/api/cpp/tests/graph_test_model/affine_with_parameter";
const char* kMobile = "Oneflow-Inc__models/mobilenetv3/mobilenetv3_oneflow_model";
const char* kFrappe = "Oneflow-Inc__models/RecommenderSystems/dcn/models-torch2flow/frappe";
const char* kResnet = "Oneflow-Inc__oneflow_convert/nchw2nhwc_tool/resnet50_nhwc";

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
void spit(const std::string& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}
std::map<std::string, Tensor> as_map(const NamedTensors& v) {
  std::map<std::string, Tensor> m;
  for (auto& [k, t] : v) m[k] = t;
  return m;
}
}  // namespace

TEST(OneFlowMeta, CanonicalBytesMatchOneFlow) {
  EXPECT_EQ(format_meta({3, 4}, 2), "shape {\n  dim: 3\n  dim: 4\n}\ndata_type: kFloat\n");
  EXPECT_EQ(format_meta({3, 4}, 2).size(), 46u);
  EXPECT_EQ(format_meta({4}, 2).size(), 37u);
  EXPECT_EQ(format_meta({3, 3, 3, 3}, 2).size(), 64u);
  EXPECT_EQ(format_meta({16, 3, 3, 3}, 2).size(), 65u);
  EXPECT_EQ(format_meta({}, 2), "shape {\n}\ndata_type: kFloat\n");
  EXPECT_EQ(format_meta({1}, 6), "shape {\n  dim: 1\n}\ndata_type: kInt64\n");
  EXPECT_EQ(format_meta({1}, 6).size(), 37u);
  // The writer's enum per dtype.
  EXPECT_EQ(data_type_name(data_type_for(DType::kF32, false, "x")), "kFloat");
  EXPECT_EQ(data_type_name(data_type_for(DType::kF64, false, "x")), "kDouble");
  EXPECT_EQ(data_type_name(data_type_for(DType::kI32, false, "x")), "kInt32");
  EXPECT_EQ(data_type_name(data_type_for(DType::kI64, false, "x")), "kInt64");
  EXPECT_EQ(data_type_name(data_type_for(DType::kI8, false, "x")), "kInt8");
  EXPECT_EQ(data_type_name(data_type_for(DType::kU8, false, "x")), "kUInt8");
  EXPECT_EQ(data_type_name(data_type_for(DType::kF16, false, "x")), "kFloat16");
  EXPECT_THROW(data_type_for(DType::kBool, false, "x"), Error);
  EXPECT_EQ(data_type_name(data_type_for(DType::kBool, true, "x")), "kBool");
  EXPECT_THROW(data_type_for(DType::kU32, true, "x"), Error);
}

TEST(OneFlowMeta, FixtureMetaBytesEqualOurs) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  EXPECT_EQ(slurp(fx(kAffine) + "/model.a/meta"), format_meta({3, 4}, 2));
  EXPECT_EQ(slurp(fx(kAffine) + "/model.b/meta"), format_meta({4}, 2));
  EXPECT_EQ(slurp(fx(kConvParams) + "/tensor_5/meta"), format_meta({3, 3, 3, 3}, 2));
  EXPECT_EQ(slurp(fx(kMobile) + "/features.0.0.weight/meta"), format_meta({16, 3, 3, 3}, 2));
}

TEST(OneFlowMeta, ParserAcceptsTextFormatVariants) {
  auto m = parse_meta("data_type: 3 # double\nshape < dim: [2, 5] >", "m");
  EXPECT_EQ(m.shape, (std::vector<std::int64_t>{2, 5}));
  EXPECT_EQ(m.data_type, 3);
  auto z = parse_meta("data_type: kInt64;", "m");
  EXPECT_TRUE(z.shape.empty());
  EXPECT_EQ(z.data_type, 6);
  auto c = parse_meta("shape: { dim: 1, dim: 2 }, data_type: kFloat", "m");
  EXPECT_EQ(c.shape, (std::vector<std::int64_t>{1, 2}));
  EXPECT_NE(error_of([] { parse_meta("shape { dim: 3 }", "/x/meta"); }).find("/x/meta"), std::string::npos);
  EXPECT_NE(error_of([] { parse_meta("shape { dim: -3 } data_type: kFloat", "m"); }).find("negative"), std::string::npos);
  EXPECT_NE(error_of([] { parse_meta("shape {} shape {} data_type: kFloat", "m"); }).find("repeated"), std::string::npos);
  EXPECT_NE(error_of([] { parse_meta("data_type: kFloat data_type: kFloat", "m"); }).find("repeated"), std::string::npos);
  EXPECT_NE(error_of([] { parse_meta("data_type: kFloaty", "m"); }).find("kFloaty"), std::string::npos);
  EXPECT_NE(error_of([] { parse_meta("foo: 1 data_type: kFloat", "m"); }).find("foo"), std::string::npos);
}

TEST(OneFlowFixtures, GraphEraAffine) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  auto info = scan_variable_directory(fx(kAffine));
  EXPECT_FALSE(info.has_snapshot_done);
  ASSERT_EQ(info.warnings.size(), 1u);
  EXPECT_NE(info.warnings[0].find("no snapshot_done marker"), std::string::npos);
  auto m = as_map(load_named_tensors(fx(kAffine)));
  ASSERT_EQ(m.size(), 2u);
  Tensor a = m["model.a"], b = m["model.b"];
  EXPECT_EQ(a.shape(), Shape({3, 4}));
  EXPECT_EQ(b.shape(), Shape({4}));
  EXPECT_EQ(a.dtype(), DType::kF32);
  // ones(1,3) . a + b = 4 everywhere
  auto av = a.to_vector<float>(), bv = b.to_vector<float>();
  for (int j = 0; j < 4; ++j) {
    float s = bv[j];
    for (int i = 0; i < 3; ++i) s += av[i * 4 + j];
    EXPECT_FLOAT_EQ(s, 4.0f);
  }
}

TEST(OneFlowFixtures, PickleEraStateDict) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  auto raw = as_map(load_raw_tensors(fx(kConvParams)));
  ASSERT_EQ(raw.size(), 2u);
  auto w = raw["tensor_5"].to_vector<float>();
  ASSERT_EQ(w.size(), 81u);
  EXPECT_FLOAT_EQ(w[0], -0.13526918f);
  EXPECT_FLOAT_EQ(w[1], -0.18293649f);
  EXPECT_FLOAT_EQ(w[2], 0.06732537f);
  EXPECT_NEAR(w[3], -0.01148517f, 1e-8);
  auto bv = raw["tensor_6"].to_vector<float>();
  ASSERT_EQ(bv.size(), 3u);
  EXPECT_FLOAT_EQ(bv[0], -0.07061117f);
  EXPECT_FLOAT_EQ(bv[1], -0.16549598f);
  EXPECT_FLOAT_EQ(bv[2], -0.14188275f);
  auto named = load_named_tensors(fx(kConvParams));
  ASSERT_EQ(named.size(), 2u);
  EXPECT_EQ(named[0].first, "weight");
  EXPECT_EQ(named[1].first, "bias");
  EXPECT_EQ(named[0].second.to_vector<float>(), w);
  EXPECT_EQ(named[1].second.to_vector<float>(), bv);
}

TEST(OneFlowFixtures, PickleOfWholeModuleRejected) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  auto raw = as_map(load_raw_tensors(fx(kConvWhole)));
  ASSERT_EQ(raw.size(), 2u);
  auto ref = as_map(load_raw_tensors(fx(kConvParams)));
  EXPECT_EQ(raw["tensor_3"].to_vector<float>(), ref["tensor_5"].to_vector<float>());
  EXPECT_EQ(raw["tensor_4"].to_vector<float>(), ref["tensor_6"].to_vector<float>());
  std::string e = error_of([] { load_named_tensors(fx(kConvWhole)); });
  EXPECT_NE(e.find("oneflow.nn.modules.conv.Conv2d"), std::string::npos) << e;
  EXPECT_NE(e.find("pickle-era"), std::string::npos) << e;
}

TEST(OneFlowFixtures, ModuleEraMobileNet) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  auto info = scan_variable_directory(fx(kMobile));
  EXPECT_TRUE(info.has_snapshot_done);
  EXPECT_TRUE(info.warnings.empty());
  auto m = as_map(load_named_tensors(fx(kMobile)));
  ASSERT_EQ(m.size(), 7u);
  struct Row { const char* name; Shape shape; float first; };
  std::vector<Row> rows = {
      {"features.0.0.weight", Shape({16, 3, 3, 3}), 0.8890962f}, {"features.0.1.weight", Shape({16}), 0.35894886f},
      {"features.0.1.bias", Shape({16}), 4.5229721f},           {"features.0.1.running_mean", Shape({16}), -0.5492925f},
      {"features.0.1.running_var", Shape({16}), 13.093858f},    {"features.1.block.1.fc1.bias", Shape({8}), -1.7194443e-09f},
      {"classifier.3.bias", Shape({1000}), -0.44020379f}};
  for (auto& r : rows) {
    ASSERT_TRUE(m.count(r.name)) << r.name;
    EXPECT_EQ(m[r.name].shape(), r.shape) << r.name;
    EXPECT_FLOAT_EQ(m[r.name].to_vector<float>()[0], r.first) << r.name;
  }
  EXPECT_FLOAT_EQ(m["features.0.0.weight"].to_vector<float>()[1], 1.1630669f);
}

TEST(OneFlowFixtures, PickleEraFrappeProtocol3) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  auto info = scan_variable_directory(fx(kFrappe));
  ASSERT_EQ(info.layout, Layout::kPickle);
  ASSERT_TRUE(info.pickle_names.has_value()) << info.pickle_error;
  ASSERT_EQ(info.pickle_names->size(), 42u);
  const char* f[] = {"user", "item", "daytime", "weekday", "isweekend", "homework", "cost", "weather", "country", "city"};
  std::int64_t d0[] = {957, 4082, 7, 7, 2, 3, 2, 9, 80, 233};
  auto named = load_named_tensors(fx(kFrappe));
  ASSERT_EQ(named.size(), 42u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ((*info.pickle_names)[i].second, fmt::format("tensor_{}", i + 1));
    EXPECT_EQ(named[i].first, fmt::format("embedding_dict.{}.weight", f[i]));
    EXPECT_EQ(named[i].second.shape(), Shape({d0[i], 10}));
    EXPECT_EQ(named[10 + i].first, fmt::format("linear_model.embedding_dict.{}.weight", f[i]));
    EXPECT_EQ(named[10 + i].second.shape(), Shape({d0[i], 1}));
  }
  EXPECT_EQ(named[20].first, "out.bias");
  EXPECT_FLOAT_EQ(named[20].second.to_vector<float>()[0], 0.046272133f);
  EXPECT_EQ(named[21].first, "dnn.linears.0.weight");
  EXPECT_EQ(named[21].second.shape(), Shape({400, 100}));
  EXPECT_EQ(named[25].first, "dnn.linears.2.weight");
  EXPECT_EQ(named[27].first, "dnn.bn.0.weight");
  EXPECT_FLOAT_EQ(named[27].second.to_vector<float>()[0], 0.99656707f);
  EXPECT_EQ(named[38].first, "dnn.bn.2.running_var");
  EXPECT_EQ(named[39].first, "dnn_linear.weight");
  EXPECT_EQ(named[39].second.shape(), Shape({1, 500}));
  EXPECT_EQ(named[40].first, "crossnet.kernels");
  EXPECT_EQ(named[41].first, "crossnet.bias");
  EXPECT_EQ(named[41].second.shape(), Shape({3, 100, 1}));
  EXPECT_FLOAT_EQ(named[0].second.to_vector<float>()[0], -0.21128613f);
}

TEST(OneFlowFixtures, NegativeResnetFloat64InFloat32Rejected) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  std::string e = error_of([] { load_named_tensors(fx(kResnet)); });
  EXPECT_NE(e.find("unexpected model snapshot size, path: "), std::string::npos) << e;
  EXPECT_NE(e.find("Resnet-conv1"), std::string::npos) << e;
  EXPECT_NE(e.find("75264"), std::string::npos) << e;
  // Each variable on its own names its path and both sizes.
  auto info = scan_variable_directory(fx(kResnet));
  ASSERT_EQ(info.variables.size(), 2u);
  for (auto& v : info.variables) {
    std::string ev = error_of([&] { read_variable(v); });
    EXPECT_NE(ev.find(v.dir + "/out"), std::string::npos) << ev;
    EXPECT_NE(ev.find("75264"), std::string::npos) << ev;
    EXPECT_NE(ev.find(v.name == "Resnet-conv1-weight" ? "37632" : "256 bytes"), std::string::npos) << ev;
  }
}

TEST(OneFlowFixtures, SingleFilePickleAndMissingPath) {
  testutil::TempDir td;
  spit(td.file("model.pkl"), std::string("\x80\x04\x95", 3));
  EXPECT_NE(error_of([&] { scan_variable_directory(td.file("model.pkl")); }).find("single-file OneFlow pickle"),
            std::string::npos);
  spit(td.file("x.txt"), "hello");
  EXPECT_NE(error_of([&] { scan_variable_directory(td.file("x.txt")); }).find("not a OneFlow variable directory"),
            std::string::npos);
  EXPECT_NE(error_of([&] { scan_variable_directory(td.file("nope")); }).find("doesn't exist!"), std::string::npos);
}

TEST(OneFlowPickle, RejectsForeignOpcodesAndClasses) {
  // protocol 2 pickle of a list: EMPTY_LIST is outside the subset.
  EXPECT_NE(error_of([] { read_pickled_state_dict(std::string("\x80\x02]q\x00.", 6), "p"); }).find("opcode 0x5d"),
            std::string::npos);
  std::string evil = "cos\nsystem\n(X\x02\x00\x00\x00lstR.";
  EXPECT_NE(error_of([&] { read_pickled_state_dict(evil, "p"); }).find("os.system"), std::string::npos);
  EXPECT_NE(error_of([] { read_pickled_state_dict(std::string("\x80\x04}", 3), "p"); }).find("truncated"),
            std::string::npos);
  // A dict that holds itself (memo + SETITEM): refused, and no reference cycle is leaked (ASan).
  const std::string self_ref("}q\x00\x8c\x01xh\x00s.", 10);
  EXPECT_NE(error_of([&] { read_pickled_state_dict(self_ref, "p"); }).find("unexpected top-level key"), std::string::npos);
}

TEST(OneFlowEraA, LegacyOutOnlyNeedsModelShape) {
  testutil::TempDir td;
  std::string root = td.file("legacy");
  fs::create_directories(root + "/w");
  fs::create_directories(root + "/empty");
  spit(root + "/snapshot_done", "");
  float vals[6] = {1, 2, 3, 4, 5, 6};
  spit(root + "/w/out", std::string(reinterpret_cast<char*>(vals), sizeof vals));
  auto info = scan_variable_directory(root);
  ASSERT_EQ(info.variables.size(), 1u);
  ASSERT_EQ(info.warnings.size(), 1u);
  EXPECT_NE(info.warnings[0].find("does not have valid tensor data"), std::string::npos);
  EXPECT_FALSE(info.variables[0].meta.has_value());
  EXPECT_NE(error_of([&] { read_variable(info.variables[0]); }).find("has no meta"), std::string::npos);
  Tensor t = read_variable(info.variables[0], Shape({2, 3}), DType::kF32);
  EXPECT_EQ(t.to_vector<float>(), std::vector<float>(vals, vals + 6));
  EXPECT_THROW(read_variable(info.variables[0], Shape({4}), DType::kF32), Error);
  // A path that is one variable directory.
  auto single = scan_variable_directory(root + "/w");
  EXPECT_EQ(single.layout, Layout::kSingleVariable);
  EXPECT_EQ(single.variables.at(0).name, "w");
}

TEST(OneFlowWriter, RoundTripAllDtypesAndByteExactMeta) {
  testutil::TempDir td;
  NamedTensors ts;
  ts.emplace_back("f32", Tensor::from_vector<float>({1.5f, -2, 3, 4, 5, 6}, Shape({2, 3})));
  ts.emplace_back("f64", Tensor::from_vector<double>({0.25, 1e300}, Shape({2})));
  ts.emplace_back("i32", Tensor::from_vector<std::int32_t>({-7, 8}, Shape({2})));
  ts.emplace_back("i64", Tensor::from_vector<std::int64_t>({1LL << 40}, Shape({1})));
  ts.emplace_back("u8", Tensor::from_vector<std::uint8_t>({0, 255, 7}, Shape({3})));
  Tensor i8 = Tensor::empty(Shape({2, 2}), DType::kI8);
  std::memset(i8.data_ptr(), 0xfd, 4);
  ts.emplace_back("i8", i8);
  Tensor f16 = Tensor::empty(Shape({3}), DType::kF16);
  std::memset(f16.data_ptr(), 0x38, 6);
  ts.emplace_back("f16", f16);
  ts.emplace_back("scalar", Tensor::scalar(2.5));
  ts.emplace_back(train_step_name("TrainNet"), train_step_tensor(5));
  std::string root = td.file("model");
  save_variable_directory(root, ts);
  EXPECT_TRUE(fs::exists(root + "/snapshot_done"));
  EXPECT_EQ(fs::file_size(root + "/snapshot_done"), 0u);
  EXPECT_EQ(slurp(root + "/f32/meta"), "shape {\n  dim: 2\n  dim: 3\n}\ndata_type: kFloat\n");
  EXPECT_EQ(slurp(root + "/f64/meta"), "shape {\n  dim: 2\n}\ndata_type: kDouble\n");
  EXPECT_EQ(slurp(root + "/i32/meta"), "shape {\n  dim: 2\n}\ndata_type: kInt32\n");
  EXPECT_EQ(slurp(root + "/i64/meta"), "shape {\n  dim: 1\n}\ndata_type: kInt64\n");
  EXPECT_EQ(slurp(root + "/u8/meta"), "shape {\n  dim: 3\n}\ndata_type: kUInt8\n");
  EXPECT_EQ(slurp(root + "/i8/meta"), "shape {\n  dim: 2\n  dim: 2\n}\ndata_type: kInt8\n");
  EXPECT_EQ(slurp(root + "/f16/meta"), "shape {\n  dim: 3\n}\ndata_type: kFloat16\n");
  EXPECT_EQ(slurp(root + "/scalar/meta"), "shape {\n}\ndata_type: kFloat\n");
  EXPECT_EQ(slurp(root + "/System-Train-TrainStep-TrainNet/out"), std::string("\x05\0\0\0\0\0\0\0", 8));
  auto back = load_named_tensors(root);
  ASSERT_EQ(back.size(), ts.size());
  auto m = as_map(back);
  for (auto& [n, t] : ts) {
    ASSERT_TRUE(m.count(n)) << n;
    EXPECT_EQ(m[n].shape(), t.shape()) << n;
    EXPECT_EQ(m[n].dtype(), t.dtype()) << n;
    ASSERT_EQ(m[n].nbytes(), t.nbytes());
    EXPECT_EQ(std::memcmp(m[n].data_ptr(), t.data_ptr(), t.nbytes()), 0) << n;
  }
  // No temporary left behind.
  for (auto& e : fs::directory_iterator(td.path())) EXPECT_EQ(e.path().filename().string().find(".model.tmp-"), std::string::npos);
}

TEST(OneFlowWriter, RefusesNonEmptyTargetAndBadNames) {
  testutil::TempDir td;
  NamedTensors ts{{"w", Tensor::ones(Shape({2}))}};
  std::string root = td.file("m");
  fs::create_directories(root);
  save_variable_directory(root, ts);  // an empty existing directory is accepted
  std::string e = error_of([&] { save_variable_directory(root, ts); });
  EXPECT_EQ(e.rfind(root + " is a file or non-empty directory!", 0), 0u) << e;
  spit(td.file("f"), "x");
  EXPECT_NE(error_of([&] { save_variable_directory(td.file("f"), ts); }).find("is a file or non-empty directory!"),
            std::string::npos);
  for (const std::string& bad : std::vector<std::string>{"", ".", "..", "a/b", "snapshot_done", "pickled_data", std::string("a\0b", 3)}) {
    EXPECT_THROW(save_variable_directory(td.file("n"), {{bad, Tensor::ones(Shape({1}))}}), Error) << bad;
    EXPECT_FALSE(fs::exists(td.file("n")));
  }
  EXPECT_NE(error_of([&] { save_variable_directory(td.file("n"), {{"a", ts[0].second}, {"a", ts[0].second}}); })
                .find("duplicate"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(td.file("n")));
  // Stale temporaries of an earlier crash are removed by the next save.
  fs::create_directories(td.file(".n.tmp-dead"));
  save_variable_directory(td.file("n"), ts);
  EXPECT_FALSE(fs::exists(td.file(".n.tmp-dead")));
}

TEST(OneFlowWriter, SigkillDuringSaveNeverLeavesPartialTarget) {
  // Children save a ~8 MB model and are SIGKILLed at random points; the final name either does not
  // exist or holds a complete save with snapshot_done.
  testutil::TempDir td;
  NamedTensors ts;
  for (int i = 0; i < 8; ++i) ts.emplace_back(fmt::format("v{}", i), Tensor::full(Shape({256, 1024}), i));
  // Calibrate: the kill points are spread over [0, 3 x one save's duration in the parent] (a forked child is slower).
  const auto t0 = std::chrono::steady_clock::now();
  save_variable_directory(td.file("calibrate"), ts);
  const auto save_us = std::max<std::int64_t>(
      1000, std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
  std::uint64_t seed = 12345;
  int complete = 0, absent = 0;
  for (int round = 0; round < 20; ++round) {
    std::string root = td.file(fmt::format("kill{}", round));
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      try {
        save_variable_directory(root, ts);
      } catch (...) {
        ::_exit(2);
      }
      ::_exit(0);
    }
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    ::usleep(static_cast<useconds_t>((seed >> 33) % static_cast<std::uint64_t>(save_us * 3)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!fs::exists(root)) {
      ++absent;
      continue;
    }
    // The final name exists only as a complete save: every variable with out and meta.
    ++complete;
    ASSERT_TRUE(fs::exists(root + "/snapshot_done")) << root;
    auto back = as_map(load_named_tensors(root));
    ASSERT_EQ(back.size(), ts.size());
    for (auto& [n, t] : ts) EXPECT_EQ(std::memcmp(back[n].data_ptr(), t.data_ptr(), t.nbytes()), 0) << n;
  }
  EXPECT_EQ(complete + absent, 20);
  RecordProperty("complete", complete);
  RecordProperty("absent", absent);
}
