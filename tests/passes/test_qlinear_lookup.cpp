// Elementwise functions on quantized data (ops/qlinear_lookup.cpp, lowered by passes/lower_qdq):
// DQ -> f -> Q becomes one QLinearLookup whose table is f run on the 256 codes, so the lowered
// graph computes exactly what the QDQ graph computes, for u8 and i8 data and every f; and the
// quantizer puts HardSwish of a MobileNetV3 on those tables.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>

#include "compress/quantize.h"
#include "core/op_registry.h"
#include "core/rng.h"
#include "graph_test_util.h"
#include "minnow/error.h"
#include "minnow/graph.h"
#include "minnow/zoo.h"
#include "passes/fold_constants.h"
#include "passes/lower_qdq.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

using ::minnow::testing::count_op;
using ::minnow::testing::make_node;
using ::minnow::testing::randomize_batchnorm;
using ::minnow::testing::scalar_tensor;

// x -> Q(xs, xzp) -> DQ -> f -> Q(ys, yzp) -> DQ -> y, activations of dtype `t`.
Graph qdq_function(OpKind f, DType t, Attrs attrs = {}) {
  Graph g;
  g.name = "qdq_function";
  g.inputs = {{"x", DType::kF32, {kDynamic, 3, 5, 7}}};
  g.outputs = {{"y", DType::kF32, {kDynamic, 3, 5, 7}}};
  const bool u8 = t == DType::kU8;
  g.initializers["xs"] = Initializer{scalar_tensor(DType::kF32, 0.05), false};
  g.initializers["xzp"] = Initializer{scalar_tensor(t, u8 ? 128 : 3), false};
  g.initializers["ys"] = Initializer{scalar_tensor(DType::kF32, 0.031), false};
  g.initializers["yzp"] = Initializer{scalar_tensor(t, u8 ? 40 : -90), false};
  g.nodes.push_back(make_node("q", OpKind::kQuantizeLinear, {"x", "xs", "xzp"}, "xq"));
  g.nodes.push_back(make_node("dq", OpKind::kDequantizeLinear, {"xq", "xs", "xzp"}, "xd"));
  Node fn = make_node("f", f, {"xd"}, "fx");
  fn.attrs = std::move(attrs);
  g.nodes.push_back(std::move(fn));
  g.nodes.push_back(make_node("q2", OpKind::kQuantizeLinear, {"fx", "ys", "yzp"}, "yq"));
  g.nodes.push_back(make_node("dq2", OpKind::kDequantizeLinear, {"yq", "ys", "yzp"}, "y"));
  g.validate();
  return g;
}

TEST(QLinearLookup, LoweredFunctionIsBitIdenticalToTheQdqGraph) {
  Attrs leaky;
  leaky.set("alpha", 0.07);
  const std::vector<std::pair<OpKind, Attrs>> functions = {
      {OpKind::kHardSwish, {}}, {OpKind::kHardSigmoid, {}},  {OpKind::kSigmoid, {}},
      {OpKind::kTanh, {}},      {OpKind::kLeakyRelu, leaky}, {OpKind::kGelu, {}}};
  Rng rng(3);
  Tensor x(DType::kF32, {2, 3, 5, 7});
  // Beyond both ends of the input range, so saturated codes are covered too.
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = rng.uniform(-9.0f, 9.0f);
  for (DType t : {DType::kU8, DType::kI8}) {
    for (const auto& [f, attrs] : functions) {
      SCOPED_TRACE(std::string(op_def(f).name) + " " + std::string(dtype_name(t)));
      const Graph g = qdq_function(f, t, attrs);
      Graph lowered = g;
      ASSERT_EQ(lower_qdq(lowered), 1);
      EXPECT_EQ(count_op(lowered, OpKind::kQLinearLookup), 1);
      EXPECT_EQ(count_op(lowered, f), 0);
      const Tensor want =
          InferenceSession(g, KernelChoice::kReference, false).run({{"x", x}})[0].clone();
      const Tensor got = InferenceSession(lowered, KernelChoice::kFast, false).run({{"x", x}})[0];
      ASSERT_EQ(got.shape(), want.shape());
      for (int64_t i = 0; i < want.numel(); ++i) ASSERT_EQ(got.f32()[i], want.f32()[i]) << i;
    }
  }
}

