// CheckPoint: save/load with OneFlow's warning line for missing variables, transactional loads,
// load_variables semantics, and the mobilenet fixture loaded into a synthetic variable set.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "serialization/oneflow/CheckPoint.h"
#include "tests/testutil/Paths.h"
#include "tests/testutil/TempDir.h"

namespace fs = std::filesystem;
using namespace anvil;
using namespace anvil::oneflow;
using anvil::nn::oneflow::VariableArgs;
using anvil::nn::oneflow::VariableStore;

namespace {

void mlp(VariableStore& s, bool with_dense3, std::uint64_t seed_base = 0) {
  auto add = [&](const std::string& n, Shape shape, std::uint64_t seed) {
    VariableArgs a;
    a.shape = shape;
    a.initializer = anvil::nn::oneflow::random_normal_initializer(0, 0.1);
    a.random_seed = seed_base + seed;
    a.reuse = false;
    s.get_variable(n, a);
  };
  add("dense1-weight", Shape({16, 8}), 1);
  add("dense1-bias", Shape({16}), 2);
  add("dense2-weight", Shape({10, 16}), 3);
  add("dense2-bias", Shape({10}), 4);
  if (with_dense3) {
    add("dense3-weight", Shape({10, 10}), 5);
    add("dense3-bias", Shape({10}), 6);
  }
}
bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) == 0;
}

}  // namespace

TEST(OneFlowCheckPoint, SaveLoadAndFineTuneWarnings) {
  testutil::TempDir td;
  VariableStore a(1);
  mlp(a, false);
  CheckPoint ca(a);
  std::string dir = td.file("ckpt");
  ca.save(dir);
  VariableStore b(2);
  mlp(b, true, 100);
  std::ostringstream out;
  CheckPoint cb(b, "", &out);
  auto rep = cb.load(dir);
  EXPECT_EQ(out.str(), "WARNING! CANNOT find variable path in : " + dir + "/dense3-weight/out. It will be initialized. \n"
                       "WARNING! CANNOT find variable path in : " + dir + "/dense3-bias/out. It will be initialized. \n");
  EXPECT_EQ(rep.loaded.size(), 4u);
  EXPECT_EQ(rep.initialized, (std::vector<std::string>{"dense3-weight", "dense3-bias"}));
  for (auto* v : a.variables()) EXPECT_TRUE(same_bytes(v->tensor, b.find(v->name)->tensor)) << v->name;
  // dense3 got its initializer's values (seed 105)
  VariableStore c(3);
  mlp(c, true, 100);
  EXPECT_TRUE(same_bytes(b.find("dense3-weight")->tensor, c.find("dense3-weight")->tensor));
  // init() re-runs the initializers
  Tensor bias = b.find("dense1-bias")->tensor;
  bias.fill_(9);
  cb.init();
  EXPECT_TRUE(same_bytes(b.find("dense1-bias")->tensor, c.find("dense1-bias")->tensor));
}

TEST(OneFlowCheckPoint, LoadIsTransactionalOnMismatch) {
  testutil::TempDir td;
  VariableStore a(1);
  mlp(a, false);
  // A checkpoint where dense2-weight has another shape.
  NamedTensors ts = a.named_tensors();
  ts[2].second = Tensor::zeros(Shape({4}));
  std::string dir = td.file("bad");
  save_variable_directory(dir, ts);
  VariableStore b(1);
  mlp(b, false, 50);
  auto before = b.named_tensors();
  std::vector<Tensor> copies;
  for (auto& [n, t] : before) copies.push_back(t.clone());
  std::ostringstream out;
  CheckPoint cb(b, "", &out);
  try {
    cb.load(dir);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shape mismatch for \"dense2-weight\": checkpoint (4,) vs model (10, 16)"),
              std::string::npos)
        << e.what();
  }
  for (std::size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(same_bytes(before[i].second, copies[i]));
  // dtype mismatch message
  ts = a.named_tensors();
  ts[1].second = Tensor::zeros(Shape({16}), DType::kF64);
  save_variable_directory(td.file("bad2"), ts);
  try {
    cb.load(td.file("bad2"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dtype mismatch for \"dense1-bias\": checkpoint kDouble vs model kFloat"),
              std::string::npos);
  }
  EXPECT_TRUE(out.str().empty());
}

