// Add/Sub/Mul and Div/Pow/Max/Min: outputs and gradients against a naive index-by-index
// broadcasting oracle (also on tensors large enough for the parallel paths), finite-difference
// gradients, hand values, symbolic-batch inference and bad shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "elementwise_test_util.h"
#include "op_harness.h"

namespace minnow::testing {
namespace {

struct ShapePair {
  Shape a, b;
};

const std::vector<ShapePair> kPairs = {
    {{3, 5}, {3, 5}},                // equal shapes
    {{2, 3, 9, 11}, {2, 3, 9, 11}},  //
    {{1, 3, 4, 4}, {1, 3, 4, 4}},    // batch 1
    {{2, 3, 5, 7}, {1, 3, 1, 1}},    // per channel
    {{2, 3, 5, 7}, {3, 1, 1}},       // per channel, lower rank
    {{1, 3, 1, 1}, {2, 3, 5, 7}},    // per channel on the left
    {{1}, {4, 6}},                   // scalar left
    {{4, 6}, {}},                    // rank-0 scalar right
    {{5, 1}, {1, 7}},                // outer product
    {{4, 7}, {7}},                   // bias-like
    {{2, 6, 4, 4}, {2, 6, 1, 1}},    // squeeze-excitation scale
    {{2, 1, 5, 1}, {1, 3, 1, 4}},    // both sides broadcast, alternating
    {{4, 1, 3}, {2, 1, 5, 1}},       // different ranks, both broadcast
    {{3, 1, 1}, {3, 1, 1}},          // size-1 dims everywhere
};

// Large cases run the multi-threaded forward and partial-sum reductions.
const std::vector<ShapePair> kLargePairs = {
    {{64, 6, 28, 28}, {64, 6, 28, 28}},
    {{64, 6, 28, 28}, {1, 6, 1, 1}},
    {{1}, {64, 6, 28, 28}},
    {{64, 6, 28, 28}, {64, 6, 1, 1}},
    {{600, 1}, {1, 300}},
    {{300, 2, 200}, {300, 1, 200}},
};

const OpKind kOps[] = {OpKind::kAdd, OpKind::kSub, OpKind::kMul};

// Row-major index into `s` (right-aligned within rank r) of output multi-index `idx`.
int64_t broadcast_index(const Shape& s, const std::vector<int64_t>& idx) {
  const size_t r = idx.size();
  int64_t off = 0;
  for (size_t d = 0; d < s.size(); ++d) off = off * s[d] + (s[d] == 1 ? 0 : idx[r - s.size() + d]);
  return off;
}

// Naive oracle in double: y = a op b, ga/gb = reductions of dy (times the other operand).
void naive(OpKind op, const Tensor& a, const Tensor& b, const Tensor& dy, const Shape& out,
           std::vector<double>& y, std::vector<double>& ga, std::vector<double>& gb) {
  const std::vector<double> av = values_of(a), bv = values_of(b), dv = values_of(dy);
  y.assign(dv.size(), 0);
  ga.assign(av.size(), 0);
  gb.assign(bv.size(), 0);
  std::vector<int64_t> idx(out.size(), 0);
  for (size_t i = 0; i < dv.size(); ++i) {
    const int64_t ia = broadcast_index(a.shape(), idx), ib = broadcast_index(b.shape(), idx);
    const double x = av[ia], z = bv[ib];
    y[i] = op == OpKind::kAdd ? x + z : op == OpKind::kSub ? x - z : x * z;
    ga[ia] += op == OpKind::kMul ? dv[i] * z : dv[i];
    gb[ib] += op == OpKind::kMul ? dv[i] * x : op == OpKind::kSub ? -dv[i] : dv[i];
    for (size_t d = out.size(); d-- > 0;) {
      if (++idx[d] < out[d]) break;
      idx[d] = 0;
    }
  }
}

void expect_matches_naive(OpKind op, const ShapePair& p, Rng& rng) {
  const std::string label =
      std::string(op_def(op).name) + " " + shape_str(p.a) + " " + shape_str(p.b);
  Tensor a = random_tensor(p.a, rng), b = random_tensor(p.b, rng);
  const Shape out = infer_shape(make_node(op), {p.a, p.b});
  Tensor dy = random_tensor(out, rng);
  KernelRun r = run_kernel(make_node(op), {a, b}, {dy});
  std::vector<double> y, ga, gb;
  naive(op, a, b, dy, out, y, ga, gb);
  // Reductions over up to ~50k float terms: allow for f32 rounding of the sums.
  expect_values(r.outputs[0], y, 1e-6, label + " y");
  expect_values(r.grads[0], ga, 2e-3, label + " grad a");
  expect_values(r.grads[1], gb, 2e-3, label + " grad b");
}

TEST(Binary, MatchesNaiveBroadcasting) {
  Rng rng(21);
  for (OpKind op : kOps) {
    for (const ShapePair& p : kPairs) expect_matches_naive(op, p, rng);
  }
}

TEST(Binary, LargeTensorsMatchNaiveBroadcasting) {
  Rng rng(22);
  for (OpKind op : kOps) {
    for (const ShapePair& p : kLargePairs) expect_matches_naive(op, p, rng);
  }
}

TEST(Binary, GradientMatchesFiniteDifference) {
  Rng rng(23);
  for (OpKind op : kOps) {
    for (const ShapePair& p : kPairs) {
      OpCase c;
      c.label = std::string(op_def(op).name) + " " + shape_str(p.a) + " " + shape_str(p.b);
      c.node = make_node(op);
      c.inputs = {random_tensor(p.a, rng), random_tensor(p.b, rng)};
      expect_gradient_matches_finite_difference(c, 30);
    }
  }
}

TEST(Binary, HandComputedValues) {
  Tensor a = make_tensor({2}, {1, 2});       // broadcast along rows
  Tensor b = make_tensor({2, 1}, {10, 20});  // broadcast along columns
  Tensor ones = make_tensor({2, 2}, {1, 1, 1, 1});
  KernelRun add = run_kernel(make_node(OpKind::kAdd), {a, b}, {ones});
  expect_values(add.outputs[0], {11, 12, 21, 22}, 0, "add");
  expect_values(add.grads[0], {2, 2}, 0, "add grad a");
  expect_values(add.grads[1], {2, 2}, 0, "add grad b");
  KernelRun sub = run_kernel(make_node(OpKind::kSub), {a, b}, {ones});
  expect_values(sub.outputs[0], {-9, -8, -19, -18}, 0, "sub");
  expect_values(sub.grads[1], {-2, -2}, 0, "sub grad b");
  KernelRun mul = run_kernel(make_node(OpKind::kMul), {a, b}, {ones});
  expect_values(mul.outputs[0], {10, 20, 20, 40}, 0, "mul");
  expect_values(mul.grads[0], {30, 30}, 0, "mul grad a");  // 10 + 20 for each column
  expect_values(mul.grads[1], {3, 3}, 0, "mul grad b");    // 1 + 2 for each row
  KernelRun none = run_kernel(make_node(OpKind::kMul), {a, b}, {Tensor()});
  expect_values(none.grads[0], {0, 0}, 0, "absent output gradient");
}

TEST(Binary, F64MatchesF32) {
  Rng rng(24);
  Tensor a = random_tensor({2, 3, 5, 7}, rng), b = random_tensor({3, 1, 1}, rng);
  KernelRun r32 = run_kernel(make_node(OpKind::kMul), {a, b});
  KernelRun r64 =
      run_kernel(make_node(OpKind::kMul), {to_dtype(a, DType::kF64), to_dtype(b, DType::kF64)});
  EXPECT_EQ(r64.outputs[0].dtype(), DType::kF64);
  expect_values(r32.outputs[0], values_of(r64.outputs[0]), 1e-6, "f32 vs f64");
}

TEST(Binary, InferBroadcastsWithSymbolicBatch) {
  const int64_t N = kDynamic;
  EXPECT_EQ(infer_shape(make_node(OpKind::kAdd), {{N, 3, 4, 4}, {3, 1, 1}}), (Shape{N, 3, 4, 4}));
  EXPECT_EQ(infer_shape(make_node(OpKind::kAdd), {{N, 3, 4, 4}, {1, 3, 1, 1}}),
            (Shape{N, 3, 4, 4}));
  EXPECT_EQ(infer_shape(make_node(OpKind::kMul), {{N, 1}, {1, 7}}), (Shape{N, 7}));
  EXPECT_EQ(infer_shape(make_node(OpKind::kSub), {{1}, {N, 5}}), (Shape{N, 5}));
  EXPECT_EQ(infer_shape(make_node(OpKind::kAdd), {{N, 5}, {N, 5}}), (Shape{N, 5}));
  EXPECT_EQ(infer_shape(make_node(OpKind::kAdd), {{}, {}}), (Shape{}));
  EXPECT_EQ(infer_shape(make_node(OpKind::kAdd), {{2, 1, 5, 1}, {1, 3, 1, 4}}),
            (Shape{2, 3, 5, 4}));
}

TEST(Binary, BadInputIsAnError) {
  EXPECT_THROW(infer_shape(make_node(OpKind::kAdd), {{2, 3}, {4, 3}}), Error);
  EXPECT_THROW(infer_shape(make_node(OpKind::kMul), {{2, 3, 4}, {3, 5}}), Error);
  EXPECT_THROW(infer_outputs(make_node(OpKind::kAdd), {{2}, {2}}, 1, DType::kI64), Error);
  try {
    infer_shape(make_node(OpKind::kSub), {{kDynamic, 3}, {5, 4}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("broadcast"), std::string::npos) << e.what();
  }
  // Mixed float widths.
  Node n = make_node(OpKind::kAdd);
  n.inputs = {"a", "b"};
  n.outputs = {"y"};
  ValueInfo a{"a", DType::kF32, {2}}, b{"b", DType::kF64, {2}};
  std::vector<ValueInfo> out(1);
  EXPECT_THROW(op_def(OpKind::kAdd).infer(n, {&a, &b}, out), Error);
}

// Div, Pow, Max, Min (math_binary.cpp). The oracle's derivatives are written out per op.
struct MathBinaryCase {
  OpKind op;
  float a_lo, a_hi, b_lo, b_hi;  // input domains (Pow: positive base, Div: divisor away from 0)
};

const MathBinaryCase kMathOps[] = {
    {OpKind::kDiv, -2, 2, 0.5f, 2},
    {OpKind::kPow, 0.3f, 2, -2, 2},
    {OpKind::kMax, -1, 1, -1, 1},
    {OpKind::kMin, -1, 1, -1, 1},
};

void naive_math(OpKind op, double x, double z, double& y, double& dx, double& dz) {
  switch (op) {
    case OpKind::kDiv:
      y = x / z, dx = 1 / z, dz = -x / (z * z);
      break;
    case OpKind::kPow:
      y = std::pow(x, z), dx = z * std::pow(x, z - 1), dz = std::pow(x, z) * std::log(x);
      break;
    case OpKind::kMax:
      y = std::max(x, z), dx = x >= z ? 1 : 0, dz = 1 - dx;
      break;
    default:
      y = std::min(x, z), dx = x <= z ? 1 : 0, dz = 1 - dx;
      break;
  }
}

Tensor sample_in(const Shape& s, Rng& rng, float lo, float hi) {
  return random_tensor(s, rng, lo, hi);
}

void expect_math_matches_naive(const MathBinaryCase& mc, const ShapePair& p, Rng& rng) {
  const std::string label =
      std::string(op_def(mc.op).name) + " " + shape_str(p.a) + " " + shape_str(p.b);
  Tensor a = sample_in(p.a, rng, mc.a_lo, mc.a_hi), b = sample_in(p.b, rng, mc.b_lo, mc.b_hi);
  const Shape out = infer_shape(make_node(mc.op), {p.a, p.b});
  Tensor dy = random_tensor(out, rng);
  KernelRun r = run_kernel(make_node(mc.op), {a, b}, {dy});
  const std::vector<double> av = values_of(a), bv = values_of(b), dv = values_of(dy);
  std::vector<double> y(dv.size()), ga(av.size()), gb(bv.size());
  std::vector<int64_t> idx(out.size(), 0);
  for (size_t i = 0; i < dv.size(); ++i) {
    const int64_t ia = broadcast_index(a.shape(), idx), ib = broadcast_index(b.shape(), idx);
    double dx, dz;
    naive_math(mc.op, av[ia], bv[ib], y[i], dx, dz);
    ga[ia] += dv[i] * dx;
    gb[ib] += dv[i] * dz;
    for (size_t d = out.size(); d-- > 0;) {
      if (++idx[d] < out[d]) break;
      idx[d] = 0;
    }
  }
  std::vector<double> got = values_of(r.outputs[0]);
  for (size_t i = 0; i < y.size(); ++i) {
    ASSERT_NEAR(got[i], y[i], 1e-5 * (1 + std::abs(y[i]))) << label << " y " << i;
  }
  expect_values(r.grads[0], ga, 2e-3, label + " grad a");
  expect_values(r.grads[1], gb, 2e-3, label + " grad b");
}

TEST(MathBinary, MatchesNaiveBroadcasting) {
  Rng rng(25);
  for (const MathBinaryCase& mc : kMathOps) {
    for (const ShapePair& p : kPairs) expect_math_matches_naive(mc, p, rng);
  }
}

TEST(MathBinary, LargeTensorsMatchNaiveBroadcasting) {
  Rng rng(26);
  const ShapePair pairs[] = {{{64, 6, 28, 28}, {1, 6, 1, 1}}, {{600, 1}, {1, 300}}};
  for (const MathBinaryCase& mc : kMathOps) {
    for (const ShapePair& p : pairs) expect_math_matches_naive(mc, p, rng);
  }
}

TEST(MathBinary, GradientMatchesFiniteDifference) {
  Rng rng(27);
  for (const MathBinaryCase& mc : kMathOps) {
    for (const ShapePair& p : kPairs) {
      OpCase c;
      c.label = std::string(op_def(mc.op).name) + " " + shape_str(p.a) + " " + shape_str(p.b);
      c.node = make_node(mc.op);
      c.inputs = {sample_in(p.a, rng, mc.a_lo, mc.a_hi), sample_in(p.b, rng, mc.b_lo, mc.b_hi)};
      expect_gradient_matches_finite_difference(c, 30);
    }
  }
}

TEST(MathBinary, HandComputedValues) {
  Tensor ones = make_tensor({3}, {1, 1, 1});
  // Max/Min ties send the gradient to the first input.
  Tensor a = make_tensor({3}, {1, 2, 3}), b = make_tensor({3}, {3, 2, 1});
  KernelRun mx = run_kernel(make_node(OpKind::kMax), {a, b}, {ones});
  expect_values(mx.outputs[0], {3, 2, 3}, 0, "max");
  expect_values(mx.grads[0], {0, 1, 1}, 0, "max grad a");
  expect_values(mx.grads[1], {1, 0, 0}, 0, "max grad b");
  KernelRun mn = run_kernel(make_node(OpKind::kMin), {a, b}, {ones});
  expect_values(mn.outputs[0], {1, 2, 1}, 0, "min");
  expect_values(mn.grads[0], {1, 1, 0}, 0, "min grad a");
  // Pow: a negative base with an integral exponent; the exponent gets no gradient there, and
  // x^0 has no gradient to x even at x = 0.
  Tensor base = make_tensor({3}, {-2, 0, 4}), expo = make_tensor({3}, {3, 0, 0.5});
  KernelRun pw = run_kernel(make_node(OpKind::kPow), {base, expo}, {ones});
  expect_values(pw.outputs[0], {-8, 1, 2}, 1e-6, "pow");
  expect_values(pw.grads[0], {12, 0, 0.25}, 1e-6, "pow grad base");
  expect_values(pw.grads[1], {0, 0, 2 * std::log(4.0)}, 1e-6, "pow grad exponent");
  // Div by a broadcast scalar: the divisor's gradient sums over the output.
  Tensor s = make_tensor({1}, {2});
  KernelRun dv = run_kernel(make_node(OpKind::kDiv), {a, s}, {ones});
  expect_values(dv.outputs[0], {0.5, 1, 1.5}, 0, "div");
  expect_values(dv.grads[0], {0.5, 0.5, 0.5}, 0, "div grad a");
  expect_values(dv.grads[1], {-1.5}, 1e-7, "div grad b");  // -(1 + 2 + 3) / 4
  // NaN propagates through Max and Min from either side.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor n1 = make_tensor({2}, {nan, 1}), n2 = make_tensor({2}, {1, nan});
  for (OpKind op : {OpKind::kMax, OpKind::kMin}) {
    std::vector<double> y = values_of(run_kernel(make_node(op), {n1, n2}).outputs[0]);
    EXPECT_TRUE(std::isnan(y[0]) && std::isnan(y[1])) << op_def(op).name;
  }
  KernelRun none = run_kernel(make_node(OpKind::kPow), {a, b}, {Tensor()});
  expect_values(none.grads[1], {0, 0, 0}, 0, "absent output gradient");
}

TEST(MathBinary, InferAndBadInput) {
  const int64_t N = kDynamic;
  EXPECT_EQ(infer_shape(make_node(OpKind::kDiv), {{N, 3, 4}, {3, 1}}), (Shape{N, 3, 4}));
  EXPECT_EQ(infer_shape(make_node(OpKind::kPow), {{N, 5}, {}}), (Shape{N, 5}));
  EXPECT_THROW(infer_shape(make_node(OpKind::kMax), {{2, 3}, {4, 3}}), Error);
  EXPECT_THROW(infer_outputs(make_node(OpKind::kMin), {{2}, {2}}, 1, DType::kI32), Error);
}

}  // namespace
}  // namespace minnow::testing
