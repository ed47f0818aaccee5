// QuantizeLinear / DequantizeLinear: hand-computed values (ties to even, saturation, NaN and
// infinities, per-axis along axis 0, 1 and -1, i32 dequantization), fast kernel byte-identical to
// the reference over a table of shapes (including the parallel paths), the Q(DQ(q)) == q round
// trip, and bad inputs throwing minnow::Error naming the node.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "quant_test_util.h"

namespace minnow::testing {
namespace {

using namespace quant_test;

constexpr KernelChoice kBoth[] = {KernelChoice::kReference, KernelChoice::kFast};
const char* label(KernelChoice c) { return c == KernelChoice::kFast ? "fast" : "reference"; }

Node quantize(int64_t axis = 1) { return dense::node(OpKind::kQuantizeLinear, {{"axis", axis}}); }
Node dequantize(int64_t axis = 1) {
  return dense::node(OpKind::kDequantizeLinear, {{"axis", axis}});
}

TEST(QuantizeLinear, PerTensorTiesToEvenAndSaturatesU8) {
  // x / 2: 0.5 1.5 2.5 3.5 -0.5 -1.5 -2.5 150 -150 0, rounded half to even, + 128, clamped.
  const Tensor x = ftensor({10}, {1, 3, 5, 7, -1, -3, -5, 300, -300, 0});
  for (KernelChoice c : kBoth) {
    SCOPED_TRACE(label(c));
    const Tensor y = run1(quantize(), {x, scale(2.0f), zp(DType::kU8, 128)}, c);
    EXPECT_EQ(y.dtype(), DType::kU8);
    EXPECT_EQ(ints_of(y), (std::vector<int64_t>{128, 130, 130, 132, 128, 126, 126, 255, 0, 128}));
  }
}

TEST(QuantizeLinear, AbsentZeroPointMeansU8Zero) {
  // x / 0.5: 0.5 1.5 -2 254.5 255.5 2000.
  const Tensor x = ftensor({6}, {0.25f, 0.75f, -1.0f, 127.25f, 127.75f, 1000.0f});
  for (KernelChoice c : kBoth) {
    SCOPED_TRACE(label(c));
    const Tensor y = run1(quantize(), {x, scale(0.5f), Tensor()}, c);
    EXPECT_EQ(y.dtype(), DType::kU8);
    EXPECT_EQ(ints_of(y), (std::vector<int64_t>{0, 2, 0, 254, 255, 255}));
  }
}

TEST(QuantizeLinear, SignedZeroPointTiesAndSaturation) {
  // Rounded: 126 128 -128 -126 0 2; minus 1; clamped to [-128, 127].
  const Tensor x = ftensor({6}, {126.5f, 127.5f, -127.5f, -126.5f, 0.5f, 1.5f});
  for (KernelChoice c : kBoth) {
    SCOPED_TRACE(label(c));
    const Tensor y = run1(quantize(), {x, ftensor({1}, {1.0f}), qtensor(DType::kI8, {1}, {-1})}, c);
    EXPECT_EQ(y.dtype(), DType::kI8);
    EXPECT_EQ(ints_of(y), (std::vector<int64_t>{125, 127, -128, -127, -1, 1}));
  }
}

TEST(QuantizeLinear, NanIsZeroPointAndInfinitiesSaturate) {
  const float inf = std::numeric_limits<float>::infinity();
  const Tensor x = ftensor({3}, {std::numeric_limits<float>::quiet_NaN(), inf, -inf});
  for (KernelChoice c : kBoth) {
    SCOPED_TRACE(label(c));
    EXPECT_EQ(ints_of(run1(quantize(), {x, scale(1.0f), zp(DType::kU8, 10)}, c)),
              (std::vector<int64_t>{10, 255, 0}));
    EXPECT_EQ(ints_of(run1(quantize(), {x, scale(1.0f), zp(DType::kI8, -3)}, c)),
              (std::vector<int64_t>{-3, 127, -128}));
  }
}

TEST(QuantizeLinear, PerAxisAlongAxis1) {
  // Channel scales 1, 2, 4 and zero points 0, 1, -1 (see the comments per value).
  const Tensor x = ftensor({2, 3, 2}, {0.5f, 1.5f,  // c0: 0, 2
                                       3, 5,        // c1: 1.5 -> 2, 2.5 -> 2; +1
                                       10, -6,      // c2: 2.5 -> 2, -1.5 -> -2; -1
                                       -2.5f, 200,  // c0: -2, saturates
                                       -300, 0.9f,  // c1: -149 saturates, 0.45 -> 0; +1
                                       2, 6});      // c2: 0.5 -> 0, 1.5 -> 2; -1
  const Tensor s = ftensor({3}, {1, 2, 4});
  const Tensor z = qtensor(DType::kI8, {3}, {0, 1, -1});
  for (KernelChoice c : kBoth) {
    SCOPED_TRACE(label(c));
    EXPECT_EQ(ints_of(run1(quantize(1), {x, s, z}, c)),
              (std::vector<int64_t>{0, 2, 3, 3, 1, -3, -2, 127, -128, 1, -1, 1}));
  }
}

TEST(QuantizeLinear, PerAxisAlongAxis0AndNegativeAxis) {
  // Rows: scale 0.5 zp 0 (0.5 -> 0, -2 -> 0); scale 1 zp 100 (2.5 -> 2, 155.5 -> 156 saturates);
  // scale 3 zp 255 (-1.5 -> -2, 2.5 -> 2 saturates).
  const Tensor x = ftensor({3, 2}, {0.25f, -1, 2.5f, 155.5f, -4.5f, 7.5f});
  const Tensor s = ftensor({3}, {0.5f, 1, 3});
  const Tensor z = qtensor(DType::kU8, {3}, {0, 100, 255});
  // axis -1 of [2,3] is the last: x / [1,2,4] = 1 1 0.75 | 4 2.5 1.5.
  const Tensor x2 = ftensor({2, 3}, {1, 2, 3, 4, 5, 6});
  for (KernelChoice c : kBoth) {
    SCOPED_TRACE(label(c));
    EXPECT_EQ(ints_of(run1(quantize(0), {x, s, z}, c)),
              (std::vector<int64_t>{0, 0, 102, 255, 253, 255}));
    EXPECT_EQ(ints_of(run1(quantize(-1), {x2, ftensor({3}, {1, 2, 4}), Tensor()}, c)),
              (std::vector<int64_t>{1, 1, 1, 4, 2, 2}));
  }
}

TEST(DequantizeLinear, PerTensorAndPerAxis) {
  for (KernelChoice c : kBoth) {
    SCOPED_TRACE(label(c));
    const Tensor y =
        run1(dequantize(),
             {qtensor(DType::kU8, {4}, {0, 128, 255, 129}), scale(0.5f), zp(DType::kU8, 128)}, c);
    EXPECT_EQ(y.dtype(), DType::kF32);
    EXPECT_EQ(floats_of(y), (std::vector<float>{-64, 0, 63.5f, 0.5f}));
    // axis 1 of [1,2,2]: channel scales 0.25, 2 and zero points -128, 3.
    EXPECT_EQ(floats_of(run1(dequantize(1),
                             {qtensor(DType::kI8, {1, 2, 2}, {-128, 127, 5, -5}),
                              ftensor({2}, {0.25f, 2}), qtensor(DType::kI8, {2}, {-128, 3})},
                             c)),
              (std::vector<float>{0, 63.75f, 4, -16}));
    // axis 0 of [2,3]: row scales 1, 0.5 and zero points 0, -2.
    EXPECT_EQ(floats_of(run1(dequantize(0),
                             {qtensor(DType::kI8, {2, 3}, {1, 2, -3, 0, -2, 126}),
                              ftensor({2}, {1, 0.5f}), qtensor(DType::kI8, {2}, {0, -2})},
                             c)),
              (std::vector<float>{1, 2, -3, 1, 0, 64}));
  }
}

TEST(DequantizeLinear, Int32) {
  // f32(2^31 - 1) rounds to 2^31; products by 2 are exact.
  const Tensor x = qtensor(DType::kI32, {4}, {2147483647, -2147483648LL, 1000000, -7});
  for (KernelChoice c : kBoth) {
    SCOPED_TRACE(label(c));
    EXPECT_EQ(floats_of(run1(dequantize(), {x, scale(2.0f), Tensor()}, c)),
              (std::vector<float>{4294967296.0f, -4294967296.0f, 2e6f, -14}));
    EXPECT_EQ(floats_of(run1(dequantize(),
                             {qtensor(DType::kI32, {2}, {20, -2147483648LL}), scale(2.0f),
                              qtensor(DType::kI32, {}, {10})},
                             c)),
              (std::vector<float>{20, -4294967296.0f}));  // f32(-2^31 - 10) is -2^31
  }
}

struct AxisCase {
  Shape shape;
  int64_t axis;  // -100: per tensor
};

// Per tensor (small, and large enough for the parallel path), per channel along axis 0, 1 and
// the last axis, one channel run longer than a block, many short runs in parallel.
const std::vector<AxisCase> kAxisCases = {
    {{1, 3, 7, 5}, -100}, {{70001}, -100},    {{2, 5, 3, 3}, 1},    {{7, 11}, 0},
    {{9, 13}, 1},         {{2, 3, 16500}, 1}, {{1, 64, 33, 33}, 1}, {{3, 1, 2}, -1},
};

TEST(QuantizeLinear, FastMatchesReferenceExactly) {
  Rng rng(7);
  for (const AxisCase& k : kAxisCases) {
    for (DType dt : {DType::kU8, DType::kI8}) {
      SCOPED_TRACE(shape_str(k.shape) + " axis " + std::to_string(k.axis) + " " +
                   std::string(dtype_name(dt)));
      const bool per_tensor = k.axis == -100;
      const int64_t channels =
          per_tensor ? 1
                     : k.shape[k.axis < 0 ? k.axis + static_cast<int64_t>(k.shape.size()) : k.axis];
      Tensor s(DType::kF32, per_tensor ? Shape{} : Shape{channels});
      for (int64_t c = 0; c < s.numel(); ++c) {
        // A power of two makes the half-integers below exact ties.
        s.f32()[c] = c % 2 ? rng.uniform(0.01f, 1.0f) : 0.25f;
      }
      Tensor z =
          random_q(dt, s.shape(), rng, dt == DType::kU8 ? 0 : -128, dt == DType::kU8 ? 255 : 127);
      Tensor x(DType::kF32, k.shape);
      for (int64_t i = 0; i < x.numel(); ++i) {
        const float half = std::floor(rng.uniform(-300.0f, 300.0f)) + 0.5f;
        x.f32()[i] = i % 3 == 0 ? half * 0.25f : rng.uniform(-80.0f, 80.0f);
      }
      x.f32()[0] = std::numeric_limits<float>::quiet_NaN();
      const Node n = quantize(per_tensor ? 1 : k.axis);
      expect_identical(run1(n, {x, s, z}, KernelChoice::kFast), run1(n, {x, s, z}), "y");
    }
  }
}

TEST(DequantizeLinear, FastMatchesReferenceExactly) {
  Rng rng(8);
  for (const AxisCase& k : kAxisCases) {
    for (DType dt : {DType::kU8, DType::kI8, DType::kI32}) {
      SCOPED_TRACE(shape_str(k.shape) + " axis " + std::to_string(k.axis) + " " +
                   std::string(dtype_name(dt)));
      const bool per_tensor = k.axis == -100;
      const int64_t channels =
          per_tensor ? 1
                     : k.shape[k.axis < 0 ? k.axis + static_cast<int64_t>(k.shape.size()) : k.axis];
      Tensor s(DType::kF32, per_tensor ? Shape{} : Shape{channels});
      for (int64_t c = 0; c < s.numel(); ++c) s.f32()[c] = rng.uniform(0.001f, 2.0f);
      const int lo = dt == DType::kU8 ? 0 : dt == DType::kI8 ? -128 : -100000;
      const int hi = dt == DType::kU8 ? 255 : dt == DType::kI8 ? 127 : 100000;
      const Tensor z = random_q(dt, s.shape(), rng, lo, hi);
      const Tensor x = random_q(dt, k.shape, rng, lo, hi);
      const Node n = dequantize(per_tensor ? 1 : k.axis);
      expect_identical(run1(n, {x, s, z}, KernelChoice::kFast), run1(n, {x, s, z}), "y");
    }
  }
}

TEST(QuantizeLinear, RoundTripsEveryQuantizedValue) {
  for (DType dt : {DType::kU8, DType::kI8}) {
    std::vector<int64_t> all;
    for (int v = dt == DType::kU8 ? 0 : -128; v <= (dt == DType::kU8 ? 255 : 127); ++v) {
      all.push_back(v);
    }
    const Tensor q = qtensor(dt, {static_cast<int64_t>(all.size())}, all);
    for (float s : {0.1f, 0.0037f, 3.0f}) {
      const Tensor z = zp(dt, dt == DType::kU8 ? 77 : -9);
      const Tensor real = run1(dequantize(), {q, scale(s), z}, KernelChoice::kFast);
      EXPECT_EQ(ints_of(run1(quantize(), {real, scale(s), z}, KernelChoice::kFast)), all)
          << dtype_name(dt) << " scale " << s;
    }
  }
}

TEST(QuantizeLinear, BadScaleValuesThrowAtRunTime) {
  const Tensor x = ftensor({2, 2}, {1, 2, 3, 4});
  for (KernelChoice c : kBoth) {
    SCOPED_TRACE(label(c));
    for (float bad : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(),
                      std::numeric_limits<float>::infinity()}) {
      expect_node_error(
          [&] {
            run1(quantize(), {x, scale(bad), Tensor()}, c);
          },
          "not a finite positive number");
      expect_node_error(
          [&] {
            run1(dequantize(),
                 {qtensor(DType::kU8, {2, 2}, {1, 2, 3, 4}), ftensor({2}, {1, bad}), Tensor()}, c);
          },
          "index 1 is not a finite positive number");
    }
  }
}

TEST(QuantizeLinear, BadInputsThrowAtInfer) {
  const Tensor x = ftensor({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor q = qtensor(DType::kU8, {2, 3}, {1, 2, 3, 4, 5, 6});
  // Zero point dtype: i32 cannot be a QuantizeLinear output; DequantizeLinear needs x's dtype.
  expect_node_error(
      [&] {
        run1(quantize(), {x, scale(1), zp(DType::kI32, 0)});
      },
      "expected u8 or i8");
  expect_node_error(
      [&] {
        run1(dequantize(), {q, scale(1), zp(DType::kI8, 0)});
      },
      "has dtype i8, expected input");
  // Per-axis length must match the axis dim.
  expect_node_error(
      [&] {
        run1(quantize(1), {x, ftensor({2}, {1, 1}), Tensor()});
      },
      "has 2 values but input");
  expect_node_error(
      [&] {
        run1(dequantize(0), {q, ftensor({3}, {1, 1, 1}), Tensor()});
      },
      "has 3 values but input");
  // Zero point shape must be the scale's.
  expect_node_error(
      [&] {
        run1(quantize(1), {x, ftensor({3}, {1, 1, 1}), qtensor(DType::kU8, {2}, {0, 0})});
      },
      "expected y_scale's shape");
  expect_node_error(
      [&] {
        run1(quantize(), {x, ftensor({1, 1}, {1}), Tensor()});
      },
      "expected a scalar");
  expect_node_error(
      [&] {
        run1(quantize(5), {x, ftensor({3}, {1, 1, 1}), Tensor()});
      },
      "out of range");
  // Data dtypes.
  expect_node_error([&] { run1(quantize(), {q, scale(1), Tensor()}); }, "expected f32");
  expect_node_error([&] { run1(dequantize(), {x, scale(1), Tensor()}); }, "expected u8, i8 or i32");
  Tensor s64(DType::kF64, {});
  expect_node_error([&] { run1(quantize(), {x, s64, Tensor()}); }, "expected f32");
}

TEST(QuantizeLinear, HasNoGradient) {
  EXPECT_FALSE(op_def(OpKind::kQuantizeLinear).has_gradient);
  EXPECT_FALSE(op_def(OpKind::kDequantizeLinear).has_gradient);
  EXPECT_EQ(op_kind_from_name("QuantizeLinear"), OpKind::kQuantizeLinear);
  EXPECT_EQ(op_kind_from_name("DequantizeLinear"), OpKind::kDequantizeLinear);
}

}  // namespace
}  // namespace minnow::testing
