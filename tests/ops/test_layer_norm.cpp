// LayerNorm: values and gradients against PyTorch (literals below), a hand-computed row, fast vs
// reference over ranks 1-4 (odd sizes, batch 1, D = 1), finite-difference gradients, accuracy far
// from zero, and bad input.
#include <gtest/gtest.h>

#include <cmath>

#include "dense_test_util.h"
#include "op_harness.h"

namespace minnow::testing {
namespace {

using dense::expect_values;
using dense::info;
using dense::tensor;

Node ln_node(double eps = 1e-5) { return dense::node(OpKind::kLayerNorm, {{"epsilon", eps}}); }

std::vector<Tensor> ln_inputs(const Shape& s, Rng& rng) {
  const int64_t d = s.back();
  return {random_tensor(s, rng, -2.0f, 3.0f), random_tensor({d}, rng, 0.5f, 1.5f),
          random_tensor({d}, rng)};
}

const std::vector<Shape> kShapes = {
    {1, 1},        // batch 1, D = 1 (output is the bias)
    {1, 7},        // batch 1
    {5, 3},        // odd
    {7},           // rank 1: one row
    {2, 3, 17},    // rank 3 (sequence models)
    {3, 2, 2, 5},  // rank 4
};

// PyTorch 1.13, float64:
//   ln = torch.nn.LayerNorm(3, eps=1e-5).double(); weight [1.5,-0.5,2], bias [0.1,0.2,-0.3]
//   x = [[1,2,4],[-1,0.5,3]], dy = [[0.5,-1,2],[1,0.25,-0.5]]; y = ln(x); y.backward(dy)
TEST(LayerNorm, MatchesPyTorch) {
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    SCOPED_TRACE(choice == KernelChoice::kFast ? "fast" : "reference");
    dense::Run r = dense::run(
        ln_node(),
        {tensor({2, 3}, {1, 2, 4, -1, 0.5, 3}), tensor({3}, {1.5, -0.5, 2.0}),
         tensor({3}, {0.1, 0.2, -0.3})},
        dense::opts().kernel(choice).grads({tensor({2, 3}, {0.5, -1, 2, 1, 0.25, -0.5})}));
    expect_values(r.outputs[0],
                  {-1.5035622956853307, 0.33363019441151953, 2.3726038167048147,
                   -1.5667486356487952, 0.301015071897742, 2.326391779934325},
                  1e-5, "y");
    expect_values(r.grads[0],
                  {0.4581525567620218, -0.6872430093972178, 0.2290904526351959, 0.17007882814046604,
                   -0.27212178345426274, 0.10204295531379681},
                  1e-5, "dx");
    expect_values(r.grads[1], {-1.6456865238177565, 0.2167528484038197, 2.01600588066193}, 1e-5,
                  "dscale");
    expect_values(r.grads[2], {1.5, -0.75, 1.5}, 1e-6, "dbias");
  }
}

// x = [1,2,3,4], epsilon 0: mean 2.5, biased variance 1.25.
TEST(LayerNorm, HandComputedRow) {
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    dense::Run r = dense::run(
        ln_node(0.0),
        {tensor({1, 4}, {1, 2, 3, 4}), tensor({4}, {2, 2, 2, 2}), tensor({4}, {1, 1, 1, 1})},
        dense::opts().kernel(choice));
    const double s = std::sqrt(1.25);
    expect_values(r.outputs[0],
                  {2 * -1.5 / s + 1, 2 * -0.5 / s + 1, 2 * 0.5 / s + 1, 2 * 1.5 / s + 1}, 1e-6,
                  "y");
  }
}

TEST(LayerNorm, FastMatchesReference) {
  Rng rng(61);
  std::vector<Shape> shapes = kShapes;
  shapes.push_back({64, 300});     // multi-threaded rows
  shapes.push_back({8, 33, 129});  // multi-threaded, odd D
  for (const Shape& s : shapes) {
    OpCase c;
    c.label = "layer_norm " + shape_str(s);
    c.node = ln_node();
    c.inputs = ln_inputs(s, rng);
    expect_fast_matches_reference(c);
  }
}

// Rows far from zero: a one-pass variance would cancel catastrophically in float.
TEST(LayerNorm, FastIsAccurateForLargeOffsets) {
  Rng rng(62);
  OpCase c;
  c.label = "layer_norm offset 1000";
  c.node = ln_node();
  c.inputs = ln_inputs({16, 64}, rng);
  for (int64_t i = 0; i < c.inputs[0].numel(); ++i) c.inputs[0].f32()[i] += 1000.0f;
  c.fast_tolerance = 2e-3;  // float inputs near 1000 carry ~6e-5 absolute error already
  expect_fast_matches_reference(c);
}

TEST(LayerNorm, GradientMatchesFiniteDifference) {
  Rng rng(63);
  for (const Shape& s : kShapes) {
    OpCase c;
    c.label = "layer_norm " + shape_str(s);
    c.node = ln_node();
    c.inputs = ln_inputs(s, rng);
    c.fd_tolerance = 1e-5;
    expect_gradient_matches_finite_difference(c);
  }
}

TEST(LayerNorm, MissingOutputGradientGivesZeros) {
  Rng rng(64);
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    dense::Run r = dense::run(ln_node(), ln_inputs({2, 3}, rng),
                              dense::opts().kernel(choice).grads({Tensor()}));
    for (int i = 0; i < 3; ++i) {
      for (double v : dense::values_of(r.grads[i])) EXPECT_EQ(v, 0.0);
    }
  }
}

TEST(LayerNorm, InferShapes) {
  Node n = ln_node();
  EXPECT_EQ(dense::infer(n, {info({kDynamic, 7, 16}), info({16}), info({16})})[0].shape,
            (Shape{kDynamic, 7, 16}));
  std::vector<ValueInfo> out =
      dense::infer(n, {info({3}, DType::kF64), info({3}, DType::kF64), info({3}, DType::kF64)});
  EXPECT_EQ(out[0].dtype, DType::kF64);
}

TEST(LayerNorm, BadInputIsAnError) {
  Node n = ln_node();
  EXPECT_THROW(dense::infer(n, {info({}), info({1}), info({1})}), Error);         // scalar
  EXPECT_THROW(dense::infer(n, {info({2, 4}), info({3}), info({4})}), Error);     // scale
  EXPECT_THROW(dense::infer(n, {info({2, 4}), info({4}), info({1, 4})}), Error);  // bias
  EXPECT_THROW(dense::infer(n, {info({2, 4}), info({4}, DType::kF64), info({4})}), Error);
  EXPECT_THROW(dense::infer(n, {info({2, 4}, DType::kI64), info({4}), info({4})}), Error);
  EXPECT_THROW(dense::infer(n, {info({2, kDynamic}), info({4}), info({4})}), Error);
  EXPECT_THROW(dense::infer(ln_node(-1.0), {info({2, 4}), info({4}), info({4})}), Error);
  EXPECT_THROW(dense::infer(ln_node(NAN), {info({2, 4}), info({4}), info({4})}), Error);
}

}  // namespace
}  // namespace minnow::testing