TEST(OneFlowCheckPoint, LoadVariables) {
  VariableStore a(1);
  mlp(a, false);
  CheckPoint ca(a);
  auto all = ca.get_all_variables();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_TRUE(all[0].second.shares_storage(a.find("dense1-weight")->tensor));
  NamedTensors dict{{"dense1-bias", Tensor::full(Shape({16}), 3)}, {"nope", Tensor::ones(Shape({2}))}};
  auto rep = ca.load_variables(dict);
  EXPECT_EQ(a.find("dense1-bias")->tensor.to_vector<float>()[5], 3.0f);
  EXPECT_EQ(rep.unused, std::vector<std::string>{"nope"});
  EXPECT_EQ(rep.untouched.size(), 3u);
  auto w_before = a.find("dense1-weight")->tensor.clone();
  NamedTensors bad{{"dense1-weight", Tensor::zeros(Shape({16, 8}))}, {"nope", Tensor::ones(Shape({2}))}};
  try {
    ca.load_variables(bad, false);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"nope\" is not a variable name"), std::string::npos);
  }
  EXPECT_TRUE(same_bytes(a.find("dense1-weight")->tensor, w_before));
  NamedTensors bad_shape{{"dense1-weight", Tensor::zeros(Shape({16, 8}))}, {"dense2-bias", Tensor::zeros(Shape({3}))}};
  EXPECT_THROW(ca.load_variables(bad_shape, true), Error);
  EXPECT_TRUE(same_bytes(a.find("dense1-weight")->tensor, w_before));
}

TEST(OneFlowCheckPoint, MobileNetFixturePartialLoad) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  const std::string dir =
      testutil::fixtures_dir() + "/oneflow/Oneflow-Inc__models/mobilenetv3/mobilenetv3_oneflow_model";
  VariableStore s(1);
  auto add = [&](const std::string& n, Shape shape) {
    VariableArgs a;
    a.shape = shape;
    a.initializer = anvil::nn::oneflow::zeros_initializer();
    s.get_variable(n, a);
  };
  add("features.0.0.weight", Shape({16, 3, 3, 3}));
  add("features.0.1.weight", Shape({16}));
  add("features.0.1.bias", Shape({16}));
  add("extra.a", Shape({2}));
  add("features.0.1.running_mean", Shape({16}));
  add("features.0.1.running_var", Shape({16}));
  add("extra.b", Shape({3}));
  add("features.1.block.1.fc1.bias", Shape({8}));
  add("classifier.3.bias", Shape({1000}));
  add("extra.c", Shape({4}));
  std::ostringstream out;
  CheckPoint cp(s, "", &out);
  auto rep = cp.load(dir);
  EXPECT_EQ(out.str(), "WARNING! CANNOT find variable path in : " + dir + "/extra.a/out. It will be initialized. \n" +
                           "WARNING! CANNOT find variable path in : " + dir + "/extra.b/out. It will be initialized. \n" +
                           "WARNING! CANNOT find variable path in : " + dir + "/extra.c/out. It will be initialized. \n");
  EXPECT_EQ(rep.loaded.size(), 7u);
  EXPECT_FLOAT_EQ(s.find("features.0.1.running_var")->tensor.to_vector<float>()[0], 13.093858f);
}

