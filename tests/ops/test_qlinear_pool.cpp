// QLinearGlobalAvgPool: hand-computed values (ties to even, saturation, absent zero points,
// mixed input/output dtypes, rank 3), agreement with dequantize -> f64 mean -> quantize, fast
// kernel byte-identical to the reference, channels-last input equal to NCHW, bad inputs. MaxPool on
// u8/i8 data: equal to f32 MaxPool of the same integers (max commutes with the monotone
// quantization map), for both kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "quant_test_util.h"

namespace minnow::testing {
namespace {

using namespace quant_test;

constexpr KernelChoice kBoth[] = {KernelChoice::kReference, KernelChoice::kFast};
const char* label(KernelChoice c) { return c == KernelChoice::kFast ? "fast" : "reference"; }

Node qpool() { return dense::node(OpKind::kQLinearGlobalAvgPool); }

TEST(QLinearGlobalAvgPool, HandComputedU8) {
  // x: scale 0.5 zp 10; y: scale 0.25 zp 3. Plane sums of x - zp: 6, 1, 3 -> real means
  // 0.75, 0.125, 0.375 -> / 0.25 = 3, 0.5 (tie -> 0), 1.5 (tie -> 2) -> + 3.
  const Tensor x =
      qtensor(DType::kU8, {1, 3, 2, 2}, {10, 11, 12, 13, 10, 10, 10, 11, 10, 11, 11, 11});
  for (KernelChoice c : kBoth) {
    SCOPED_TRACE(label(c));
    const Tensor y =
        run1(qpool(), {x, scale(0.5f), zp(DType::kU8, 10), scale(0.25f), zp(DType::kU8, 3)}, c);
    EXPECT_EQ(y.dtype(), DType::kU8);
    EXPECT_EQ(y.shape(), (Shape{1, 3, 1, 1}));
    EXPECT_EQ(ints_of(y), (std::vector<int64_t>{6, 3, 5}));
  }
}

TEST(QLinearGlobalAvgPool, SaturatesAndMixesDtypes) {
  // Means 127 and -127.67 over 3 elements; / 0.5 = 254 and -255.33 -> -255.
  const Tensor x = qtensor(DType::kI8, {2, 1, 1, 3}, {127, 127, 127, -128, -128, -127});
  for (KernelChoice c : kBoth) {
    SCOPED_TRACE(label(c));
    EXPECT_EQ(ints_of(run1(qpool(), {x, scale(1.0f), Tensor(), scale(0.5f), Tensor()}, c)),
              (std::vector<int64_t>{127, -128}));
    const Tensor y =
        run1(qpool(), {x, scale(1.0f), zp(DType::kI8, 0), scale(0.5f), zp(DType::kU8, 100)}, c);
    EXPECT_EQ(y.dtype(), DType::kU8);
    EXPECT_EQ(ints_of(y), (std::vector<int64_t>{255, 0}));
  }
}

TEST(QLinearGlobalAvgPool, Rank3) {
  // [N=1, C=2, L=4]: sums 10 and -6, x_scale 1, y_scale 1 -> 2.5 -> 2, -1.5 -> -2.
  const Tensor x = qtensor(DType::kI8, {1, 2, 4}, {1, 2, 3, 4, -1, -2, -3, 0});
  const Tensor y = run1(qpool(), {x, scale(1.0f), Tensor(), scale(1.0f), Tensor()});
  EXPECT_EQ(y.shape(), (Shape{1, 2, 1}));
  EXPECT_EQ(ints_of(y), (std::vector<int64_t>{2, -2}));
}

std::vector<Tensor> random_inputs(const Shape& s, DType tx, DType ty, Rng& rng) {
  auto lo = [](DType t) { return t == DType::kU8 ? 0 : -128; };
  auto hi = [](DType t) { return t == DType::kU8 ? 255 : 127; };
  return {random_q(tx, s, rng, lo(tx), hi(tx)), scale(rng.uniform(0.01f, 0.1f)),
          random_q(tx, {}, rng, lo(tx), hi(tx)), scale(rng.uniform(0.005f, 0.05f)),
          random_q(ty, {}, rng, lo(ty), hi(ty))};
}

const std::vector<Shape> kShapes = {
    {1, 1, 1, 1}, {1, 3, 7, 7}, {3, 5, 11}, {2, 64, 33, 33}, {1, 2, 300, 300}};

TEST(QLinearGlobalAvgPool, FastMatchesReferenceExactly) {
  Rng rng(5);
  for (const Shape& s : kShapes) {
    for (DType tx : {DType::kU8, DType::kI8}) {
      for (DType ty : {DType::kU8, DType::kI8}) {
        SCOPED_TRACE(shape_str(s) + " " + std::string(dtype_name(tx)) + "->" +
                     std::string(dtype_name(ty)));
        const auto in = random_inputs(s, tx, ty, rng);
        expect_identical(run1(qpool(), in, KernelChoice::kFast), run1(qpool(), in), "y");
      }
    }
  }
}

// x [N,C,rest...] moved to [N,rest...,C] (any q8 dtype).
Tensor to_channels_last(const Tensor& x) {
  const Shape& s = x.shape();
  const int64_t n = s[0], c = s[1], hw = x.numel() / (n * c);
  Shape t = {n};
  t.insert(t.end(), s.begin() + 2, s.end());
  t.push_back(c);
  Tensor r(x.dtype(), t);
  const auto* src = static_cast<const uint8_t*>(x.raw());
  auto* dst = static_cast<uint8_t*>(r.raw());
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t k = 0; k < c; ++k) {
      for (int64_t i = 0; i < hw; ++i) dst[(b * hw + i) * c + k] = src[(b * c + k) * hw + i];
    }
  }
  return r;
}

