// Real MindSpore checkpoints (shared/fixtures/mindspore, specs/mindspore-ckpt.md §11-12): names, dtypes,
// dims and values; byte-exact re-encoding; the negative fixture; LeNet fixtures into models::LeNet5
// with the golden forward logits; optimizer state into Momentum and Adam.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>

#include "framework/nn/layers/Dense.h"
#include "framework/optim/Adam.h"
#include "framework/optim/Momentum.h"
#include "models/LeNet5.h"
#include "serialization/Checkpoint.h"
#include "serialization/LoadParam.h"
#include "tests/serialization/CkptTestUtil.h"
#include "tests/testutil/TempDir.h"

namespace anvil {
namespace {

using testutil::expect_ckpt_error;
using testutil::ms_fixture;
using testutil::read_bytes;
using testutil::TempDir;

const char* const kLeNetNames[] = {"conv1.weight", "conv2.weight", "fc1.weight", "fc1.bias",
                                   "fc2.weight",   "fc2.bias",     "fc3.weight", "fc3.bias"};

struct Expect {
  const char* tag;
  DType dtype;
  Shape shape;
  double first;
  double last;
};

struct FixtureCase {
  const char* file;
  std::uint64_t bytes;
  std::size_t entries;
  std::vector<Expect> expect;
};

// First values from the spec's table; last values from an independent decode (python3-protobuf +
// numpy over the same files).
std::vector<FixtureCase> fixture_cases() {
  return {
      {"mindarmour_checkpoint_lenet-10_1875.ckpt", 494163, 18,
       {{"conv1.weight", DType::kF32, {6, 1, 5, 5}, -0.10214873, 0.07137057930231094},
        {"conv2.weight", DType::kF32, {16, 6, 5, 5}, 0.0268594641238451, -0.02902887389063835},
        {"fc1.weight", DType::kF32, {120, 400}, 0.05535303056240082, 0.017069948837161064},
        {"fc1.bias", DType::kF32, {120}, 0.023999689146876335, -0.003996953368186951},
        {"fc2.weight", DType::kF32, {84, 120}, -0.02185787260532379, -0.01090208999812603},
        {"fc2.bias", DType::kF32, {84}, -0.019252624362707138, 0.036404505372047424},
        {"fc3.weight", DType::kF32, {10, 84}, 0.010581973940134048, -0.007460106164216995},
        {"fc3.bias", DType::kF32, {10}, -0.05771178, -0.0030332463793456554},
        {"learning_rate", DType::kF64, {}, 0.001, 0.001},
        {"momentum", DType::kF64, {}, 0.9, 0.9},
        {"moments.conv1.weight", DType::kF32, {6, 1, 5, 5}, NAN, NAN},
        {"moments.fc3.bias", DType::kF32, {10}, NAN, NAN}}},
      {"serving_lenet_ascend_v111_offical_cv_mnist_bs32_acc98.ckpt", 494279, 21,
       {{"conv1.weight", DType::kF32, {6, 1, 5, 5}, -0.03500148, 0.1938597708940506},
        {"fc3.bias", DType::kF32, {10}, -0.06498941034078598, -0.12095997482538223},
        {"scale_sense", DType::kF32, {}, 1048576.0, 1048576.0},
        {"learning_rate", DType::kF32, {}, 0.01, 0.01},
        {"momentum", DType::kF32, {}, 0.9, 0.9},
        {"moments.fc1.weight", DType::kF32, {120, 400}, NAN, NAN},
        {"current_iterator_step", DType::kI32, {}, 18751, 18751},
        {"last_overflow_iterator_step", DType::kI32, {}, 17072, 17072}}},
      {"mindscience_sciai_example_net_10000.ckpt", 1877, 22,
       {{"optimizer.network.cell_list.0.weight", DType::kF32, {5, 2}, -1.0975378, 0.41062504053115845},
        {"optimizer.network.cell_list.0.bias", DType::kF32, {5}, 1.0568711757659912, -0.2847678065299988},
        {"optimizer.network.cell_list.1.weight", DType::kF32, {5, 5}, -1.1488749980926514, 0.3032294809818268},
        {"optimizer.network.cell_list.2.weight", DType::kF32, {1, 5}, 1.435075283050537, 0.993169903755188},
        {"optimizer.network.cell_list.2.bias", DType::kF32, {1}, 0.18507975339889526, 0.18507975339889526},
        {"optimizer.global_step", DType::kI32, {1}, 0, 0},
        {"optimizer.learning_rate", DType::kF32, {}, 0.001, 0.001},
        {"optimizer.beta1_power", DType::kF32, {}, 5.605194e-45, 5.605194e-45},
        {"optimizer.beta2_power", DType::kF32, {}, 4.5134042e-05, 4.5134042e-05},
        {"optimizer.moment1.network.cell_list.0.weight", DType::kF32, {5, 2}, NAN, NAN},
        {"optimizer.moment2.network.cell_list.2.bias", DType::kF32, {1}, NAN, NAN}}},
      {"goldenstick_test_sq_predict_simplenet_2stage_fp.ckpt", 227, 2,
       {{"linear.weight", DType::kF32, {8, 4}, -0.0071274214, 0.006715069990605116},
        {"linear.bias", DType::kF32, {8}, -0.0065650325, 0.011077738367021084}}},
      {"goldenstick_test_linears_woq_predict_2stage_fp32.ckpt", 420, 4,
       {{"linear1.weight", DType::kF32, {6, 5}, -0.017495535, 0.0005249076057225466},
        {"linear1.bias", DType::kF32, {6}, 0.0, 0.0},
        {"linear2.weight", DType::kF32, {5, 6}, -0.022571726, -0.0009344771970063448},
        {"linear2.bias", DType::kF32, {5}, 0.0, 0.0}}},
      {"toolkits_troubleshooter_test.ckpt", 1162, 4,
       {{"0.weight", DType::kF32, {20, 10}, -0.016702851, 0.007432012818753719},
        {"0.bias", DType::kF32, {20}, 0.0, 0.0},
        {"1.weight", DType::kF32, {2, 20}, -0.016780112, -0.0017273114062845707},
        {"1.bias", DType::kF32, {2}, 0.0, 0.0}}},
      {"toolkits_net_diff_finder_ms_org_ckpt.ckpt", 2450, 4,
       {{"net1.weight", DType::kF32, {21, 12}, -0.00072226417, 0.01089723501354456},
        {"net1.bias", DType::kF32, {21}, 0.0, 0.0},
        {"net2.weight", DType::kF32, {22, 13}, 0.0028093935, 0.01460045576095581},
        {"net2.bias", DType::kF32, {22}, 0.0, 0.0}}},
      {"toolkits_convert_resnet.ckpt", 263248, 2,
       {{"conv1d.weight", DType::kF32, {256, 256, 1, 1}, -0.039549187, -0.023339249193668365},
        {"conv1d.bias", DType::kF32, {256}, 0.043433659, -0.0577678382396698}}},
  };
}

double element(const Tensor& t, std::int64_t i) {
  switch (t.dtype()) {
    case DType::kF32: return static_cast<const float*>(t.data_ptr())[i];
    case DType::kF64: return static_cast<const double*>(t.data_ptr())[i];
    case DType::kI32: return static_cast<const std::int32_t*>(t.data_ptr())[i];
    default: ADD_FAILURE() << "unexpected dtype " << t.desc(); return 0;
  }
}

TEST(CkptFixtures, PositiveFixturesMatchTheSpecTable) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  for (const auto& fc : fixture_cases()) {
    SCOPED_TRACE(fc.file);
    const std::string path = ms_fixture(fc.file);
    EXPECT_EQ(std::filesystem::file_size(path), fc.bytes);
    const ParamDict d = load_checkpoint(path, {.warn_unverified = false});
    EXPECT_EQ(d.size(), fc.entries);
    for (const auto& e : fc.expect) {
      SCOPED_TRACE(e.tag);
      ASSERT_TRUE(d.contains(e.tag));
      const Tensor& t = d.tensor(e.tag);
      EXPECT_EQ(t.dtype(), e.dtype);
      EXPECT_EQ(t.shape(), e.shape);
      if (!std::isnan(e.first)) {
        // float32 values are given with 8 significant digits; float64/int32 ones are exact.
        auto tol = [&](double v) { return e.dtype == DType::kF32 ? 1e-6 * std::fabs(v) + 1e-50 : 1e-15; };
        EXPECT_NEAR(element(t, 0), e.first, tol(e.first));
        EXPECT_NEAR(element(t, t.numel() - 1), e.last, tol(e.last));
      }
    }
  }
}

TEST(CkptFixtures, ValuesAreBitExactIncludingDenormals) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  const ParamDict d = load_checkpoint(ms_fixture("mindscience_sciai_example_net_10000.ckpt"), {.warn_unverified = false});
  const float b1 = *d.tensor("optimizer.beta1_power").data<float>();
  EXPECT_EQ(std::bit_cast<std::uint32_t>(b1), 4u);  // 4 * 2^-149 = 5.605194e-45, not flushed to zero
}