TEST(QLinearLookup, RejectsABadTable) {
  Node n = make_node("lut", OpKind::kQLinearLookup, {"x", "t"}, "y");
  Tensor x(DType::kU8, {4});
  EXPECT_THROW(evaluate_node(n, {x, Tensor(DType::kU8, {255})}), Error);
  EXPECT_THROW(evaluate_node(n, {x, Tensor(DType::kF32, {256})}), Error);
  EXPECT_THROW(evaluate_node(n, {Tensor(DType::kF32, {4}), Tensor(DType::kU8, {256})}), Error);
  Tensor table(DType::kI8, {256});
  for (int k = 0; k < 256; ++k) table.data<int8_t>()[k] = static_cast<int8_t>(127 - k / 2);
  Tensor xi(DType::kI8, {3});
  xi.data<int8_t>()[0] = -128;
  xi.data<int8_t>()[1] = 0;
  xi.data<int8_t>()[2] = 127;
  const Tensor y = evaluate_node(n, {xi, table})[0];
  ASSERT_EQ(y.dtype(), DType::kI8);
  EXPECT_EQ(y.data<int8_t>()[0], 127);  // code -128 is entry 0
  EXPECT_EQ(y.data<int8_t>()[1], 63);   // code 0 is entry 128
  EXPECT_EQ(y.data<int8_t>()[2], 0);    // code 127 is entry 255
}

// MobileNetV3-small: its HardSwish activations between quantized convolutions run as tables.
TEST(QLinearLookup, QuantizedMobileNetV3RunsHardSwishAsTables) {
  zoo::ZooOptions o;
  o.input_shape = {1, 28, 28};
  o.classes = 10;
  o.seed = 2;
  Graph g = zoo::build("mobilenet_v3_small", o);
  Rng rng(5);
  randomize_batchnorm(g, 6);  // activations that span real ranges

  data::Dataset calib;
  calib.x = Tensor(DType::kF32, {32, 1, 28, 28});
  for (int64_t i = 0; i < calib.x.numel(); ++i) calib.x.f32()[i] = rng.uniform(0.0f, 1.0f);
  calib.y = Tensor(DType::kI64, {32});
  for (int64_t i = 0; i < 32; ++i) calib.y.data<int64_t>()[i] = i % 10;
  calib.num_classes = 10;
  compress::QuantizeOptions opts;
  opts.calibration.samples = 32;
  compress::quantize_post_training(g, calib, data::Normalization{}, opts);
  Graph lowered = g;
  ASSERT_GT(lower_qdq(lowered), 0);
  EXPECT_GT(count_op(lowered, OpKind::kQLinearLookup), 0);
  // The integer runtime still computes the QDQ graph (to rounding steps of the integer convs).
  Tensor x(DType::kF32, {4, 1, 28, 28});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = rng.uniform(0.0f, 1.0f);
  const Tensor fake =
      InferenceSession(g, KernelChoice::kReference, false).run({{g.inputs[0].name, x}})[0].clone();
  const Tensor integer =
      InferenceSession(g, KernelChoice::kFast, true).run({{g.inputs[0].name, x}})[0].clone();
  double range = 0, worst = 0;
  for (int64_t i = 0; i < fake.numel(); ++i) {
    range = std::max(range, double(std::fabs(fake.f32()[i])));
    worst = std::max(worst, double(std::fabs(fake.f32()[i] - integer.f32()[i])));
  }
  EXPECT_LT(worst, 0.05 * range) << "range " << range;
}

}  // namespace
}  // namespace minnow
