// Softmax on quantized data (ops/qlinear_softmax.cpp, lowered by passes/lower_qdq):
// DQ -> Softmax [-> Q] becomes one QLinearSoftmax that computes what the QDQ graph computes
// (to float rounding with f32 output, to one quantization step with quantized output), along any
// axis, for u8 and i8 data.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "core/op_registry.h"
#include "core/rng.h"
#include "graph_test_util.h"
#include "minnow/error.h"
#include "minnow/graph.h"
#include "passes/fold_constants.h"
#include "passes/lower_qdq.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

using ::minnow::testing::count_op;
using ::minnow::testing::make_node;
using ::minnow::testing::scalar_tensor;

// x [N,4,10] -> Q -> DQ -> Softmax(axis) [-> Q(1/256, u8 0) -> DQ] -> y.
Graph qdq_softmax(DType t, int64_t axis, bool quantized_output) {
  Graph g;
  g.name = "qdq_softmax";
  g.inputs = {{"x", DType::kF32, {kDynamic, 4, 10}}};
  g.outputs = {{"y", DType::kF32, {kDynamic, 4, 10}}};
  const bool u8 = t == DType::kU8;
  g.initializers["xs"] = Initializer{scalar_tensor(DType::kF32, 0.07), false};
  g.initializers["xzp"] = Initializer{scalar_tensor(t, u8 ? 100 : -20), false};
  g.nodes.push_back(make_node("q", OpKind::kQuantizeLinear, {"x", "xs", "xzp"}, "xq"));
  g.nodes.push_back(make_node("dq", OpKind::kDequantizeLinear, {"xq", "xs", "xzp"}, "xd"));
  Node sm = make_node("softmax", OpKind::kSoftmax, {"xd"}, quantized_output ? "p" : "y");
  sm.attrs.set("axis", axis);
  g.nodes.push_back(std::move(sm));
  if (quantized_output) {
    g.initializers["ys"] = Initializer{scalar_tensor(DType::kF32, 1.0 / 256), false};
    g.initializers["yzp"] = Initializer{scalar_tensor(DType::kU8, 0), false};
    g.nodes.push_back(make_node("q2", OpKind::kQuantizeLinear, {"p", "ys", "yzp"}, "yq"));
    g.nodes.push_back(make_node("dq2", OpKind::kDequantizeLinear, {"yq", "ys", "yzp"}, "y"));
  }
  g.validate();
  return g;
}

Tensor logits(Rng& rng) {
  Tensor x(DType::kF32, {3, 4, 10});
  // Beyond both ends of the input range, so saturated codes and ties for the maximum occur.
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = rng.uniform(-12.0f, 12.0f);
  return x;
}

TEST(QLinearSoftmax, LoweredSoftmaxComputesTheQdqGraph) {
  Rng rng(8);
  const Tensor x = logits(rng);
  for (DType t : {DType::kU8, DType::kI8}) {
    for (int64_t axis : {-1, 1, 0}) {
      for (bool quantized : {false, true}) {
        SCOPED_TRACE(std::string(dtype_name(t)) + " axis " + std::to_string(axis) +
                     (quantized ? " quantized output" : " f32 output"));
        const Graph g = qdq_softmax(t, axis, quantized);
        Graph lowered = g;
        ASSERT_EQ(lower_qdq(lowered), 1);
        EXPECT_EQ(count_op(lowered, OpKind::kQLinearSoftmax), 1);
        EXPECT_EQ(count_op(lowered, OpKind::kSoftmax), 0);
        EXPECT_EQ(count_op(lowered, OpKind::kQuantizeLinear), 1);  // the input's only
        const Tensor want =
            InferenceSession(g, KernelChoice::kReference, false).run({{"x", x}})[0].clone();
        const Tensor got = InferenceSession(lowered, KernelChoice::kFast, false).run({{"x", x}})[0];
        ASSERT_EQ(got.shape(), want.shape());
        int differ = 0;
        for (int64_t i = 0; i < want.numel(); ++i) {
          // Quantized: at most one step of 1/256 where the float path rounds the other way.
          const double tol = quantized ? 1.0 / 256 + 1e-7 : 1e-6;
          ASSERT_NEAR(got.f32()[i], want.f32()[i], tol) << i;
          differ += got.f32()[i] != want.f32()[i];
        }
        if (quantized) {
          EXPECT_LE(differ, want.numel() / 20);
        }
      }
    }
  }
}

TEST(QLinearSoftmax, RowsSumToOne) {
  Node n = make_node("sm", OpKind::kQLinearSoftmax, {"x", "s", "z"}, "y");
  Tensor x(DType::kU8, {2, 5});
  const uint8_t codes[] = {0, 255, 7, 7, 130, 3, 3, 3, 3, 3};
  for (int i = 0; i < 10; ++i) x.data<uint8_t>()[i] = codes[i];
  const Tensor y =
      evaluate_node(n, {x, scalar_tensor(DType::kF32, 0.02), scalar_tensor(DType::kU8, 9)})[0];
  ASSERT_EQ(y.dtype(), DType::kF32);
  for (int r = 0; r < 2; ++r) {
    double sum = 0;
    for (int k = 0; k < 5; ++k) sum += y.f32()[r * 5 + k];
    EXPECT_NEAR(sum, 1.0, 1e-6);
  }
  // Equal codes, equal probabilities; code 255 against 0: e^(0.02 * 255) times as likely.
  EXPECT_FLOAT_EQ(y.f32()[5], 0.2f);
  EXPECT_NEAR(y.f32()[1] / y.f32()[0], std::exp(0.02 * 255), 1e-3);
}

TEST(QLinearSoftmax, BadInputIsAnError) {
  Node n = make_node("sm", OpKind::kQLinearSoftmax, {"x", "s"}, "y");
  EXPECT_THROW(evaluate_node(n, {Tensor(DType::kF32, {2, 3}), scalar_tensor(DType::kF32, 0.1)}),
               Error);
  EXPECT_THROW(evaluate_node(n, {Tensor(DType::kU8, {}), scalar_tensor(DType::kF32, 0.1)}), Error);
  EXPECT_THROW(evaluate_node(n, {Tensor(DType::kU8, {2, 3}), scalar_tensor(DType::kF32, -1.0)}),
               Error);
  n.attrs.set("axis", int64_t{2});
  EXPECT_THROW(evaluate_node(n, {Tensor(DType::kU8, {2, 3}), scalar_tensor(DType::kF32, 0.1)}),
               Error);
}

}  // namespace
}  // namespace minnow