TEST(CkptFixtures, MindarmourEntryOffsetsAndLeNetNames) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  CheckpointReader r(ms_fixture("mindarmour_checkpoint_lenet-10_1875.ckpt"), {.warn_unverified = false});
  ASSERT_EQ(r.entries().size(), 18u);
  EXPECT_EQ(r.entries()[0].end, 640u);
  EXPECT_EQ(r.entries()[1].end, 10280u);
  EXPECT_EQ(r.entries()[2].end, 202318u);
  EXPECT_EQ(r.entries()[3].end, 202828u);
  EXPECT_EQ(r.integrity(), Integrity::kUnverified);
  EXPECT_FALSE(r.has_trailer());
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(r.entries()[i].tag, kLeNetNames[i]);
  EXPECT_EQ(r.entries()[0].dims, (std::vector<std::int64_t>{6, 1, 5, 5}));
  EXPECT_EQ(r.find("learning_rate")->stored_dims, (std::vector<std::int64_t>{0}));  // legacy scalar
}

TEST(CkptFixtures, ReencodingReproducesEveryFileByteForByte) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  TempDir dir;
  for (const auto& fc : fixture_cases()) {
    SCOPED_TRACE(fc.file);
    const std::string src = ms_fixture(fc.file);
    CheckpointReader r(src, {.warn_unverified = false});
    CheckpointWriterOptions wo;
    wo.crc_check = false;
    wo.file.durable = false;
    const std::string out = dir.file(fc.file);
    CheckpointWriter w(out, wo);
    for (const auto& e : r.entries()) {
      std::vector<unsigned char> content(e.content_size);
      r.read_into(*r.find(e.tag), content.data());
      w.write_raw_entry(e.tag, e.dims, e.tensor_type, content.data(), content.size());
    }
    w.commit();
    EXPECT_EQ(read_bytes(out), read_bytes(src));
  }
}

