// Activations: reference values by hand (PyTorch semantics incl. gradients at the kinks), fast vs
// reference over a shape table, finite-difference gradients away from kinks, bad attributes.
#include <gtest/gtest.h>

#include <cmath>

#include "elementwise_test_util.h"
#include "op_harness.h"

namespace minnow::testing {
namespace {

struct ActCase {
  std::string label;
  Node node;
  std::vector<double> kinks;  // inputs are nudged away from these so finite differences hold
};

std::vector<ActCase> activation_cases() {
  return {
      {"relu", make_node(OpKind::kRelu), {0}},
      {"relu6", make_node(OpKind::kRelu6), {0, 6}},
      {"leaky default", make_node(OpKind::kLeakyRelu), {0}},
      {"leaky 0.2", make_node(OpKind::kLeakyRelu, {{"alpha", 0.2}}), {0}},
      {"sigmoid", make_node(OpKind::kSigmoid), {}},
      {"tanh", make_node(OpKind::kTanh), {}},
      {"gelu erf", make_node(OpKind::kGelu), {}},
      {"gelu tanh", make_node(OpKind::kGelu, {{"approximate", std::string("tanh")}}), {}},
      {"hardswish", make_node(OpKind::kHardSwish), {-3, 3}},
      {"hardsigmoid", make_node(OpKind::kHardSigmoid), {-3, 3}},
      // alpha x + beta hits 0 at x = -2.5 and 1 at x = 1.5.
      {"hardsigmoid 0.25/0.625",
       make_node(OpKind::kHardSigmoid, {{"alpha", 0.25}, {"beta", 0.625}}),
       {-2.5, 1.5}},
  };
}

const std::vector<Shape> kShapes = {{1}, {1, 7}, {3, 5}, {2, 3, 9, 11}, {1, 4, 5, 5}};

// Uniform in [-8, 8) (covers every linear piece: relu6 saturates at 6), moved at least `margin`
// away from each kink.
Tensor sample_away_from_kinks(const Shape& shape, Rng& rng, const std::vector<double>& kinks) {
  Tensor t = random_tensor(shape, rng, -8.0f, 8.0f);
  const float margin = 0.05f;
  for (int64_t i = 0; i < t.numel(); ++i) {
    float& v = t.f32()[i];
    for (double k : kinks) {
      if (std::abs(v - k) < margin) v = static_cast<float>(k) + (v < k ? -margin : margin);
    }
  }
  return t;
}

TEST(Activation, GradientMatchesFiniteDifference) {
  Rng rng(11);
  for (const ActCase& ac : activation_cases()) {
    for (const Shape& s : kShapes) {
      OpCase c;
      c.label = ac.label + " " + shape_str(s);
      c.node = ac.node;
      c.inputs = {sample_away_from_kinks(s, rng, ac.kinks)};
      expect_gradient_matches_finite_difference(c, 40);
    }
  }
}

TEST(Activation, FastMatchesReference) {
  Rng rng(12);
  std::vector<Shape> shapes = kShapes;
  shapes.push_back({64, 6, 28, 28});  // large enough to run the parallel paths
  for (const ActCase& ac : activation_cases()) {
    for (const Shape& s : shapes) {
      OpCase c;
      c.label = ac.label + " " + shape_str(s);
      c.node = ac.node;
      c.inputs = {sample_away_from_kinks(s, rng, ac.kinks)};
      c.fast_tolerance = 2e-5;
      expect_fast_matches_reference(c);
    }
  }
}

// y and dy/dx (with dy = 1) at chosen points, in f32 and f64, against hand-computed values.
void expect_act(const Node& node, const std::vector<double>& x, const std::vector<double>& y,
                const std::vector<double>& dx, const std::string& what) {
  for (DType dt : {DType::kF32, DType::kF64}) {
    for (KernelChoice kc : {KernelChoice::kReference, KernelChoice::kFast}) {
      if (kc == KernelChoice::kFast && dt == DType::kF64) continue;
      const Shape s = {static_cast<int64_t>(x.size())};
      KernelRun r = run_kernel(node, {make_tensor(s, x, dt)},
                               {make_tensor(s, std::vector<double>(x.size(), 1.0), dt)}, 1, false,
                               nullptr, kc);
      const std::string label = what + (dt == DType::kF64 ? " f64" : " f32") +
                                (kc == KernelChoice::kFast ? " fast" : " reference");
      const double tol = dt == DType::kF64 && kc == KernelChoice::kReference ? 1e-9 : 2e-6;
      expect_values(r.outputs[0], y, tol, label + " y");
      expect_values(r.grads[0], dx, tol, label + " dx");
    }
  }
}

TEST(Activation, HandComputedValues) {
  expect_act(make_node(OpKind::kRelu), {-2, 0, 0.5, 3}, {0, 0, 0.5, 3}, {0, 0, 1, 1}, "relu");
  // Relu6 passes gradient strictly inside (0, 6), as PyTorch's hardtanh backward.
  expect_act(make_node(OpKind::kRelu6), {-1, 0, 2.5, 6, 7}, {0, 0, 2.5, 6, 6}, {0, 0, 1, 0, 0},
             "relu6");
  expect_act(make_node(OpKind::kLeakyRelu), {-2, 0, 1.5}, {-0.02, 0, 1.5}, {0.01, 0.01, 1},
             "leaky default");
  expect_act(make_node(OpKind::kLeakyRelu, {{"alpha", 0.1}}), {-2, 3}, {-0.2, 3}, {0.1, 1},
             "leaky 0.1");
  expect_act(make_node(OpKind::kSigmoid), {0, 2}, {0.5, 0.880797078}, {0.25, 0.104993585},
             "sigmoid");
  expect_act(make_node(OpKind::kTanh), {0, 0.5}, {0, 0.462117157}, {1, 0.786447733}, "tanh");
  expect_act(make_node(OpKind::kGelu), {1, -1, 0.5}, {0.841344746, -0.158655254, 0.345731231},
             {1.083315471, -0.083315471, 0.867495125}, "gelu erf");
  expect_act(make_node(OpKind::kGelu, {{"approximate", std::string("tanh")}}), {1, -1, 2},
             {0.841191991, -0.158808009, 1.954597694}, {1.082964084, -0.082964084, 1.086099257},
             "gelu tanh");
  // HardSwish backward (PyTorch): 0 below -3, x/3 + 1/2 on [-3, 3], 1 above.
  expect_act(make_node(OpKind::kHardSwish), {1, -4, -3, 0, 3, 4}, {2.0 / 3.0, 0, 0, 0, 3, 4},
             {5.0 / 6.0, 0, -0.5, 0.5, 1.5, 1}, "hardswish");
  // HardSigmoid defaults alpha = 1/6, beta = 1/2; gradient strictly inside (-3, 3).
  expect_act(make_node(OpKind::kHardSigmoid), {1, -4, -3, 0, 3, 4}, {2.0 / 3.0, 0, 0, 0.5, 1, 1},
             {1.0 / 6, 0, 0, 1.0 / 6, 0, 0}, "hardsigmoid");
  expect_act(make_node(OpKind::kHardSigmoid, {{"alpha", 0.2}, {"beta", 0.4}}), {1, -3, 4},
             {0.6, 0, 1}, {0.2, 0, 0}, "hardsigmoid 0.2/0.4");
}

TEST(Activation, AbsentOutputGradientGivesZero) {
  Tensor x = make_tensor({3}, {-1, 1, 2});
  for (OpKind op : {OpKind::kRelu, OpKind::kSigmoid, OpKind::kGelu}) {
    for (KernelChoice kc : {KernelChoice::kReference, KernelChoice::kFast}) {
      KernelRun r = run_kernel(make_node(op), {x}, {Tensor()}, 1, false, nullptr, kc);
      expect_values(r.grads[0], {0, 0, 0}, 0, "zero grad");
    }
  }
}

TEST(Activation, ReluPropagatesNan) {
  KernelRun r = run_kernel(make_node(OpKind::kRelu), {make_tensor({2}, {NAN, -1})});
  EXPECT_TRUE(std::isnan(r.outputs[0].f32()[0]));
  EXPECT_EQ(r.outputs[0].f32()[1], 0.0f);
}

TEST(Activation, InferKeepsShapeAndSymbolicBatch) {
  for (const ActCase& ac : activation_cases()) {
    EXPECT_EQ(infer_shape(ac.node, {{kDynamic, 3, 5, 5}}), (Shape{kDynamic, 3, 5, 5})) << ac.label;
    EXPECT_EQ(infer_outputs(ac.node, {{2, 3}}, 1, DType::kF64)[0].dtype, DType::kF64) << ac.label;
  }
}

TEST(Activation, BadInputIsAnError) {
  EXPECT_THROW(infer_shape(make_node(OpKind::kGelu, {{"approximate", std::string("erf")}}), {{2}}),
               Error);
  EXPECT_THROW(infer_shape(make_node(OpKind::kLeakyRelu, {{"alpha", std::string("x")}}), {{2}}),
               Error);
  EXPECT_THROW(infer_shape(make_node(OpKind::kLeakyRelu, {{"alpha", NAN}}), {{2}}), Error);
  EXPECT_THROW(infer_shape(make_node(OpKind::kHardSigmoid, {{"beta", INFINITY}}), {{2}}), Error);
  // Integer inputs are not activations' business.
  EXPECT_THROW(infer_outputs(make_node(OpKind::kRelu), {{2}}, 1, DType::kI64), Error);
  try {
    infer_shape(make_node(OpKind::kGelu, {{"approximate", std::string("fast")}}), {{2}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("approximate"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace minnow::testing