// channels_last=1: x [N,H,W,C] -> y [N,1,1,C] with the NCHW op's values, both kernels.
TEST(QLinearGlobalAvgPool, ChannelsLastMatchesNchw) {
  Rng rng(7);
  std::vector<Shape> shapes = kShapes;
  shapes.push_back({2, 130, 3, 5});  // more channels than the fast kernel's block of 64
  for (const Shape& s : shapes) {
    for (DType tx : {DType::kU8, DType::kI8}) {
      const DType ty = tx == DType::kU8 ? DType::kI8 : DType::kU8;
      SCOPED_TRACE(shape_str(s) + " " + std::string(dtype_name(tx)));
      auto in = random_inputs(s, tx, ty, rng);
      const Tensor want = run1(qpool(), in);
      in[0] = to_channels_last(in[0]);
      Node n = qpool();
      n.attrs.set("channels_last", int64_t{1});
      for (KernelChoice c : kBoth) {
        SCOPED_TRACE(label(c));
        const Tensor y = run1(n, in, c);
        Shape expect(s.size(), 1);
        expect[0] = s[0];
        expect.back() = s[1];
        EXPECT_EQ(y.shape(), expect);
        EXPECT_EQ(ints_of(y), ints_of(want));  // [N,C] either way: same bytes
      }
    }
  }
}

TEST(QLinearGlobalAvgPool, MatchesDequantizedMeanWithinRounding) {
  // The real mean of the dequantized plane, quantized: equal unless within 1e-9 of a tie.
  Rng rng(6);
  const Shape s = {2, 8, 5, 5};
  const auto in = random_inputs(s, DType::kU8, DType::kU8, rng);
  const Tensor y = run1(qpool(), in, KernelChoice::kFast);
  const Tensor real = run1(dense::node(OpKind::kDequantizeLinear), {in[0], in[1], in[2]});
  const float ys = in[3].f32()[0];
  const int64_t yzp = ints_of(in[4])[0];
  for (int64_t p = 0; p < 16; ++p) {
    double sum = 0;
    for (int64_t i = 0; i < 25; ++i) sum += real.f32()[p * 25 + i];
    const double v = sum / 25 / ys;
    if (std::abs(v - std::floor(v) - 0.5) < 1e-9) continue;
    const double want = std::min(255.0, std::max(0.0, std::nearbyint(v) + yzp));
    EXPECT_EQ(ints_of(y)[p], static_cast<int64_t>(want)) << "plane " << p;
  }
}

