// load_param_into_net / load_checkpoint_into_net rules (specs/mindspore-ckpt.md §10) and load filters.
#include <gtest/gtest.h>

#include "framework/optim/Momentum.h"
#include "serialization/Checkpoint.h"
#include "serialization/LoadParam.h"
#include "tests/serialization/CkptTestUtil.h"
#include "tests/testutil/TempDir.h"
#include "tests/testutil/Errors.h"

using anvil::testutil::error_of;

namespace anvil {
namespace {

using testutil::TempDir;
using testutil::TestCell;

Tensor iota(const Shape& s, DType dt = DType::kF32, double start = 0) {
  Tensor t = Tensor::empty(s, DType::kF64);
  double* p = t.data<double>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = start + static_cast<double>(i);
  return dt == DType::kF64 ? t : t.to(dt);
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

struct Net : TestCell {
  Tensor w, b;
  Net() {
    w = param("weight", Tensor::zeros(Shape{3, 2}));
    b = param("bias", Tensor::zeros(Shape{3}));
  }
};

TEST(CkptLoadParam, ExactMatchAndUnusedEntries) {
  Net net;
  ParamDict d;
  d.set("weight", iota(Shape{3, 2}));
  d.set("bias", iota(Shape{3}, DType::kF32, 10));
  d.set("moments.weight", iota(Shape{3, 2}));
  d.set("note", std::string("x"));
  auto [missing, unused] = load_param_into_net(net, d);
  EXPECT_TRUE(missing.empty());
  EXPECT_EQ(unused, (std::vector<std::string>{"moments.weight", "note"}));
  EXPECT_EQ(net.w.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(net.b.to_vector<float>(), (std::vector<float>{10, 11, 12}));
}

TEST(CkptLoadParam, ShapeMismatchNamesParameterAndBothShapesAndChangesNothing) {
  Net net;
  ParamDict d;
  d.set("bias", iota(Shape{3}, DType::kF32, 1));
  d.set("weight", iota(Shape{2, 3}));
  const std::string msg = error_of([&] { load_param_into_net(net, d); });
  EXPECT_TRUE(contains(msg, "'weight'")) << msg;
  EXPECT_TRUE(contains(msg, "[2,3]")) << msg;
  EXPECT_TRUE(contains(msg, "[3,2]")) << msg;
  EXPECT_EQ(net.b.to_vector<float>(), (std::vector<float>{0, 0, 0}));  // transactional
}

TEST(CkptLoadParam, TrailingOnesAndScalarForms) {
  TestCell net;
  Tensor w = net.param("w", Tensor::zeros(Shape{4, 3}));
  Tensor s = net.param("s", Tensor::zeros(Shape{}));
  Tensor one = net.param("one", Tensor::zeros(Shape{1}));
  ParamDict d;
  d.set("w", iota(Shape{4, 3, 1, 1}));
  d.set("s", iota(Shape{1}, DType::kF32, 7));
  d.set("one", Tensor::scalar(9));
  EXPECT_TRUE(load_param_into_net(net, d).param_not_load.empty());
  EXPECT_EQ(w.shape(), (Shape{4, 3}));
  EXPECT_EQ(w.to_vector<float>()[11], 11.0f);
  EXPECT_EQ(s.item(), 7.0);
  EXPECT_EQ(one.item(), 9.0);
  ParamDict bad;
  bad.set("w", iota(Shape{4, 3, 2}));
  EXPECT_THROW(load_param_into_net(net, bad), Error);
}

TEST(CkptLoadParam, DtypeRules) {
  TestCell net;
  Tensor f = net.param("f", Tensor::zeros(Shape{2}));
  Tensor i = net.buffer("i", Tensor::zeros(Shape{2}, DType::kI32));
  ParamDict d;
  d.set("f", Tensor::from_vector<double>({0.1, 2.5}, Shape{2}));
  d.set("i", Tensor::from_vector<std::int64_t>({-3, 1LL << 40}, Shape{2}));
  load_param_into_net(net, d);  // non-strict: float64 -> float32 and int64 -> int32 converted (warning)
  EXPECT_EQ(f.to_vector<float>(), (std::vector<float>{0.1f, 2.5f}));
  EXPECT_EQ(i.to_vector<std::int32_t>()[0], -3);
  // float16 / bfloat16 checkpoints load into float32 parameters.
  ParamDict h;
  Tensor half = Tensor::empty(Shape{2}, DType::kF16);
  static_cast<std::uint16_t*>(half.data_ptr())[0] = 0x3C00;  // 1.0
  static_cast<std::uint16_t*>(half.data_ptr())[1] = 0xC100;  // -2.5
  h.set("f", half);
  load_param_into_net(net, h);
  EXPECT_EQ(f.to_vector<float>(), (std::vector<float>{1.0f, -2.5f}));
  // strict forbids conversion; int -> float is never allowed.
  const std::string strict = error_of([&] { load_param_into_net(net, d, true); });
  EXPECT_TRUE(contains(strict, "'f'") && contains(strict, "float64") && contains(strict, "strict")) << strict;
  ParamDict wrong;
  wrong.set("f", Tensor::from_vector<std::int32_t>({1, 2}, Shape{2}));
  const std::string msg = error_of([&] { load_param_into_net(net, wrong); });
  EXPECT_TRUE(contains(msg, "int32") && contains(msg, "float32")) << msg;
}

TEST(CkptLoadParam, MissingParametersStrictAndAccuGrads) {
  TestCell net;
  net.param("a", Tensor::zeros(Shape{1}));
  net.param("b", Tensor::zeros(Shape{1}));
  auto accu = std::make_shared<TestCell>();
  accu->buffer("a", Tensor::zeros(Shape{1}));
  net.child("accu_grads", accu);
  ParamDict d;
  d.set("a", Tensor::ones(Shape{1}));
  auto r = load_param_into_net(net, d);
  EXPECT_EQ(r.param_not_load, (std::vector<std::string>{"b"}));  // accu_grads* silently ignored
  const std::string msg = error_of([&] { load_param_into_net(net, d, true); });
  EXPECT_TRUE(contains(msg, "'b'")) << msg;
  EXPECT_FALSE(contains(msg, "accu_grads")) << msg;
}

TEST(CkptLoadParam, StringsAreNeverBound) {
  TestCell net;
  Tensor a = net.param("a", Tensor::zeros(Shape{1}));
  ParamDict d;
  d.set("a", std::string("not a tensor"));
  auto r = load_param_into_net(net, d);
  EXPECT_EQ(r.param_not_load, (std::vector<std::string>{"a"}));
  EXPECT_EQ(r.ckpt_not_load, (std::vector<std::string>{"a"}));
}

TEST(CkptLoadParam, NameMappingBatchNormGammaBeta) {
  TestCell net;
  auto bn = std::make_shared<TestCell>();
  Tensor weight = bn->param("weight", Tensor::zeros(Shape{2}));
  Tensor bias = bn->param("bias", Tensor::zeros(Shape{2}));
  net.child("bn", bn);
  ParamDict d;
  d.set("backbone.bn.gamma", Tensor::ones(Shape{2}));
  d.set("backbone.bn.beta", Tensor::full(Shape{2}, 3.0));
  LoadParamOptions o;
  o.name_mapping = {.strip_prefixes = {"backbone."},
                    .regex_renames = {{"\\.gamma$", ".weight"}, {"\\.beta$", ".bias"}},
                    .add_prefix = ""};
  o.strict_load = true;
  auto r = load_param_into_net(net, d, o);
  EXPECT_TRUE(r.param_not_load.empty());
  EXPECT_TRUE(r.ckpt_not_load.empty());
  EXPECT_EQ(bias.to_vector<float>(), (std::vector<float>{3, 3}));
  NameMapping add{.strip_prefixes = {}, .regex_renames = {}, .add_prefix = "net."};
  EXPECT_EQ(add.apply("w"), "net.w");
  // Two entries mapping to one name, and an invalid pattern, are errors.
  d.set("bn.gamma", Tensor::ones(Shape{2}));
  o.name_mapping.strip_prefixes = {"backbone."};
  EXPECT_TRUE(contains(error_of([&] { load_param_into_net(net, d, o); }), "both map to the name 'bn.weight'"));
  LoadParamOptions bad;
  bad.name_mapping.regex_renames = {{"(", "x"}};
  EXPECT_TRUE(contains(error_of([&] { load_param_into_net(net, d, bad); }), "invalid regex '('"));
}

TEST(CkptLoadParam, LoadFilters) {
  TempDir dir;
  NamedTensors all = {{"net.a", Tensor::ones(Shape{1})},
                      {"net.b", Tensor::ones(Shape{1})},
                      {"moments.net.a", Tensor::ones(Shape{1})},
                      {"learning_rate", Tensor::scalar(0.1)}};
  save_checkpoint(all, dir.file("f.ckpt"), {.durable = false});
  auto names = [&](const LoadOptions& o) { return load_checkpoint(dir.file("f.ckpt"), o).names(); };
  EXPECT_EQ(names({.specify_prefix = {"net."}}), (std::vector<std::string>{"net.a", "net.b"}));
  EXPECT_EQ(names({.filter_prefix = {"moments.", "learning"}}), (std::vector<std::string>{"net.a", "net.b"}));
  EXPECT_EQ(names({.specify_prefix = {"net.", "moments."}, .filter_prefix = {"net.b"}}),
            (std::vector<std::string>{"net.a", "moments.net.a"}));
  EXPECT_EQ(names({.choice_func = [](const std::string& n) { return n == "learning_rate"; }}),
            (std::vector<std::string>{"learning_rate"}));
  testutil::expect_ckpt_error([&] { load_checkpoint(dir.file("f.ckpt"), {.specify_prefix = {"zzz"}}); },
                              CkptErrc::kFiltered, dir.file("f.ckpt"));
}

TEST(CkptLoadParam, StreamingLoadMatchesDictLoadAndIsTransactional) {
  TempDir dir;
  Net src;
  src.w.copy_from(iota(Shape{3, 2}, DType::kF32, 1));
  src.b.copy_from(iota(Shape{3}, DType::kF32, 100));
  Momentum opt(src.trainable_params(), 0.25, 0.75);
  save_checkpoint(src, dir.file("n.ckpt"), {.optimizer = &opt, .append_info = {{"epoch_num", std::int64_t{2}}}});

  Net dst;
  Momentum opt2(dst.trainable_params(), 0.5, 0.5);
  auto r = load_checkpoint_into_net(dst, dir.file("n.ckpt"), {.load = {.require_integrity = true}, .optimizer = &opt2});
  EXPECT_TRUE(r.param_not_load.empty());
  EXPECT_EQ(r.ckpt_not_load, (std::vector<std::string>{"epoch_num"}));
  EXPECT_EQ(dst.w.to_vector<float>(), src.w.to_vector<float>());
  EXPECT_EQ(dst.b.to_vector<float>(), src.b.to_vector<float>());
  EXPECT_DOUBLE_EQ(opt2.current_learning_rate(), 0.25);
  EXPECT_DOUBLE_EQ(opt2.momentum(), 0.75);

  // A float64 file converts into float32 parameters on the streaming path as well.
  save_checkpoint(NamedTensors{{"weight", iota(Shape{3, 2}, DType::kF64, 0.5)}, {"bias", iota(Shape{3}, DType::kF64)}},
                  dir.file("d.ckpt"), {.durable = false});
  load_checkpoint_into_net(dst, dir.file("d.ckpt"));
  EXPECT_EQ(dst.w.to_vector<float>()[5], 5.5f);

  // Shape mismatch: error before anything is copied.
  save_checkpoint(NamedTensors{{"bias", iota(Shape{3}, DType::kF32, -1)}, {"weight", iota(Shape{6})}},
                  dir.file("bad.ckpt"), {.durable = false});
  const std::string msg = error_of([&] { load_checkpoint_into_net(dst, dir.file("bad.ckpt")); });
  EXPECT_TRUE(contains(msg, "'weight'") && contains(msg, "[6]") && contains(msg, "[3,2]")) << msg;
  EXPECT_EQ(dst.b.to_vector<float>(), (std::vector<float>{0, 1, 2}));
}

}  // namespace
}  // namespace anvil