TEST(CkptFixtures, StrategyFileIsRejected) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  const std::string path = ms_fixture("goldenstick_ckpt_strategy_rank_0_NOT_A_CHECKPOINT.ckpt");
  const std::string msg =
      expect_ckpt_error([&] { load_checkpoint(path); }, CkptErrc::kNotACheckpoint, path);
  EXPECT_NE(msg.find("field 1, wire type 0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset 0"), std::string::npos) << msg;
}

// The golden input of spec §12: a synthetic "1".
Tensor golden_one() {
  Tensor x = Tensor::empty(Shape{1, 1, 32, 32}, DType::kF32);
  float* p = x.data<float>();
  const float fg = static_cast<float>((1.0 - 0.1307) / 0.3081), bg = static_cast<float>(-0.1307 / 0.3081);
  for (int r = 0; r < 32; ++r)
    for (int c = 0; c < 32; ++c) p[r * 32 + c] = (r >= 6 && r <= 25 && c >= 14 && c <= 17) ? fg : bg;
  return x;
}

void check_lenet(const char* file, const std::vector<double>& golden) {
  SCOPED_TRACE(file);
  models::LeNet5 net;
  net.set_train(false);
  const ParamDict d = load_checkpoint(ms_fixture(file), {.warn_unverified = false});
  auto [param_not_load, ckpt_not_load] = load_param_into_net(net, d);
  EXPECT_TRUE(param_not_load.empty());
  for (const auto& name : ckpt_not_load) EXPECT_TRUE(std::find(std::begin(kLeNetNames), std::end(kLeNetNames), name) == std::end(kLeNetNames));
  EXPECT_EQ(ckpt_not_load.size(), d.size() - 8);  // only optimizer / loss-scale entries unused
  const Tensor logits = net(golden_one());
  ASSERT_EQ(logits.shape(), (Shape{1, 10}));
  const auto v = logits.to_vector<float>();
  for (int k = 0; k < 10; ++k) EXPECT_NEAR(v[k], golden[k], 1e-3) << "class " << k;
  EXPECT_EQ(std::max_element(v.begin(), v.end()) - v.begin(), 1);

  // The streaming path (straight into the parameters' buffers) gives the same network.
  models::LeNet5 net2;
  net2.set_train(false);
  auto r2 = load_checkpoint_into_net(net2, ms_fixture(file), {.load = {.warn_unverified = false}});
  EXPECT_TRUE(r2.param_not_load.empty());
  EXPECT_EQ(r2.ckpt_not_load, ckpt_not_load);
  EXPECT_EQ(net2(golden_one()).to_vector<float>(), v);
}

