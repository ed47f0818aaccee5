// Softmax and LogSoftmax: hand values, stability for huge logits, every axis of rank 1-4 inputs,
// finite-difference gradients, bad axis / dtype.
#include <gtest/gtest.h>

#include <cmath>

#include "dense_test_util.h"
#include "op_harness.h"

namespace minnow::testing {
namespace {

using dense::expect_values;
using dense::info;
using dense::tensor;

struct AxisCase {
  Shape shape;
  int64_t axis;
};

const std::vector<AxisCase> kAxisCases =
    {
        {{3, 5}, -1},    {{3, 5}, 0},       {{3, 5}, 1},    {{1, 7}, -1},
        {{4}, 0},        {{2, 3, 4}, 0},    {{2, 3, 4}, 1}, {{2, 3, 4}, 2},
        {{2, 3, 4}, -2}, {{2, 3, 2, 3}, 1}, {{6, 1}, 1},  // a length-1 axis: softmax is 1,
                                                          // log-softmax 0
};

const OpKind kinds[] = {OpKind::kSoftmax, OpKind::kLogSoftmax};

// softmax([1,2,3]) = exp([1,2,3]) / (e + e^2 + e^3); log-softmax = x - log(e + e^2 + e^3).
const std::vector<double> kSoftmax123 = {0.09003057317038046, 0.24472847105479767,
                                         0.6652409557748219};
const std::vector<double> kLogSoftmax123 = {-2.4076059644443806, -1.4076059644443804,
                                            -0.4076059644443804};

TEST(Softmax, HandComputed) {
  Node sm = dense::node(OpKind::kSoftmax);
  Node lsm = dense::node(OpKind::kLogSoftmax);
  expect_values(dense::run(sm, {tensor({1, 3}, {1, 2, 3})}).outputs[0], kSoftmax123, 1e-6, "sm");
  expect_values(dense::run(lsm, {tensor({1, 3}, {1, 2, 3})}).outputs[0], kLogSoftmax123, 1e-6,
                "lsm");
  // Shift invariance keeps huge logits finite.
  expect_values(dense::run(sm, {tensor({1, 3}, {1001, 1002, 1003})}).outputs[0], kSoftmax123, 1e-6,
                "sm large");
  expect_values(
      dense::run(lsm, {tensor({1, 3}, {-1e4 + 1, -1e4 + 2, -1e4 + 3}, DType::kF64)}).outputs[0],
      kLogSoftmax123, 1e-9, "lsm very negative");
  // Axis 0 of a [3,2] tensor: each column is normalized; column 1 is constant -> 1/3 each.
  expect_values(dense::run(dense::node(OpKind::kSoftmax, {{"axis", int64_t{0}}}),
                           {tensor({3, 2}, {1, 5, 2, 5, 3, 5})})
                    .outputs[0],
                {kSoftmax123[0], 1.0 / 3, kSoftmax123[1], 1.0 / 3, kSoftmax123[2], 1.0 / 3}, 1e-6,
                "axis 0");
  // Gradients: softmax dx = y (dy - sum dy y); log-softmax dx = dy - softmax * sum dy.
  Tensor dy = tensor({1, 3}, {1, 0, 0});
  dense::Run r = dense::run(sm, {tensor({1, 3}, {1, 2, 3})}, dense::opts().grads({dy}));
  const double y0 = kSoftmax123[0];
  expect_values(r.grads[0], {y0 * (1 - y0), -kSoftmax123[1] * y0, -kSoftmax123[2] * y0}, 1e-6,
                "softmax dx");
  r = dense::run(lsm, {tensor({1, 3}, {1, 2, 3})}, dense::opts().grads({dy}));
  expect_values(r.grads[0], {1 - y0, -kSoftmax123[1], -kSoftmax123[2]}, 1e-6, "log-softmax dx");
}

TEST(Softmax, RowsSumToOneOnEveryAxis) {
  Rng rng(51);
  for (const AxisCase& a : kAxisCases) {
    OpCase c;
    c.node = dense::node(OpKind::kSoftmax, {{"axis", a.axis}});
    c.inputs = {random_tensor(a.shape, rng, -4, 4)};
    Tensor y = run_reference(c)[0];
    const int64_t rank = static_cast<int64_t>(a.shape.size());
    const int64_t axis = a.axis < 0 ? a.axis + rank : a.axis;
    int64_t inner = 1;
    for (int64_t i = axis + 1; i < rank; ++i) inner *= a.shape[i];
    const int64_t len = a.shape[axis], outer = y.numel() / (len * inner);
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        double s = 0;
        for (int64_t k = 0; k < len; ++k) s += y.f32()[(o * len + k) * inner + i];
        EXPECT_NEAR(s, 1.0, 1e-5) << shape_str(a.shape) << " axis " << a.axis;
      }
    }
  }
}

TEST(Softmax, GradientMatchesFiniteDifference) {
  Rng rng(52);
  for (OpKind kind : kinds) {
    for (const AxisCase& a : kAxisCases) {
      OpCase c;
      c.label = std::string(op_def(kind).name) + " " + shape_str(a.shape) + " axis " +
                std::to_string(a.axis);
      c.node = dense::node(kind, {{"axis", a.axis}});
      c.inputs = {random_tensor(a.shape, rng, -3, 3)};
      expect_gradient_matches_finite_difference(c);
    }
  }
}

// Large enough to take the multi-threaded row loop; checked against the f64 run.
TEST(Softmax, LargeBatchMatchesDouble) {
  Rng rng(53);
  for (OpKind kind : kinds) {
    OpCase c;
    c.node = dense::node(kind);
    c.inputs = {random_tensor({512, 100}, rng, -5, 5)};
    Tensor y32 = run_reference(c)[0];
    c.inputs[0] = to_dtype(c.inputs[0], DType::kF64);
    Tensor y64 = run_reference(c)[0];
    expect_values(y32, dense::values_of(y64), 1e-5, op_def(kind).name);
  }
}

TEST(Softmax, InferShapes) {
  for (OpKind kind : kinds) {
    EXPECT_EQ(dense::infer(dense::node(kind), {info({kDynamic, 10})})[0].shape,
              (Shape{kDynamic, 10}));
    auto out = dense::infer(dense::node(kind, {{"axis", int64_t{1}}}),
                            {info({kDynamic, 4, 5}, DType::kF64)});
    EXPECT_EQ(out[0].shape, (Shape{kDynamic, 4, 5}));
    EXPECT_EQ(out[0].dtype, DType::kF64);
  }
}

TEST(Softmax, BadInputIsAnError) {
  for (OpKind kind : kinds) {
    EXPECT_THROW(dense::infer(dense::node(kind, {{"axis", int64_t{2}}}), {info({3, 4})}), Error);
    EXPECT_THROW(dense::infer(dense::node(kind, {{"axis", int64_t{-3}}}), {info({3, 4})}), Error);
    EXPECT_THROW(dense::infer(dense::node(kind, {{"axis", 1.5}}), {info({3, 4})}), Error);
    EXPECT_THROW(dense::infer(dense::node(kind), {info({3, 4}, DType::kI64)}), Error);
    EXPECT_THROW(dense::infer(dense::node(kind), {info({})}), Error);
  }
}

}  // namespace
}  // namespace minnow::testing
