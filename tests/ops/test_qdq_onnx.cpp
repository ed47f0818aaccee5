// QuantizeLinear / DequantizeLinear through ONNX: a minnow QDQ graph exported (standard domain,
// axis written only for per-channel scales) and imported back runs to the same bytes; the
// lowered int8 ops refuse export with a clear message.
#include <gtest/gtest.h>

#include <string>

#include "onnx/onnx_export.h"
#include "onnx/onnx_import.h"
#include "quant_test_util.h"
#include "runtime/inference_session.h"

namespace minnow::testing {
namespace {

using namespace quant_test;

// x [N,3,2,2] -> QuantizeLinear (per channel, i8) -> DequantizeLinear -> QuantizeLinear (per
// tensor, u8 without zero point) -> DequantizeLinear -> y.
Graph qdq_graph() {
  Graph g;
  g.name = "qdq";
  g.inputs = {{"x", DType::kF32, {kDynamic, 3, 2, 2}}};
  g.outputs = {{"y", DType::kF32, {kDynamic, 3, 2, 2}}};
  g.initializers["s"] = {ftensor({3}, {0.5f, 0.25f, 2.0f}), false};
  g.initializers["z"] = {qtensor(DType::kI8, {3}, {0, -3, 5}), false};
  g.initializers["s2"] = {scale(0.125f), false};
  auto node = [](const std::string& name, OpKind op, std::vector<std::string> in,
                 const std::string& out) {
    Node n;
    n.name = name;
    n.op = op;
    n.inputs = std::move(in);
    n.outputs = {out};
    n.attrs.set("axis", int64_t{1});
    return n;
  };
  g.nodes = {node("q1", OpKind::kQuantizeLinear, {"x", "s", "z"}, "q"),
             node("dq1", OpKind::kDequantizeLinear, {"q", "s", "z"}, "r"),
             node("q2", OpKind::kQuantizeLinear, {"r", "s2", ""}, "q2"),
             node("dq2", OpKind::kDequantizeLinear, {"q2", "s2"}, "y")};
  return g;
}

TEST(QdqOnnx, ExportImportRoundTripRunsIdentically) {
  const Graph g = qdq_graph();
  g.validate();
  const std::string bytes = onnx::export_onnx_bytes(g);
  onnx::ImportOptions io;
  io.dynamic_batch = true;
  const Graph back = onnx::import_onnx_bytes(bytes.data(), bytes.size(), "qdq.onnx", io);
  int q = 0, dq = 0;
  for (const Node& n : back.nodes) {
    q += n.op == OpKind::kQuantizeLinear;
    dq += n.op == OpKind::kDequantizeLinear;
  }
  EXPECT_EQ(q, 2);
  EXPECT_EQ(dq, 2);
  Rng rng(11);
  Tensor x(DType::kF32, {2, 3, 2, 2});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = rng.uniform(-40.0f, 40.0f);
  InferenceSession a(g), b(back);
  const Tensor ya = a.run({{"x", x}})[0].clone();
  const Tensor yb = b.run({{"x", x}})[0].clone();
  expect_identical(ya, yb, "y");
  // And the values are the quantized ones: multiples of 1/8 within u8 range [0, 255/8].
  for (int64_t i = 0; i < ya.numel(); ++i) {
    const float v = ya.f32()[i] * 8;
    EXPECT_EQ(v, static_cast<float>(static_cast<int>(v)));
    EXPECT_GE(ya.f32()[i], 0.0f);
    EXPECT_LE(ya.f32()[i], 255.0f / 8);
  }
}

TEST(QdqOnnx, LoweredInt8OpsAreNotExported) {
  Graph g;
  g.name = "qadd";
  g.inputs = {{"a", DType::kU8, {kDynamic, 4}}, {"b", DType::kU8, {kDynamic, 4}}};
  g.outputs = {{"y", DType::kU8, {kDynamic, 4}}};
  g.initializers["s"] = {scale(0.5f), false};
  Node n;
  n.name = "add_q";
  n.op = OpKind::kQLinearAdd;
  n.inputs = {"a", "s", "", "b", "s", "", "s", ""};
  n.outputs = {"y"};
  g.nodes = {n};
  g.validate();
  try {
    onnx::export_onnx_bytes(g);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("add_q"), std::string::npos) << msg;
    EXPECT_NE(msg.find("QDQ graph"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace minnow::testing
