// Elementwise math ops (math_unary.cpp): values against the std:: formula written from the ONNX
// operator docs, finite-difference gradients in f64 on each op's domain away from kinks, hand
// values at the edge cases (round half to even, sign, clip), bad attributes.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "elementwise_test_util.h"
#include "op_harness.h"

namespace minnow::testing {
namespace {

struct MathCase {
  Node node;
  std::function<double(double)> f;
  double lo, hi;              // sampling domain
  std::vector<double> kinks;  // inputs are moved at least 0.05 away from these
};

std::vector<MathCase> math_cases() {
  const double pi = 3.14159265358979323846;
  const double selu_a = 1.67326319217681884765625, selu_g = 1.05070102214813232421875;
  return {
      {make_node(OpKind::kExp), [](double x) { return std::exp(x); }, -2, 2, {}},
      {make_node(OpKind::kLog), [](double x) { return std::log(x); }, 0.2, 3, {}},
      {make_node(OpKind::kSqrt), [](double x) { return std::sqrt(x); }, 0.2, 3, {}},
      {make_node(OpKind::kNeg), [](double x) { return -x; }, -2, 2, {}},
      {make_node(OpKind::kAbs), [](double x) { return std::fabs(x); }, -2, 2, {0}},
      {make_node(OpKind::kReciprocal), [](double x) { return 1 / x; }, 0.3, 3, {}},
      {make_node(OpKind::kErf), [](double x) { return std::erf(x); }, -2, 2, {}},
      {make_node(OpKind::kFloor),
       [](double x) { return std::floor(x); },
       -2.9,
       2.9,
       {-2, -1, 0, 1, 2}},
      {make_node(OpKind::kCeil),
       [](double x) { return std::ceil(x); },
       -2.9,
       2.9,
       {-2, -1, 0, 1, 2}},
      {make_node(OpKind::kRound),
       [](double x) { return std::round(x); },
       -2.9,
       2.9,
       {-2.5, -1.5, -0.5, 0.5, 1.5, 2.5}},
      {make_node(OpKind::kSign),
       [](double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); },
       -2,
       2,
       {0}},
      {make_node(OpKind::kSin), [](double x) { return std::sin(x); }, -3, 3, {}},
      {make_node(OpKind::kCos), [](double x) { return std::cos(x); }, -3, 3, {}},
      {make_node(OpKind::kTan), [](double x) { return std::tan(x); }, -1.2, 1.2, {}},
      {make_node(OpKind::kAsin), [](double x) { return std::asin(x); }, -0.9, 0.9, {}},
      {make_node(OpKind::kAcos), [](double x) { return std::acos(x); }, -0.9, 0.9, {}},
      {make_node(OpKind::kAtan), [](double x) { return std::atan(x); }, -3, 3, {}},
      {make_node(OpKind::kSinh),
       [](double x) { return (std::exp(x) - std::exp(-x)) / 2; },
       -2,
       2,
       {}},
      {make_node(OpKind::kCosh),
       [](double x) { return (std::exp(x) + std::exp(-x)) / 2; },
       -2,
       2,
       {}},
      {make_node(OpKind::kAsinh),
       [](double x) { return std::log(x + std::sqrt(x * x + 1)); },
       -3,
       3,
       {}},
      {make_node(OpKind::kAcosh),
       [](double x) { return std::log(x + std::sqrt(x * x - 1)); },
       1.1,
       4,
       {}},
      {make_node(OpKind::kAtanh),
       [](double x) { return 0.5 * std::log((1 + x) / (1 - x)); },
       -0.9,
       0.9,
       {}},
      {make_node(OpKind::kSoftplus), [](double x) { return std::log(std::exp(x) + 1); }, -5, 5, {}},
      {make_node(OpKind::kSoftsign), [](double x) { return x / (1 + std::fabs(x)); }, -3, 3, {0}},
      {make_node(OpKind::kElu), [](double x) { return x < 0 ? std::exp(x) - 1 : x; }, -3, 3, {0}},
      {make_node(OpKind::kElu, {{"alpha", 0.5}}),
       [](double x) { return x < 0 ? 0.5 * (std::exp(x) - 1) : x; },
       -3,
       3,
       {0}},
      {make_node(OpKind::kSelu),
       [=](double x) { return x > 0 ? selu_g * x : selu_g * (selu_a * std::exp(x) - selu_a); },
       -3,
       3,
       {0}},
      {make_node(OpKind::kSelu, {{"alpha", 2.0}, {"gamma", 3.0}}),
       [](double x) { return x > 0 ? 3 * x : 3 * (2 * std::exp(x) - 2); },
       -3,
       3,
       {0}},
      {make_node(OpKind::kCelu),
       [](double x) { return std::max(0.0, x) + std::min(0.0, std::exp(x) - 1); },
       -3,
       3,
       {0}},
      {make_node(OpKind::kCelu, {{"alpha", 2.0}}),
       [](double x) { return std::max(0.0, x) + std::min(0.0, 2 * (std::exp(x / 2) - 1)); },
       -3,
       3,
       {0}},
      {make_node(OpKind::kThresholdedRelu), [](double x) { return x > 1 ? x : 0.0; }, -3, 3, {1}},
      {make_node(OpKind::kThresholdedRelu, {{"alpha", -0.5}}),
       [](double x) { return x > -0.5 ? x : 0.0; },
       -3,
       3,
       {-0.5}},
      {make_node(OpKind::kClip), [](double x) { return x; }, -3, 3, {}},
      {make_node(OpKind::kClip, {{"min", -1.0}, {"max", 0.5}}),
       [](double x) { return std::min(std::max(x, -1.0), 0.5); },
       -3,
       3,
       {-1, 0.5}},
      {make_node(OpKind::kClip, {{"min", 0.0}}),
       [](double x) { return std::max(x, 0.0); },
       -3,
       3,
       {0}},
      {make_node(OpKind::kSin), [=](double x) { return std::sin(x); }, -2 * pi, 2 * pi, {}},
  };
}

std::string label_of(const MathCase& mc) {
  std::string s = op_def(mc.node.op).name;
  for (const auto& [k, v] : mc.node.attrs.all()) {
    if (const double* d = std::get_if<double>(&v)) s += " " + k + "=" + std::to_string(*d);
  }
  return s;
}

const std::vector<Shape> kShapes = {{1}, {7}, {3, 5}, {1, 3, 4, 5}, {}};

Tensor sample(const MathCase& mc, const Shape& shape, Rng& rng) {
  Tensor t = random_tensor(shape, rng, static_cast<float>(mc.lo), static_cast<float>(mc.hi));
  const float margin = 0.05f;
  for (int64_t i = 0; i < t.numel(); ++i) {
    float& v = t.f32()[i];
    for (double k : mc.kinks) {
      if (std::abs(v - k) < margin) v = static_cast<float>(k) + (v < k ? -margin : margin);
    }
  }
  return t;
}

TEST(MathUnary, ValuesMatchFormula) {
  Rng rng(31);
  for (const MathCase& mc : math_cases()) {
    for (const Shape& s : kShapes) {
      Tensor x = sample(mc, s, rng);
      std::vector<double> want;
      for (double v : values_of(x)) want.push_back(mc.f(v));
      const std::string label = label_of(mc) + " " + shape_str(s);
      KernelRun r64 = run_kernel(mc.node, {to_dtype(x, DType::kF64)});
      ASSERT_EQ(r64.outputs[0].dtype(), DType::kF64);
      ASSERT_EQ(r64.outputs[0].shape(), s);
      expect_values(r64.outputs[0], want, 1e-12, label + " f64");
      KernelRun r32 = run_kernel(mc.node, {x});
      std::vector<double> got = values_of(r32.outputs[0]);
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_NEAR(got[i], want[i], 2e-6 * (1 + std::abs(want[i]))) << label << " f32 " << i;
      }
    }
  }
}

