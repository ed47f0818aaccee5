// lower_qdq's fusion of a ReLU that sits between two QuantizeLinear nodes with one set of
// parameters (PyTorch's eager-mode export of Linear -> quantized ReLU): the ReLU becomes the
// integer op's fused activation, and the result is exactly what the QDQ graph computes.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>

#include "core/rng.h"
#include "minnow/graph.h"
#include "passes/lower_qdq.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

Tensor f32_scalar(float v) {
  Tensor t(DType::kF32, {});
  t.f32()[0] = v;
  return t;
}

Tensor u8_scalar(uint8_t v) {
  Tensor t(DType::kU8, {});
  t.data<uint8_t>()[0] = v;
  return t;
}

Node make(const std::string& name, OpKind op, std::vector<std::string> in,
          std::vector<std::string> out) {
  Node n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

// x -> Q -> DQ -> Linear(DQ(w_i8), DQ(b_i32)) -> Q(y) -> DQ(relu_in) -> activation -> Q(act) ->
// DQ -> output. `act_scale` / `act_zp` are the parameters of the QuantizeLinear after the ReLU.
Graph relu_between_quantizers(OpKind activation, float act_scale, uint8_t act_zp) {
  Graph g;
  g.name = "qdq_relu";
  g.inputs = {{"x", DType::kF32, {kDynamic, 7}}};
  g.outputs = {{"out", DType::kF32, {kDynamic, 5}}};
  Rng rng(3);
  Tensor w(DType::kI8, {5, 7});
  for (int64_t i = 0; i < w.numel(); ++i) {
    w.data<int8_t>()[i] = static_cast<int8_t>(static_cast<int>(rng.uniform() * 255.0) - 127);
  }
  Tensor b(DType::kI32, {5});
  for (int64_t i = 0; i < b.numel(); ++i) b.data<int32_t>()[i] = int32_t(i * 37) - 80;
  auto init = [&](const std::string& name, Tensor t) { g.initializers[name] = {std::move(t)}; };
  init("x_s", f32_scalar(0.02f));
  init("x_zp", u8_scalar(128));
  init("w", std::move(w));
  init("w_s", f32_scalar(0.01f));
  init("b", std::move(b));
  init("b_s", f32_scalar(0.0002f));
  init("y_s", f32_scalar(0.05f));
  init("y_zp", u8_scalar(100));
  init("r_s", f32_scalar(0.05f));  // same values as y_s / y_zp, other names (as torch writes)
  init("r_zp", u8_scalar(100));
  init("a_s", f32_scalar(act_scale));
  init("a_zp", u8_scalar(act_zp));
  g.nodes = {make("qx", OpKind::kQuantizeLinear, {"x", "x_s", "x_zp"}, {"xq"}),
             make("dqx", OpKind::kDequantizeLinear, {"xq", "x_s", "x_zp"}, {"xf"}),
             make("dqw", OpKind::kDequantizeLinear, {"w", "w_s"}, {"wf"}),
             make("dqb", OpKind::kDequantizeLinear, {"b", "b_s"}, {"bf"}),
             make("fc", OpKind::kLinear, {"xf", "wf", "bf"}, {"y"}),
             make("qy", OpKind::kQuantizeLinear, {"y", "y_s", "y_zp"}, {"yq"}),
             make("dqr", OpKind::kDequantizeLinear, {"yq", "r_s", "r_zp"}, {"r"}),
             make("act", activation, {"r"}, {"a"}),
             make("qa", OpKind::kQuantizeLinear, {"a", "a_s", "a_zp"}, {"aq"}),
             make("dqa", OpKind::kDequantizeLinear, {"aq", "a_s", "a_zp"}, {"out"})};
  for (Node& n : g.nodes) {
    if (n.op == OpKind::kQuantizeLinear || n.op == OpKind::kDequantizeLinear) {
      n.attrs.set("axis", int64_t{1});
    }
  }
  g.validate();
  return g;
}

Tensor random_input(int64_t n) {
  Rng rng(11);
  Tensor x(DType::kF32, {n, 7});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = static_cast<float>(rng.uniform() * 5 - 2.5);
  return x;
}

// Runs the graph as given (reference kernels, no rewrites) and lowered (the session's passes):
// equal within one output quantization step `step` (the float Linear of the QDQ form and the
// exact int32 accumulation may round a near-tie differently), and mostly exactly equal.
void expect_lowered_matches(const Graph& g, float step) {
  const Tensor x = random_input(33);
  InferenceSession exact(g, KernelChoice::kReference, /*optimize=*/false);
  InferenceSession lowered(g);
  const Tensor want = exact.run({{"x", x}})[0];
  const Tensor& got = lowered.run({{"x", x}})[0];
  ASSERT_EQ(got.shape(), want.shape());
  int clamped = 0, exact_count = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    EXPECT_LE(std::abs(got.f32()[i] - want.f32()[i]), step * 1.001f) << "element " << i;
    clamped += want.f32()[i] == 0.0f;
    exact_count += got.f32()[i] == want.f32()[i];
  }
  EXPECT_GT(clamped, 0) << "the input should drive some outputs below zero";
  EXPECT_GE(exact_count, want.numel() * 95 / 100);
}

TEST(LowerQdqActivation, ReluBetweenEqualQuantizersBecomesFusedActivation) {
  for (OpKind act : {OpKind::kRelu, OpKind::kRelu6}) {
    SCOPED_TRACE(act == OpKind::kRelu ? "relu" : "relu6");
    const Graph g = relu_between_quantizers(act, 0.05f, 100);
    Graph lowered = g;
    ASSERT_GT(lower_qdq(lowered), 0);
    int qlinear = 0;
    for (const Node& n : lowered.nodes) {
      EXPECT_NE(n.op, act) << "the activation should be fused";
      if (n.op == OpKind::kQLinearLinear) {
        ++qlinear;
        EXPECT_EQ(n.attrs.get_string("activation", ""), act == OpKind::kRelu ? "relu" : "relu6");
        EXPECT_EQ(n.outputs[0], "aq");
      }
    }
    EXPECT_EQ(qlinear, 1);
    expect_lowered_matches(g, 0.05f);
  }
}

TEST(LowerQdqActivation, ReluBetweenDifferentQuantizersStaysFloat) {
  for (const auto& [scale, zp] : {std::pair{0.04f, uint8_t{100}}, std::pair{0.05f, uint8_t{0}}}) {
    const Graph g = relu_between_quantizers(OpKind::kRelu, scale, zp);
    Graph lowered = g;
    ASSERT_GT(lower_qdq(lowered), 0);
    int relus = 0;
    for (const Node& n : lowered.nodes) {
      relus += n.op == OpKind::kRelu;
      if (n.op == OpKind::kQLinearLinear) {
        EXPECT_FALSE(n.attrs.has("activation"));
      }
    }
    EXPECT_EQ(relus, 1) << "requantizing to other parameters is not a plain clamp";
    expect_lowered_matches(g, scale);
  }
}

}  // namespace
}  // namespace minnow
