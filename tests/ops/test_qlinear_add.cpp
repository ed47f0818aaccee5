// QLinearAdd: hand-computed values (ties to even, saturation, relu/relu6 applied to the real
// sum), bit-equality with the QDQ graph it replaces (DequantizeLinear, f32 add, QuantizeLinear),
// fast kernel byte-identical to the reference over shapes, dtype mixes and activations, and bad
// inputs throwing minnow::Error naming the node.
#include <gtest/gtest.h>

#include <limits>

#include "quant_test_util.h"

namespace minnow::testing {
namespace {

using namespace quant_test;

constexpr KernelChoice kBoth[] = {KernelChoice::kReference, KernelChoice::kFast};
const char* label(KernelChoice c) { return c == KernelChoice::kFast ? "fast" : "reference"; }

Node qadd(const std::string& act = "") {
  Node n = dense::node(OpKind::kQLinearAdd);
  if (!act.empty()) n.attrs.set("activation", act);
  return n;
}

// a: scale 0.5 zp 10, b: scale 0.25 zp 20, y: scale 1 zp 5.
// Real sums 0, 0.5, 1, 1.5, 152.5, -10 round (half to even) to 0 0 1 2 152 -10.
const std::vector<int64_t> kA = {10, 11, 11, 13, 200, 0};
const std::vector<int64_t> kB = {20, 20, 22, 20, 250, 0};

std::vector<Tensor> u8_inputs() {
  return {qtensor(DType::kU8, {2, 3}, kA),
          scale(0.5f),
          zp(DType::kU8, 10),
          qtensor(DType::kU8, {2, 3}, kB),
          scale(0.25f),
          zp(DType::kU8, 20),
          scale(1.0f),
          zp(DType::kU8, 5)};
}

TEST(QLinearAdd, HandComputedU8) {
  for (KernelChoice c : kBoth) {
    SCOPED_TRACE(label(c));
    const Tensor y = run1(qadd(), u8_inputs(), c);
    EXPECT_EQ(y.dtype(), DType::kU8);
    EXPECT_EQ(y.shape(), (Shape{2, 3}));
    EXPECT_EQ(ints_of(y), (std::vector<int64_t>{5, 5, 6, 7, 157, 0}));
    // relu: -10 -> 0; relu6: 152.5 -> 6 as well.
    EXPECT_EQ(ints_of(run1(qadd("relu"), u8_inputs(), c)),
              (std::vector<int64_t>{5, 5, 6, 7, 157, 5}));
    EXPECT_EQ(ints_of(run1(qadd("relu6"), u8_inputs(), c)),
              (std::vector<int64_t>{5, 5, 6, 7, 11, 5}));
  }
}

TEST(QLinearAdd, HandComputedI8WithAbsentZeroPoints) {
  // a zp 0 (absent), b zp -1: sums 201 -255 5 4; / 2 = 100.5 -127.5 2.5 2 -> 100 -128 2 2; + 30.
  const std::vector<Tensor> in = {qtensor(DType::kI8, {4}, {100, -128, 5, 1}),
                                  scale(1.0f),
                                  Tensor(),
                                  qtensor(DType::kI8, {4}, {100, -128, -1, 2}),
                                  scale(1.0f),
                                  zp(DType::kI8, -1),
                                  scale(2.0f),
                                  zp(DType::kI8, 30)};
  for (KernelChoice c : kBoth) {
    SCOPED_TRACE(label(c));
    const Tensor y = run1(qadd(), in, c);
    EXPECT_EQ(y.dtype(), DType::kI8);
    EXPECT_EQ(ints_of(y), (std::vector<int64_t>{127, -98, 32, 32}));
  }
  // Without y_zero_point the output takes a's dtype and zero point 0.
  std::vector<Tensor> no_yzp(in.begin(), in.begin() + 7);
  EXPECT_EQ(ints_of(run1(qadd(), no_yzp)), (std::vector<int64_t>{100, -128, 2, 2}));
}

// The QDQ graph QLinearAdd replaces, run through the other ops: DQ(a) + DQ(b) in f32, relu, Q.
Tensor qdq_reference(const std::vector<Tensor>& in, bool relu) {
  const Node dq = dense::node(OpKind::kDequantizeLinear);
  const Tensor ra = run1(dq, {in[0], in[1], in[2]});
  const Tensor rb = run1(dq, {in[3], in[4], in[5]});
  Tensor sum(DType::kF32, ra.shape());
  for (int64_t i = 0; i < sum.numel(); ++i) {
    sum.f32()[i] = ra.f32()[i] + rb.f32()[i];
    if (relu && sum.f32()[i] < 0) sum.f32()[i] = 0;
  }
  return run1(dense::node(OpKind::kQuantizeLinear), {sum, in[6], in[7]});
}

std::vector<Tensor> random_inputs(const Shape& s, DType ta, DType tb, DType ty, Rng& rng) {
  auto lo = [](DType t) { return t == DType::kU8 ? 0 : -128; };
  auto hi = [](DType t) { return t == DType::kU8 ? 255 : 127; };
  auto z = [&](DType t) { return random_q(t, {}, rng, lo(t), hi(t)); };
  return {random_q(ta, s, rng, lo(ta), hi(ta)),
          scale(rng.uniform(0.005f, 0.1f)),
          z(ta),
          random_q(tb, s, rng, lo(tb), hi(tb)),
          scale(rng.uniform(0.005f, 0.1f)),
          z(tb),
          scale(rng.uniform(0.01f, 0.2f)),
          z(ty)};
}

const std::vector<Shape> kShapes = {{1}, {7}, {3, 5, 7}, {70001}, {2, 16, 33, 33}};

TEST(QLinearAdd, EqualsTheQdqGraphBitForBit) {
  Rng rng(3);
  for (const Shape& s : kShapes) {
    for (bool relu : {false, true}) {
      SCOPED_TRACE(shape_str(s) + (relu ? " relu" : ""));
      const auto in = random_inputs(s, DType::kU8, DType::kU8, DType::kU8, rng);
      expect_identical(run1(qadd(relu ? "relu" : ""), in, KernelChoice::kFast),
                       qdq_reference(in, relu), "y");
    }
  }
  // Power-of-two scales make many sums exact half-integers: ties must go to even there too.
  const auto ties = std::vector<Tensor>{random_q(DType::kI8, {999}, rng, -128, 127),
                                        scale(0.5f),
                                        zp(DType::kI8, 0),
                                        random_q(DType::kI8, {999}, rng, -128, 127),
                                        scale(0.25f),
                                        zp(DType::kI8, 1),
                                        scale(1.0f),
                                        zp(DType::kI8, -2)};
  expect_identical(run1(qadd(), ties, KernelChoice::kFast), qdq_reference(ties, false), "ties");
}

TEST(QLinearAdd, FastMatchesReferenceExactly) {
  Rng rng(4);
  const DType q8[] = {DType::kU8, DType::kI8};
  for (const Shape& s : kShapes) {
    for (DType ta : q8) {
      for (DType tb : q8) {
        for (DType ty : q8) {
          for (const char* act : {"", "relu", "relu6"}) {
            SCOPED_TRACE(shape_str(s) + " " + std::string(dtype_name(ta)) + "+" +
                         std::string(dtype_name(tb)) + "->" + std::string(dtype_name(ty)) + " " +
                         act);
            const auto in = random_inputs(s, ta, tb, ty, rng);
            expect_identical(run1(qadd(act), in, KernelChoice::kFast), run1(qadd(act), in), "y");
          }
        }
      }
    }
  }
}

// Every pair of u8 codes (the AVX-512 loop's whole domain) for random parameters, with each
// activation, including ranges that clip the whole output (relu6 with a tiny y_scale, a zero
// point at either end), and power-of-two scales whose sums tie.
TEST(QLinearAdd, U8FastIsExactOnEveryPairOfCodes) {
  Rng rng(5);
  std::vector<int64_t> a(65536), b(65536);
  for (int64_t i = 0; i < 65536; ++i) {
    a[static_cast<size_t>(i)] = i / 256;
    b[static_cast<size_t>(i)] = i % 256;
  }
  for (int trial = 0; trial < 12; ++trial) {
    const bool ties = trial % 4 == 3;
    const int64_t yzp = trial % 3 == 0   ? 0
                        : trial % 3 == 1 ? 255
                                         : static_cast<int64_t>(rng.below(256));
    const std::vector<Tensor> in = {qtensor(DType::kU8, {65536}, a),
                                    scale(ties ? 0.5f : rng.uniform(0.005f, 0.1f)),
                                    zp(DType::kU8, static_cast<int64_t>(rng.below(256))),
                                    qtensor(DType::kU8, {65536}, b),
                                    scale(ties ? 0.25f : rng.uniform(0.005f, 0.1f)),
                                    zp(DType::kU8, static_cast<int64_t>(rng.below(256))),
                                    scale(ties         ? 1.0f
                                          : trial == 5 ? 1e-4f
                                                       : rng.uniform(0.01f, 0.2f)),
                                    zp(DType::kU8, yzp)};
    for (const char* act : {"", "relu", "relu6"}) {
      SCOPED_TRACE(std::to_string(trial) + " " + act);
      expect_identical(run1(qadd(act), in, KernelChoice::kFast), run1(qadd(act), in), "y");
    }
  }
}

TEST(QLinearAdd, BadInputs) {
  auto with = [](size_t i, Tensor t) {
    std::vector<Tensor> in = u8_inputs();
    in[i] = std::move(t);
    return in;
  };
  expect_node_error([&] { run1(qadd(), with(3, qtensor(DType::kU8, {6}, kB))); },
                    "does not broadcast");
  expect_node_error(
      [&] {
        run1(qadd(), with(0, ftensor({2, 3}, {1, 2, 3, 4, 5, 6})));
      },
      "expected u8 or i8");
  expect_node_error([&] { run1(qadd(), with(2, zp(DType::kI8, 0))); }, "has dtype i8, expected");
  expect_node_error([&] { run1(qadd(), with(6, ftensor({2}, {1, 1}))); }, "per tensor");
  expect_node_error([&] { run1(qadd(), with(7, zp(DType::kI32, 0))); }, "expected u8 or i8");
  expect_node_error([&] { run1(qadd("gelu"), u8_inputs()); }, "activation");
  for (KernelChoice c : kBoth) {
    expect_node_error([&] { run1(qadd(), with(4, scale(0.0f)), c); }, "b_scale value");
    expect_node_error(
        [&] { run1(qadd(), with(6, scale(std::numeric_limits<float>::infinity())), c); },
        "y_scale value");
  }
  std::vector<Tensor> six = u8_inputs();
  six.resize(6);
  expect_node_error([&] { run1(qadd(), six); }, "missing input 6");
}

}  // namespace
}  // namespace minnow::testing
