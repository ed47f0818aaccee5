// Linear and MatMul: hand-computed values (forward and all gradients), fast vs reference over a
// table of shapes (odd sizes, batch 1, no bias, rank-1/3 inputs, numpy broadcasting), central
// finite differences in f64, shape inference with the symbolic batch, bad input.
#include <gtest/gtest.h>

#include "dense_test_util.h"
#include "op_harness.h"

namespace minnow::testing {
namespace {

using dense::expect_values;
using dense::info;
using dense::tensor;

// ------------------------------------------------------------------------------------------
// Linear

struct LinearShape {
  Shape x;
  int64_t out;
  bool bias;
};

const std::vector<LinearShape> kLinearShapes = {
    {{3, 7}, 5, true},     // odd sizes
    {{1, 7}, 5, true},     // batch 1
    {{4, 7}, 5, false},    // no bias
    {{2, 3, 7}, 5, true},  // rank-3 input: leading dims are rows
    {{7}, 5, true},        // rank-1 input
    {{1, 1}, 1, true},     // 1x1
    {{17, 33}, 9, true},   // sizes just above the primitive threshold
};

// Larger products run the oneDNN matmul primitive rather than dnnl_sgemm.
const std::vector<LinearShape> kLinearLargeShapes = {
    {{64, 784}, 300, true}, {{64, 300}, 100, true},  {{64, 100}, 10, false},
    {{1, 784}, 300, true},  {{5, 2, 100}, 37, true},
};

OpCase linear_case(const LinearShape& s, Rng& rng) {
  OpCase c;
  c.label =
      "linear x" + shape_str(s.x) + " out=" + std::to_string(s.out) + (s.bias ? "" : " no bias");
  c.node = dense::node(OpKind::kLinear);
  c.inputs = {random_tensor(s.x, rng), random_tensor({s.out, s.x.back()}, rng)};
  if (s.bias) c.inputs.push_back(random_tensor({s.out}, rng));
  return c;
}

TEST(Linear, HandComputed) {
  // x [2,2], W [3,2], b [3]: y = x W^T + b.
  Tensor x = tensor({2, 2}, {1, 2, 3, 4});
  Tensor w = tensor({3, 2}, {1, 0, 0, 1, 1, 1});
  Tensor b = tensor({3}, {0.5, -1, 2});
  Tensor dy = tensor({2, 3}, {1, 2, 3, -1, 0, 1});
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    dense::Run r = dense::run(dense::node(OpKind::kLinear), {x, w, b},
                              dense::opts().kernel(choice).grads({dy}));
    expect_values(r.outputs[0], {1.5, 1, 5, 3.5, 3, 9}, 1e-6, "y");
    // dx = dy W: row0 = [1+3, 2+3], row1 = [-1+1, 0+1]
    expect_values(r.grads[0], {4, 5, 0, 1}, 1e-6, "dx");
    // dW = dy^T x: [1*1-1*3, 1*2-1*4], [2*1+0, 2*2+0], [3*1+1*3, 3*2+1*4]
    expect_values(r.grads[1], {-2, -2, 2, 4, 6, 10}, 1e-6, "dW");
    expect_values(r.grads[2], {0, 2, 4}, 1e-6, "db");
  }
}

TEST(Linear, FastMatchesReference) {
  Rng rng(21);
  for (const auto* table : {&kLinearShapes, &kLinearLargeShapes}) {
    for (const LinearShape& s : *table) {
      OpCase c = linear_case(s, rng);
      c.fast_tolerance = 1e-4;
      expect_fast_matches_reference(c);
    }
  }
}

TEST(Linear, GradientMatchesFiniteDifference) {
  Rng rng(22);
  for (const LinearShape& s : kLinearShapes)
    expect_gradient_matches_finite_difference(linear_case(s, rng));
}

// The first layer's input needs no gradient: the other gradients must not depend on it.
TEST(Linear, SkipsInputGradientWhenNotRequested) {
  Rng rng(23);
  for (const LinearShape& s : {LinearShape{{64, 784}, 300, true}, LinearShape{{3, 7}, 5, true}}) {
    OpCase c = linear_case(s, rng);
    Tensor dy = random_tensor({s.x[0], s.out}, rng);
    dense::Run all = dense::run(c.node, c.inputs, dense::opts().grads({dy}));
    for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
      dense::Run part = dense::run(
          c.node, c.inputs, dense::opts().kernel(choice).grads({dy}).want({false, true, true}));
      EXPECT_FALSE(part.grads[0].defined());
      expect_values(part.grads[1], dense::values_of(all.grads[1]), 1e-4, c.label + " dW");
      expect_values(part.grads[2], dense::values_of(all.grads[2]), 1e-4, c.label + " db");
    }
  }
}