TEST(MathUnary, GradientMatchesFiniteDifference) {
  Rng rng(32);
  for (const MathCase& mc : math_cases()) {
    for (const Shape& s : kShapes) {
      OpCase c;
      c.label = label_of(mc) + " " + shape_str(s);
      c.node = mc.node;
      c.inputs = {sample(mc, s, rng)};
      expect_gradient_matches_finite_difference(c, 30);
    }
  }
}

TEST(MathUnary, LargeTensorMatchesFormula) {
  Rng rng(33);
  // Large enough for the parallel blocks of the shared unary kernel.
  Tensor x = random_tensor({3, 7, 111, 41}, rng, 0.2f, 3.0f);
  KernelRun r = run_kernel(make_node(OpKind::kLog), {x}, {x});
  const std::vector<double> xv = values_of(x), y = values_of(r.outputs[0]),
                            g = values_of(r.grads[0]);
  for (size_t i = 0; i < xv.size(); i += 97) {
    EXPECT_NEAR(y[i], std::log(xv[i]), 1e-6) << i;
    EXPECT_NEAR(g[i], 1.0, 1e-6) << i;  // dy = x, d log = dy / x
  }
}

TEST(MathUnary, HandComputedValues) {
  // Round: halves to even.
  Tensor r = make_tensor({8}, {-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.4, -2.6});
  expect_values(run_kernel(make_node(OpKind::kRound), {r}).outputs[0], {-2, -2, -0, 0, 2, 2, 2, -3},
                0, "round");
  Tensor ones = make_tensor({8}, {1, 1, 1, 1, 1, 1, 1, 1});
  expect_values(run_kernel(make_node(OpKind::kRound), {r}, {ones}).grads[0],
                {0, 0, 0, 0, 0, 0, 0, 0}, 0, "round grad");
  // Sign, Abs at 0: value 0, Abs gradient 0.
  Tensor s = make_tensor({3}, {-3, 0, 2});
  Tensor ones3 = make_tensor({3}, {1, 1, 1});
  expect_values(run_kernel(make_node(OpKind::kSign), {s}).outputs[0], {-1, 0, 1}, 0, "sign");
  expect_values(run_kernel(make_node(OpKind::kAbs), {s}, {ones3}).grads[0], {-1, 0, 1}, 0,
                "abs grad");
  // Clip: gradient only strictly inside; with min > max everything becomes max (numpy clip).
  Tensor c = make_tensor({5}, {-2, -1, 0, 1, 2});
  Tensor ones5 = make_tensor({5}, {1, 1, 1, 1, 1});
  KernelRun clip =
      run_kernel(make_node(OpKind::kClip, {{"min", -1.0}, {"max", 1.0}}), {c}, {ones5});
  expect_values(clip.outputs[0], {-1, -1, 0, 1, 1}, 0, "clip");
  expect_values(clip.grads[0], {0, 0, 1, 0, 0}, 0, "clip grad");
  expect_values(run_kernel(make_node(OpKind::kClip, {{"min", 2.0}, {"max", 1.0}}), {c}).outputs[0],
                {1, 1, 1, 1, 1}, 0, "clip min > max");
  // Integer-valued attributes are accepted where doubles are expected.
  expect_values(
      run_kernel(make_node(OpKind::kClip, {{"min", int64_t{0}}, {"max", int64_t{1}}}), {c})
          .outputs[0],
      {0, 0, 0, 1, 1}, 0, "clip int attrs");
  // ThresholdedRelu: x == alpha is not above the threshold.
  expect_values(run_kernel(make_node(OpKind::kThresholdedRelu), {c}).outputs[0], {0, 0, 0, 0, 2}, 0,
                "thresholded relu");
  // Softplus does not overflow.
  Tensor big = make_tensor({2}, {100, -100});
  expect_values(run_kernel(make_node(OpKind::kSoftplus), {big}).outputs[0], {100, 0}, 1e-5,
                "softplus large");
  // An absent output gradient is a zero input gradient.
  KernelRun none = run_kernel(make_node(OpKind::kExp), {s}, {Tensor()});
  expect_values(none.grads[0], {0, 0, 0}, 0, "absent output gradient");
  // NaN propagates through Sign and Clip.
  Tensor nan = make_tensor({1}, {std::numeric_limits<double>::quiet_NaN()});
  EXPECT_TRUE(std::isnan(values_of(run_kernel(make_node(OpKind::kSign), {nan}).outputs[0])[0]));
  EXPECT_TRUE(std::isnan(values_of(
      run_kernel(make_node(OpKind::kClip, {{"min", 0.0}, {"max", 1.0}}), {nan}).outputs[0])[0]));
}

