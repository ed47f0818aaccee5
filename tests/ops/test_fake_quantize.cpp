// FakeQuantize: forward equal to a QuantizeLinear -> DequantizeLinear pair with the same
// parameters (per tensor u8, per channel i8 along several axes), hand-computed values (ties to
// even, saturation), the straight-through / LSQ gradients inside the range against the formula,
// central finite differences where the op is differentiable (saturated values: there the
// surrogate gradients are the true ones), f32 against f64, and bad input.
#include <gtest/gtest.h>

#include <cmath>

#include "op_harness.h"
#include "quant_test_util.h"

namespace minnow::testing {
namespace {

using namespace quant_test;

Node fq(int64_t qmin, int64_t qmax, int64_t axis = 1, double grad_scale = 1.0) {
  return dense::node(
      OpKind::kFakeQuantize,
      {{"quant_min", qmin}, {"quant_max", qmax}, {"axis", axis}, {"grad_scale", grad_scale}});
}

// QuantizeLinear -> DequantizeLinear with the same parameters (zero points as integers).
Tensor qdq(const Tensor& x, const Tensor& s, const Tensor& zp_int, int64_t axis) {
  Node q = dense::node(OpKind::kQuantizeLinear, {{"axis", axis}});
  Node dq = dense::node(OpKind::kDequantizeLinear, {{"axis", axis}});
  return run1(dq, {run1(q, {x, s, zp_int}), s, zp_int});
}

Tensor to_float_zp(const Tensor& zp_int) {
  Tensor f(DType::kF32, zp_int.shape());
  const std::vector<int64_t> v = ints_of(zp_int);
  for (int64_t i = 0; i < f.numel(); ++i) f.f32()[i] = static_cast<float>(v[i]);
  return f;
}

TEST(FakeQuantize, HandValuesTiesToEvenAndSaturation) {
  // x / 2 = 0.5 1.5 2.5 -0.5 150 -150 -> rounded 0 2 2 -0 (ties to even), + 128, clamped to
  // [0, 255], - 128, * 2.
  const Tensor x = ftensor({6}, {1, 3, 5, -1, 300, -300});
  const Tensor y = run1(fq(0, 255), {x, scale(2.0f), ftensor({}, {128})});
  EXPECT_EQ(floats_of(y), (std::vector<float>{0, 4, 4, 0, 254, -256}));
}

TEST(FakeQuantize, AbsentZeroPointIsZero) {
  const Tensor x = ftensor({4}, {0.26f, -0.74f, 100.0f, -100.0f});
  const Tensor y = run1(fq(-127, 127), {x, scale(0.5f), Tensor()});
  EXPECT_EQ(floats_of(y), (std::vector<float>{0.5f, -0.5f, 63.5f, -63.5f}));
}

TEST(FakeQuantize, EqualsQuantizeDequantizePair) {
  Rng rng(3);
  {  // Per tensor, u8 with a zero point.
    const Tensor x = random_tensor({2, 3, 5, 4}, rng, -3.0f, 5.0f);
    const Tensor zp_int = zp(DType::kU8, 77);
    const Tensor y = run1(fq(0, 255), {x, scale(0.021f), to_float_zp(zp_int)});
    expect_identical(y, qdq(x, scale(0.021f), zp_int, 1), "per tensor u8");
  }
  // Per channel, i8 (full range [-128, 127] as QuantizeLinear saturates), along axes 0, 1, -1.
  for (int64_t axis : {0, 1, -1}) {
    SCOPED_TRACE("axis " + std::to_string(axis));
    const Shape shape = {3, 4, 5};
    const int64_t c = shape[axis < 0 ? 2 : axis];
    const Tensor x = random_tensor(shape, rng, -2.0f, 2.0f);
    Tensor s = random_tensor({c}, rng, 0.005f, 0.03f);
    std::vector<int64_t> zps(c);
    for (int64_t i = 0; i < c; ++i) zps[i] = static_cast<int64_t>(rng.below(21)) - 10;
    const Tensor zp_int = qtensor(DType::kI8, {c}, zps);
    const Tensor y = run1(fq(-128, 127, axis), {x, s, to_float_zp(zp_int)});
    expect_identical(y, qdq(x, s, zp_int, axis), "per channel i8");
  }
}

TEST(FakeQuantize, SurrogateGradientsFollowTheFormula) {
  // s 0.5, zp 1, range [0, 7]: v = x / s must lie in [-1, 6].
  //   x 0.3  -> v 0.6  inside:  dx = dy, ds = round(v) - v = 0.4
  //   x -1.0 -> v -2   below:   dx = 0,  ds = qmin - zp = -1, dzp = -s
  //   x 4.0  -> v 8    above:   dx = 0,  ds = qmax - zp = 6,  dzp = -s
  //   x 1.25 -> v 2.5  inside:  dx = dy, ds = 2 - 2.5 = -0.5 (ties to even)
  // dy 1 2 3 4: ds = 0.4 - 2 + 18 - 2 = 14.4, times grad_scale 0.5; dzp = -(2 + 3) * 0.5.
  for (DType dt : {DType::kF32, DType::kF64}) {
    SCOPED_TRACE(dtype_name(dt));
    dense::Run r = dense::run(fq(0, 7, 1, 0.5),
                              {dense::tensor({4}, {0.3, -1.0, 4.0, 1.25}, dt),
                               dense::tensor({}, {0.5}, dt), dense::tensor({}, {1.0}, dt)},
                              dense::opts().grads({dense::tensor({4}, {1, 2, 3, 4}, dt)}));
    dense::expect_values(r.outputs[0], {0.5, -0.5, 3.0, 1.0}, 1e-12, "y");
    dense::expect_values(r.grads[0], {1, 0, 0, 4}, 0, "dx");
    dense::expect_values(r.grads[1], {7.2}, 1e-6, "dscale");
    dense::expect_values(r.grads[2], {-2.5}, 1e-12, "dzero_point");
  }
}

TEST(FakeQuantize, PerChannelGradientsSumPerChannel) {
  // Two channels along axis 0 with scales 1 and 0.25, range [-2, 2], no zero point:
  // channel 0: x 0.4 (v 0.4 -> ds -0.4), 5 (v 5 -> ds 2); channel 1: x 0.1 (v 0.4), -1 (v -4 ->
  // -2).
  dense::Run r =
      dense::run(fq(-2, 2, 0), {ftensor({2, 2}, {0.4f, 5, 0.1f, -1}), ftensor({2}, {1, 0.25f})},
                 dense::opts().grads({ftensor({2, 2}, {1, 1, 1, 2})}));
  dense::expect_values(r.outputs[0], {0, 2, 0, -0.5}, 1e-7, "y");
  dense::expect_values(r.grads[0], {1, 0, 1, 0}, 0, "dx");
  dense::expect_values(r.grads[1], {-0.4 + 2, -0.4 - 4}, 1e-6, "dscale");
}

// Inputs whose values all saturate (|x / s| beyond the range by far more than the finite
// difference step moves them), where the op is (q - zp) * s with q a range end: differentiable
// in x (0), scale and zero point.
OpCase saturated_case(const std::string& label, Shape shape, int64_t axis, int64_t channels,
                      Rng& rng) {
  OpCase c;
  c.label = label;
  c.node = fq(-10, 10, axis);  // grad_scale 1: the true derivative
  Tensor x = random_tensor(shape, rng, 1.0f, 2.0f);
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (rng.uniform() < 0.5f) x.f32()[i] = -x.f32()[i];
  }
  const Shape ps = channels == 1 ? Shape{} : Shape{channels};
  c.inputs = {x, random_tensor(ps, rng, 0.01f, 0.05f), random_tensor(ps, rng, -3.0f, 3.0f)};
  return c;
}

TEST(FakeQuantize, GradientMatchesFiniteDifferenceWhereSaturated) {
  Rng rng(11);
  expect_gradient_matches_finite_difference(saturated_case("per tensor", {3, 4, 5}, 1, 1, rng));
  expect_gradient_matches_finite_difference(saturated_case("axis 1", {2, 3, 5}, 1, 3, rng));
  expect_gradient_matches_finite_difference(saturated_case("axis -1", {4, 7}, -1, 7, rng));
  expect_gradient_matches_finite_difference(
      saturated_case("batch 1 nchw", {1, 2, 3, 3}, 1, 2, rng));
}

TEST(FakeQuantize, F32MatchesF64) {
  Rng rng(5);
  const Tensor x = random_tensor({3, 6, 5}, rng, -1.0f, 1.0f);
  const Tensor s = random_tensor({6}, rng, 0.01f, 0.02f);
  const Tensor z = random_tensor({6}, rng, 100.0f, 150.0f);
  Tensor zr(DType::kF32, {6});
  for (int64_t i = 0; i < 6; ++i) zr.f32()[i] = std::round(z.f32()[i]);
  const Tensor dy = random_tensor({3, 6, 5}, rng);
  dense::Run a = dense::run(fq(0, 255), {x, s, zr}, dense::opts().grads({dy}));
  dense::Run b = dense::run(
      fq(0, 255), {to_dtype(x, DType::kF64), to_dtype(s, DType::kF64), to_dtype(zr, DType::kF64)},
      dense::opts().grads({to_dtype(dy, DType::kF64)}));
  dense::expect_values(a.outputs[0], dense::values_of(b.outputs[0]), 1e-6, "y");
  dense::expect_values(a.grads[0], dense::values_of(b.grads[0]), 0, "dx");
  dense::expect_values(a.grads[1], dense::values_of(b.grads[1]), 1e-4, "dscale");
}

TEST(FakeQuantize, BadInputThrows) {
  const Tensor x = ftensor({2, 3}, {0, 1, 2, 3, 4, 5});
  const Tensor z0 = ftensor({}, {0});
  expect_node_error([&] { run1(fq(5, 5), {x, scale(1), z0}); }, "quant_min");
  expect_node_error([&] { run1(fq(0, 255, 1, 0.0), {x, scale(1), z0}); }, "grad_scale");
  expect_node_error(
      [&] {
        run1(fq(0, 255), {x, ftensor({2}, {1, 1}), ftensor({2}, {0, 0})});
      },
      "along axis 1");
  expect_node_error([&] { run1(fq(0, 255), {x, ftensor({3}, {1, 1, 1}), z0}); }, "zero_point");
  expect_node_error([&] { run1(fq(0, 255), {x, ftensor({1, 1}, {1}), Tensor()}); }, "scalar");
  expect_node_error(
      [&] {
        run1(fq(0, 255), {x, dense::tensor({}, {1.0}, DType::kF64), Tensor()});
      },
      "dtype");
  expect_node_error([&] { run1(fq(0, 255), {x, scale(0), z0}); }, "finite positive");
  expect_node_error([&] { run1(fq(0, 255), {x, scale(NAN), z0}); }, "finite positive");
  expect_node_error([&] { run1(fq(0, 255), {x, scale(1), ftensor({}, {300})}); }, "outside");
  expect_node_error(
      [&] {
        run1(fq(0, 255), {qtensor(DType::kI8, {2}, {1, 2}), scale(1), Tensor()});
      },
      "expected f32 or f64");
}

}  // namespace
}  // namespace minnow::testing