TEST(Linear, MissingOutputGradientGivesZeros) {
  Rng rng(24);
  OpCase c = linear_case(kLinearShapes[0], rng);
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    dense::Run r = dense::run(c.node, c.inputs, dense::opts().kernel(choice).grads({Tensor()}));
    for (const Tensor& g : r.grads) {
      for (double v : dense::values_of(g)) EXPECT_EQ(v, 0.0);
    }
  }
}

TEST(Linear, InferShapesAndMacs) {
  Node n = dense::node(OpKind::kLinear);
  EXPECT_EQ(dense::infer(n, {info({kDynamic, 7}), info({5, 7}), info({5})})[0].shape,
            (Shape{kDynamic, 5}));
  EXPECT_EQ(dense::infer(n, {info({kDynamic, 3, 7}), info({5, 7}), ValueInfo{}})[0].shape,
            (Shape{kDynamic, 3, 5}));
  EXPECT_EQ(dense::infer(n, {info({7}), info({5, 7})})[0].shape, (Shape{5}));
  auto out = dense::infer(n, {info({7, 7}, DType::kF64), info({5, 7}, DType::kF64)});
  EXPECT_EQ(out[0].dtype, DType::kF64);

  // MACs per sample: rows per sample * in * out.
  ValueInfo x = info({kDynamic, 3, 784}), w = info({300, 784});
  std::vector<ValueInfo> y = dense::infer(n, {x, w});
  EXPECT_EQ(op_def(OpKind::kLinear).macs(n, {&x, &w}, y), 3 * 784 * 300);
}

TEST(Linear, BadInputIsAnError) {
  Node n = dense::node(OpKind::kLinear);
  EXPECT_THROW(dense::infer(n, {info({3, 6}), info({5, 7})}), Error);             // in mismatch
  EXPECT_THROW(dense::infer(n, {info({3, 7}), info({35})}), Error);               // weight rank
  EXPECT_THROW(dense::infer(n, {info({3, 7}), info({5, 7}), info({4})}), Error);  // bias size
  EXPECT_THROW(dense::infer(n, {info({3, 7}), info({5, 7}), info({1, 5})}), Error);
  EXPECT_THROW(dense::infer(n, {info({}), info({5, 7})}), Error);                   // scalar input
  EXPECT_THROW(dense::infer(n, {info({3, 7}, DType::kF64), info({5, 7})}), Error);  // dtypes
  EXPECT_THROW(dense::infer(n, {info({3, 7}, DType::kI64), info({5, 7})}), Error);
  EXPECT_THROW(dense::infer(n, {info({3, 7}), info({kDynamic, 7})}), Error);  // symbolic W
  try {
    dense::infer(n, {info({3, 6}), info({5, 7})});
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("node_under_test"), std::string::npos) << e.what();
  }
}

// ------------------------------------------------------------------------------------------
// MatMul

struct MatMulShape {
  Shape a, b, out;
};

const std::vector<MatMulShape> kMatMulShapes = {
    {{2, 3, 4}, {4, 5}, {2, 3, 5}},           // batched A, shared B (folds into one product)
    {{3, 4}, {2, 4, 5}, {2, 3, 5}},           // shared A, batched B
    {{2, 3, 4}, {2, 4, 5}, {2, 3, 5}},        // same batch
    {{2, 1, 3, 4}, {3, 4, 2}, {2, 3, 3, 2}},  // broadcast on both sides
    {{4}, {4, 5}, {5}},                       // rank-1 left
    {{3, 4}, {4}, {3}},                       // rank-1 right
    {{4}, {4}, {}},                           // dot product
    {{4}, {2, 4, 5}, {2, 5}},                 // rank-1 left, batched right
    {{2, 3, 4}, {4}, {2, 3}},                 // batched left, rank-1 right
    {{1, 7}, {7, 1}, {1, 1}},
    {{5, 3}, {3, 6}, {5, 6}},
};

OpCase matmul_case(const MatMulShape& s, Rng& rng) {
  OpCase c;
  c.label = "matmul " + shape_str(s.a) + " x " + shape_str(s.b);
  c.node = dense::node(OpKind::kMatMul);
  c.inputs = {random_tensor(s.a, rng), random_tensor(s.b, rng)};
  return c;
}

