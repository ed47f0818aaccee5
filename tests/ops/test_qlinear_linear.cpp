// QLinearLinear: the oneDNN kernel against the integer reference over a table of shapes, the
// reference against minnow's float Linear on dequantized inputs, inference, MACs, bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "minnow/error.h"
#include "qlinear_test_util.h"

namespace minnow {
namespace {

using testing::element;
using testing::max_difference;
using testing::run_op;

struct QLinearCase {
  std::string label;
  Shape x;
  int64_t out;
  DType x_dtype = DType::kU8;
  DType y = DType::kU8;  // kF32: y_scale and y_zero_point absent
  bool per_channel = true, bias = true;
  std::string act;
  int x_zp = 130, y_zp = 128;  // u8 values (i8: minus 128)
};

Node qlinear_node(const QLinearCase& c) {
  Node n;
  n.op = OpKind::kQLinearLinear;
  if (!c.act.empty()) n.attrs.set("activation", c.act);
  return n;
}

struct Inputs {
  std::vector<Tensor> t;
  float x_scale, y_scale;
  std::vector<float> w_scale;
};

Inputs make_inputs(const QLinearCase& c, uint64_t seed) {
  Rng rng(seed);
  Inputs in;
  const int64_t k = c.x.back();
  const bool u8 = c.x_dtype == DType::kU8;
  in.x_scale = 0.05f;
  in.w_scale.resize(c.per_channel ? c.out : 1);
  for (float& s : in.w_scale) s = rng.uniform(0.002f, 0.01f);
  in.y_scale = in.x_scale * 0.006f * 5400.0f * std::sqrt(static_cast<float>(k)) / 40.0f;
  const Shape sc = c.per_channel ? Shape{c.out} : Shape{1};
  in.t.resize(9);
  in.t[0] = testing::random_q(c.x_dtype, c.x, rng, u8 ? 0 : -128, u8 ? 255 : 127);
  in.t[1] = testing::f32_tensor({1}, {in.x_scale});
  in.t[2] = testing::zp_tensor(c.x_dtype, u8 ? c.x_zp : c.x_zp - 128);
  in.t[3] = testing::random_q(DType::kI8, {c.out, k}, rng, -127, 127);
  in.t[4] = testing::f32_tensor(sc, in.w_scale);
  in.t[5] = Tensor(DType::kI8, sc);
  if (c.y != DType::kF32) {
    in.t[6] = testing::f32_tensor({}, {in.y_scale});
    in.t[7] = testing::zp_tensor(c.y, c.y == DType::kU8 ? c.y_zp : c.y_zp - 128);
  }
  if (c.bias) {
    const int b = static_cast<int>(3000 * std::sqrt(static_cast<float>(k)));
    in.t[8] = testing::random_q(DType::kI32, {c.out}, rng, -b, b);
  }
  return in;
}

std::vector<QLinearCase> cases() {
  std::vector<QLinearCase> v;
  v.push_back({"batch 1, 1280->10 (classifier)", {1, 1280}, 10});
  v.push_back(
      {"batch 64, 128->96, relu", {64, 128}, 96, DType::kU8, DType::kU8, true, true, "relu"});
  v.push_back({"odd 7x33->17, i8 in/out, per tensor",
               {7, 33},
               17,
               DType::kI8,
               DType::kI8,
               false,
               true,
               "",
               128,
               100});
  v.push_back({"rank 3 [2,3,20]->9, no bias, relu6",
               {2, 3, 20},
               9,
               DType::kU8,
               DType::kU8,
               true,
               false,
               "relu6",
               0});
  v.push_back({"f32 output, relu", {5, 40}, 12, DType::kU8, DType::kF32, true, true, "relu"});
  return v;
}

TEST(QLinearLinear, FastMatchesReference) {
  uint64_t seed = 11;
  for (const QLinearCase& c : cases()) {
    SCOPED_TRACE(c.label);
    const Inputs in = make_inputs(c, seed++);
    const Tensor ref = run_op(qlinear_node(c), in.t, KernelChoice::kReference);
    const Tensor fast = run_op(qlinear_node(c), in.t, KernelChoice::kFast, 2);
    if (c.y == DType::kF32) {
      for (int64_t i = 0; i < ref.numel(); ++i) {
        ASSERT_NEAR(element(fast, i), element(ref, i), 1e-5 * (1 + std::abs(element(ref, i))));
      }
    } else {
      EXPECT_EQ(max_difference(fast, ref), 0.0);  // exact: same float steps as oneDNN
    }
  }
}

// Dequantize, float Linear (reference kernel), quantize: within one step of the integer op.
TEST(QLinearLinear, ReferenceMatchesFloatLinear) {
  uint64_t seed = 50;
  for (const QLinearCase& c : cases()) {
    SCOPED_TRACE(c.label);
    const Inputs in = make_inputs(c, seed++);
    const Tensor q = run_op(qlinear_node(c), in.t, KernelChoice::kReference);
    const int64_t k = c.x.back();
    const int x_zp = static_cast<int>(element(in.t[2], 0));
    Tensor x(DType::kF32, c.x), w(DType::kF32, {c.out, k}), b(DType::kF32, {c.out});
    const std::vector<float> xf = testing::dequantize(in.t[0], {in.x_scale}, {x_zp}, 1, 1);
    const std::vector<float> wf =
        testing::dequantize(in.t[3], in.w_scale, std::vector<int>(in.w_scale.size(), 0), k, c.out);
    std::copy(xf.begin(), xf.end(), x.f32());
    std::copy(wf.begin(), wf.end(), w.f32());
    for (int64_t i = 0; i < c.out; ++i) {
      const float ws = in.w_scale[in.w_scale.size() == 1 ? 0 : i];
      b.f32()[i] = c.bias ? static_cast<float>(element(in.t[8], i)) * in.x_scale * ws : 0.0f;
    }
    Node lin = qlinear_node(c);
    lin.op = OpKind::kLinear;
    const Tensor yf = run_op(lin, {x, w, b}, KernelChoice::kReference);
    double worst = 0;
    for (int64_t i = 0; i < yf.numel(); ++i) {
      double expect = yf.f32()[i];
      if (c.y == DType::kF32) {
        ASSERT_NEAR(element(q, i), expect, 1e-4 * (1 + std::abs(expect)));
        continue;
      }
      expect = std::nearbyint(expect / in.y_scale) + element(in.t[7], 0);
      expect =
          c.y == DType::kU8 ? std::clamp(expect, 0.0, 255.0) : std::clamp(expect, -128.0, 127.0);
      worst = std::max(worst, std::abs(expect - element(q, i)));
    }
    EXPECT_LE(worst, 1.0);
  }
}

// Weight zero points oneDNN cannot apply: the fast kernel falls back to the reference path.
TEST(QLinearLinear, NonzeroWeightZeroPointAgrees) {
  QLinearCase c = cases()[2];
  Inputs in = make_inputs(c, 3);
  static_cast<int8_t*>(in.t[5].raw())[0] = 3;
  EXPECT_EQ(max_difference(run_op(qlinear_node(c), in.t, KernelChoice::kFast),
                           run_op(qlinear_node(c), in.t, KernelChoice::kReference)),
            0.0);
}

TEST(QLinearLinear, InferenceMacsAndBadInputs) {
  const QLinearCase c = cases()[2];
  const Inputs good = make_inputs(c, 4);
  const Tensor y = run_op(qlinear_node(c), good.t, KernelChoice::kReference);
  EXPECT_EQ(y.dtype(), DType::kI8);
  EXPECT_EQ(y.shape(), (Shape{7, 17}));
  Node n = qlinear_node(c);
  n.name = "fc";
  n.inputs = {"x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"};
  n.outputs = {"y"};
  std::vector<ValueInfo> infos;
  for (size_t i = 0; i < good.t.size(); ++i) {
    infos.push_back(ValueInfo{n.inputs[i], good.t[i].dtype(), good.t[i].shape()});
  }
  infos[0].shape[0] = kDynamic;
  InputInfos ptrs;
  for (auto& v : infos) ptrs.push_back(&v);
  std::vector<ValueInfo> out(1);
  op_def(n.op).infer(n, ptrs, out);
  EXPECT_EQ(out[0].shape, (Shape{kDynamic, 17}));
  EXPECT_EQ(op_def(n.op).macs(n, ptrs, out), 17 * 33);

  using V = std::vector<Tensor>;
  auto expect_throw = [&](const std::string& what, auto mutate) {
    SCOPED_TRACE(what);
    V t = good.t;
    mutate(t);
    EXPECT_THROW(run_op(qlinear_node(c), t, KernelChoice::kFast), Error);
    EXPECT_THROW(run_op(qlinear_node(c), t, KernelChoice::kReference), Error);
  };
  expect_throw("features", [](V& t) { t[0] = Tensor(DType::kI8, {7, 32}); });
  expect_throw("rank 3 w", [](V& t) { t[3] = Tensor(DType::kI8, {17, 33, 1}); });
  expect_throw("u8 w", [](V& t) { t[3] = Tensor(DType::kU8, {17, 33}); });
  expect_throw("w_zp dtype", [](V& t) { t[5] = Tensor(DType::kU8, {1}); });
  expect_throw("bias shape", [](V& t) { t[8] = Tensor(DType::kI32, {16}); });
  expect_throw("y_zp dtype", [](V& t) { t[7] = Tensor(DType::kI32, {}); });
  expect_throw("negative y_scale", [](V& t) { t[6] = testing::f32_tensor({}, {-1.0f}); });
  expect_throw("missing w_scale", [](V& t) { t[4] = Tensor(); });
}

}  // namespace
}  // namespace minnow