TEST(OneFlowCheckPoint, PickleEraByNameAndByOrder) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  const std::string base = testutil::fixtures_dir() + "/oneflow/Oneflow-Inc__oneflow/python/oneflow/test/modules/save_load_test_data/";
  auto make = [](VariableStore& s) {
    VariableArgs a;
    a.initializer = anvil::nn::oneflow::zeros_initializer();
    a.shape = Shape({3, 3, 3, 3});
    s.get_variable("weight", a);
    a.shape = Shape({3});
    s.get_variable("bias", a);
  };
  VariableStore s1(1);
  make(s1);
  std::ostringstream out;
  CheckPoint c1(s1, "", &out);
  c1.load(base + "3x3_i3o3_conv2d_params");
  EXPECT_FLOAT_EQ(s1.find("bias")->tensor.to_vector<float>()[0], -0.07061117f);
  VariableStore s2(1);
  make(s2);
  CheckPoint c2(s2, "", &out);
  try {
    c2.load(base + "3x3_i3o3_conv2d");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pickle-era OneFlow save"), std::string::npos);
  }
  LoadOptions o;
  o.bind_by_order = true;
  c2.load(base + "3x3_i3o3_conv2d", o);
  EXPECT_TRUE(same_bytes(s1.find("weight")->tensor, s2.find("weight")->tensor));
  EXPECT_TRUE(out.str().empty());
}

TEST(OneFlowCheckPoint, LegacyEraATrainStepAndReset) {
  testutil::TempDir td;
  // Era A: out only (shapes from the model), plus a train-step counter of job "TrainNet".
  const std::string dir = td.file("legacy");
  std::filesystem::create_directories(dir + "/w");
  std::filesystem::create_directories(dir + "/System-Train-TrainStep-TrainNet");
  {
    std::FILE* f = std::fopen((dir + "/w/out").c_str(), "wb");
    float v[3] = {1, 2, 3};
    std::fwrite(v, sizeof v, 1, f);
    std::fclose(f);
    f = std::fopen((dir + "/System-Train-TrainStep-TrainNet/out").c_str(), "wb");
    std::int64_t step = 5;
    std::fwrite(&step, 8, 1, f);
    std::fclose(f);
    f = std::fopen((dir + "/snapshot_done").c_str(), "wb");
    std::fclose(f);
  }
  auto make = [](VariableStore& s, const std::string& job) {
    VariableArgs a;
    a.shape = Shape({3});
    a.initializer = anvil::nn::oneflow::zeros_initializer();
    s.get_variable("w", a, job);
    VariableArgs t;
    t.shape = Shape({1});
    t.dtype = DType::kI64;
    t.trainable = false;
    t.initializer = anvil::nn::oneflow::zeros_initializer();
    s.get_variable(train_step_name(job), t, job);
  };
  VariableStore s(1);
  make(s, "TrainNet");
  std::ostringstream out;
  CheckPoint cp(s, "TrainNet", &out);
  cp.load(dir);
  EXPECT_EQ(s.find("w", "TrainNet")->tensor.to_vector<float>(), std::vector<float>({1, 2, 3}));
  EXPECT_EQ(s.find("System-Train-TrainStep-TrainNet", "TrainNet")->tensor.to_vector<std::int64_t>()[0], 5);
  EXPECT_TRUE(out.str().empty());
  LoadOptions reset;
  reset.reset_train_step = true;
  cp.load(dir, reset);
  EXPECT_EQ(s.find("System-Train-TrainStep-TrainNet", "TrainNet")->tensor.to_vector<std::int64_t>()[0], 0);
  // Another job name: the counter is not found and restarts at 0 (with the warning line).
  VariableStore s2(1);
  make(s2, "Other");
  CheckPoint cp2(s2, "Other", &out);
  auto rep = cp2.load(dir);
  EXPECT_EQ(rep.initialized, std::vector<std::string>{"System-Train-TrainStep-Other"});
  EXPECT_EQ(rep.unused, std::vector<std::string>{"System-Train-TrainStep-TrainNet"});
  EXPECT_NE(out.str().find("System-Train-TrainStep-Other/out. It will be initialized. \n"), std::string::npos);
  // Era A with a wrong model shape: size error naming the path.
  VariableStore s3(1);
  VariableArgs a;
  a.shape = Shape({4});
  a.initializer = anvil::nn::oneflow::zeros_initializer();
  s3.get_variable("w", a);
  CheckPoint cp3(s3, "", &out);
  try {
    cp3.load(dir);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unexpected model snapshot size, path: " + dir + "/w/out"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(s3.find("w")->tensor.to_vector<float>(), std::vector<float>(4, 0.0f));
}