TEST(MatMul, HandComputed) {
  // [2,3] x [3,2]
  Tensor a = tensor({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = tensor({3, 2}, {1, -1, 0, 2, 1, 0});
  Tensor dc = tensor({2, 2}, {1, 0, 0, 1});
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    dense::Run r =
        dense::run(dense::node(OpKind::kMatMul), {a, b}, dense::opts().kernel(choice).grads({dc}));
    expect_values(r.outputs[0], {4, 3, 10, 6}, 1e-6, "C");
    expect_values(r.grads[0], {1, 0, 1, -1, 2, 0}, 1e-6, "dA = dC B^T");
    expect_values(r.grads[1], {1, 4, 2, 5, 3, 6}, 1e-6, "dB = A^T dC");
  }
  // Dot product of rank-1 operands; [3,4] x [2,4,5]-style broadcast sums A's gradient.
  Tensor u = tensor({3}, {1, 2, 3}), v = tensor({3}, {4, -5, 6});
  dense::Run dot =
      dense::run(dense::node(OpKind::kMatMul), {u, v}, dense::opts().grads({tensor({}, {2})}));
  expect_values(dot.outputs[0], {12}, 1e-6, "dot");
  expect_values(dot.grads[0], {8, -10, 12}, 1e-6, "d u");
  expect_values(dot.grads[1], {2, 4, 6}, 1e-6, "d v");

  Tensor a1 = tensor({1, 2}, {1, 2});
  Tensor b2 = tensor({2, 2, 1}, {1, 1, 2, 3});
  dense::Run bc =
      dense::run(dense::node(OpKind::kMatMul), {a1, b2},
                 dense::opts().kernel(KernelChoice::kFast).grads({tensor({2, 1, 1}, {1, 1})}));
  expect_values(bc.outputs[0], {3, 8}, 1e-6, "broadcast C");
  expect_values(bc.grads[0], {3, 4}, 1e-6, "broadcast dA sums over the batch");
}

TEST(MatMul, FastMatchesReference) {
  Rng rng(31);
  std::vector<MatMulShape> shapes = kMatMulShapes;
  shapes.push_back({{4, 32, 48}, {48, 40}, {4, 32, 40}});
  shapes.push_back({{3, 64, 20}, {3, 20, 50}, {3, 64, 50}});
  shapes.push_back({{64, 20}, {3, 20, 50}, {3, 64, 50}});
  for (const MatMulShape& s : shapes) expect_fast_matches_reference(matmul_case(s, rng));
}

TEST(MatMul, GradientMatchesFiniteDifference) {
  Rng rng(32);
  for (const MatMulShape& s : kMatMulShapes)
    expect_gradient_matches_finite_difference(matmul_case(s, rng));
}

TEST(MatMul, InferShapes) {
  Node n = dense::node(OpKind::kMatMul);
  for (const MatMulShape& s : kMatMulShapes) {
    EXPECT_EQ(dense::infer(n, {info(s.a), info(s.b)})[0].shape, s.out)
        << shape_str(s.a) << " x " << shape_str(s.b);
  }
  EXPECT_EQ(dense::infer(n, {info({kDynamic, 3, 4}), info({4, 5})})[0].shape,
            (Shape{kDynamic, 3, 5}));
  EXPECT_EQ(dense::infer(n, {info({kDynamic, 4}), info({4, 5})})[0].shape, (Shape{kDynamic, 5}));
  EXPECT_EQ(dense::infer(n, {info({kDynamic, 3, 4}), info({1, 4, 5})})[0].shape,
            (Shape{kDynamic, 3, 5}));
  ValueInfo a = info({kDynamic, 3, 4}), b = info({4, 5});
  std::vector<ValueInfo> y = dense::infer(n, {a, b});
  EXPECT_EQ(op_def(OpKind::kMatMul).macs(n, {&a, &b}, y), 3 * 5 * 4);
}

TEST(MatMul, BadInputIsAnError) {
  Node n = dense::node(OpKind::kMatMul);
  EXPECT_THROW(dense::infer(n, {info({2, 3}), info({4, 5})}), Error);        // inner dims
  EXPECT_THROW(dense::infer(n, {info({2, 3, 4}), info({3, 4, 5})}), Error);  // batch dims
  EXPECT_THROW(dense::infer(n, {info({}), info({4, 5})}), Error);            // scalar
  EXPECT_THROW(dense::infer(n, {info({3}), info({4})}), Error);              // dot of 3 and 4
  EXPECT_THROW(dense::infer(n, {info({2, 4}, DType::kF64), info({4, 5})}), Error);
  EXPECT_THROW(dense::infer(n, {info({2, 4}, DType::kI32), info({4, 5}, DType::kI32)}), Error);
}

}  // namespace
}  // namespace minnow::testing