TEST(MathUnary, InferKeepsShapeAndSymbolicBatch) {
  EXPECT_EQ(infer_shape(make_node(OpKind::kExp), {{kDynamic, 3, 5}}), (Shape{kDynamic, 3, 5}));
  EXPECT_EQ(infer_outputs(make_node(OpKind::kAtanh), {{2}}, 1, DType::kF64)[0].dtype, DType::kF64);
}

TEST(MathUnary, BadInputIsAnError) {
  EXPECT_THROW(infer_outputs(make_node(OpKind::kExp), {{2}}, 1, DType::kI64), Error);
  EXPECT_THROW(infer_shape(make_node(OpKind::kCelu, {{"alpha", 0.0}}), {{2}}), Error);
  EXPECT_THROW(infer_shape(make_node(OpKind::kElu, {{"alpha", INFINITY}}), {{2}}), Error);
  EXPECT_THROW(infer_shape(make_node(OpKind::kSelu, {{"gamma", NAN}}), {{2}}), Error);
  EXPECT_THROW(infer_shape(make_node(OpKind::kClip, {{"min", NAN}}), {{2}}), Error);
  EXPECT_THROW(infer_shape(make_node(OpKind::kClip, {{"max", std::string("1")}}), {{2}}), Error);
  try {
    infer_shape(make_node(OpKind::kThresholdedRelu, {{"alpha", -INFINITY}}), {{2}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("alpha"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ThresholdedRelu"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace minnow::testing