TEST(QLinearGlobalAvgPool, BadInputs) {
  const Tensor x = qtensor(DType::kU8, {1, 2, 1, 1}, {1, 2});
  auto base = [&] {
    return std::vector<Tensor>{x, scale(1), zp(DType::kU8, 0), scale(1), zp(DType::kU8, 0)};
  };
  auto with = [&](size_t i, Tensor t) {
    std::vector<Tensor> in = base();
    in[i] = std::move(t);
    return in;
  };
  expect_node_error(
      [&] {
        run1(qpool(), with(0, qtensor(DType::kU8, {1, 2}, {1, 2})));
      },
      "expected rank >= 3");
  expect_node_error(
      [&] {
        run1(qpool(), with(0, ftensor({1, 2, 1, 1}, {1, 2})));
      },
      "expected u8 or i8");
  expect_node_error([&] { run1(qpool(), with(2, zp(DType::kI8, 0))); }, "has dtype i8, expected");
  expect_node_error([&] { run1(qpool(), with(3, ftensor({2}, {1, 1}))); }, "per tensor");
  Node bad_layout = qpool();
  bad_layout.attrs.set("channels_last", int64_t{2});
  expect_node_error([&] { run1(bad_layout, base()); }, "channels_last");
  for (KernelChoice c : kBoth) {
    expect_node_error(
        [&] { run1(qpool(), with(1, scale(std::numeric_limits<float>::quiet_NaN())), c); },
        "x_scale value");
    expect_node_error([&] { run1(qpool(), with(3, scale(-2.0f)), c); }, "y_scale value");
  }
}

// MaxPool on integers: the same windows and padding as on floats.
TEST(MaxPoolInt8, EqualsFloatMaxPoolOfTheSameValues) {
  Rng rng(9);
  struct Case {
    Shape shape;
    std::vector<int64_t> kernel, strides, pads;
    int64_t ceil_mode;
  };
  const std::vector<Case> cases = {{{1, 3, 7, 7}, {3, 3}, {2, 2}, {1, 1, 1, 1}, 0},
                                   {{2, 2, 6, 5}, {2, 2}, {2, 2}, {0, 0, 0, 0}, 1},
                                   {{1, 1, 4, 4}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 0}};
  for (const Case& k : cases) {
    for (DType dt : {DType::kU8, DType::kI8}) {
      SCOPED_TRACE(shape_str(k.shape) + " " + std::string(dtype_name(dt)));
      const Node n = dense::node(OpKind::kMaxPool, {{"kernel", k.kernel},
                                                    {"strides", k.strides},
                                                    {"pads", k.pads},
                                                    {"ceil_mode", k.ceil_mode}});
      const Tensor q =
          random_q(dt, k.shape, rng, dt == DType::kU8 ? 0 : -128, dt == DType::kU8 ? 255 : 127);
      const std::vector<int64_t> v = ints_of(q);
      const Tensor f = ftensor(k.shape, std::vector<float>(v.begin(), v.end()));
      const Tensor want = run1(n, {f});
      for (KernelChoice c : kBoth) {
        SCOPED_TRACE(label(c));
        const Tensor y = run1(n, {q}, c);
        EXPECT_EQ(y.dtype(), dt);
        ASSERT_EQ(y.shape(), want.shape());
        const std::vector<int64_t> got = ints_of(y);
        for (int64_t i = 0; i < want.numel(); ++i) {
          EXPECT_EQ(static_cast<float>(got[i]), want.f32()[i]) << "element " << i;
        }
      }
    }
  }
  // Integer data pools with MaxPool only: AvgPool still needs floats.
  const Node avg = dense::node(OpKind::kAvgPool, {{"kernel", std::vector<int64_t>{2, 2}}});
  expect_node_error(
      [&] {
        run1(avg, {qtensor(DType::kU8, {1, 1, 2, 2}, {1, 2, 3, 4})});
      },
      "expected f32 or f64");
}

}  // namespace
}  // namespace minnow::testing