TEST(CkptFixtures, LeNetGoldenForwardMindarmour) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  check_lenet("mindarmour_checkpoint_lenet-10_1875.ckpt",
              {-3.71604, 8.66238, -2.35113, -1.86999, 0.903982, -1.07237, -0.454337, -1.31214, 1.41932, 0.991552});
}

TEST(CkptFixtures, LeNetGoldenForwardServing) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  check_lenet("serving_lenet_ascend_v111_offical_cv_mnist_bs32_acc98.ckpt",
              {-1.02183, 13.8272, -5.54022, -4.46588, 0.483771, -5.40466, -0.376685, -2.47219, 3.2012, 0.755289});
}

TEST(CkptFixtures, MomentumStateFromMindarmour) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  models::LeNet5 net;
  Momentum opt(net.trainable_params(), 0.1, 0.5);
  const ParamDict d = load_checkpoint(ms_fixture("mindarmour_checkpoint_lenet-10_1875.ckpt"), {.warn_unverified = false});
  load_param_into_net(net, d);
  auto [missing, unused] = load_param_into_net(opt, d);
  EXPECT_EQ(missing, (std::vector<std::string>{"global_step"}));  // r0.1 files have none
  EXPECT_EQ(unused.size(), 8u);                                     // the network's weights
  EXPECT_NEAR(opt.current_learning_rate(), 0.001, 1e-12);          // Float64 0.001 converted
  EXPECT_NEAR(opt.momentum(), 0.9, 1e-7);
  const NamedTensors st = opt.state_dict();
  for (const auto& [name, t] : st) {
    if (name == "moments.fc3.bias") {
      EXPECT_EQ(t.to_vector<float>(), d.tensor("moments.fc3.bias").to_vector<float>());
    }
  }
}

TEST(CkptFixtures, AdamStateAndNetworkFromMindscienceWithNameMapping) {
  ANVIL_SKIP_WITHOUT_FIXTURES();
  // The mindscience network: cell_list = [Dense(2,5), Dense(5,5), Dense(5,1)]; every tag carries
  // "optimizer." and the weights "network." as well.
  testutil::TestCell net;
  auto list = std::make_shared<nn::SequentialCell>();
  list->append(std::make_shared<nn::Dense>(2, 5));
  list->append(std::make_shared<nn::Dense>(5, 5));
  list->append(std::make_shared<nn::Dense>(5, 1));
  net.child("cell_list", list);
  Adam opt(net.trainable_params(), 0.01);
  const ParamDict d = load_checkpoint(ms_fixture("mindscience_sciai_example_net_10000.ckpt"), {.warn_unverified = false});
  LoadParamOptions o;
  o.name_mapping.strip_prefixes = {"optimizer."};
  o.name_mapping.regex_renames = {{"^network\\.", ""}, {"^(moment[12])\\.network\\.", "$1."}};
  o.strict_load = true;
  auto r = load_param_into_net(net, d, o);
  EXPECT_TRUE(r.param_not_load.empty());
  EXPECT_EQ(r.ckpt_not_load.size(), 22u - 6u);
  auto ro = load_param_into_net(opt, d, o);
  EXPECT_TRUE(ro.param_not_load.empty());
  EXPECT_EQ(ro.ckpt_not_load.size(), 6u);
  EXPECT_EQ(opt.global_step(), 0);
  EXPECT_NEAR(opt.current_learning_rate(), 0.001, 1e-9);
  EXPECT_FLOAT_EQ(net.parameters_and_names()[0].second.to_vector<float>()[0], -1.0975378f);
  // Without the mapping nothing matches: all six parameters are reported missing.
  auto none = load_param_into_net(net, d);
  EXPECT_EQ(none.param_not_load.size(), 6u);
  // MindSpore's suffix fallback (explicit option) also finds "optimizer.network.<name>".
  LoadParamOptions fb;
  fb.suffix_fallback = true;
  EXPECT_TRUE(load_param_into_net(net, d, fb).param_not_load.empty());
}

}  // namespace
}  // namespace anvil
