// Dropout: drop rate and scaling, determinism given the rng state (and independence from the
// thread count), backward reusing the forward mask, eval = identity, bad ratios.
#include <gtest/gtest.h>
#include <omp.h>

#include "elementwise_test_util.h"
#include "op_harness.h"

namespace minnow::testing {
namespace {

Node dropout(double ratio) { return make_node(OpKind::kDropout, {{"ratio", ratio}}); }

// Inputs bounded away from zero, so a zero output means "dropped".
Tensor nonzero_input(const Shape& s, Rng& rng) {
  Tensor t = random_tensor(s, rng, 0.5f, 1.5f);
  for (int64_t i = 0; i < t.numel(); i += 2) t.f32()[i] = -t.f32()[i];
  return t;
}

TEST(Dropout, DropsAtTheRatioAndScalesTheRest) {
  Rng data_rng(41);
  const Shape s = {64, 6, 28, 28};
  Tensor x = nonzero_input(s, data_rng);
  for (double ratio : {0.1, 0.3, 0.5, 0.9}) {
    Rng rng(7);
    Tensor dy = random_tensor(s, data_rng);
    KernelRun r = run_kernel(dropout(ratio), {x}, {dy}, 1, true, &rng);
    const float* xv = x.f32();
    const float* y = r.outputs[0].f32();
    const float* g = r.grads[0].f32();
    const float* d = dy.f32();
    const float scale = static_cast<float>(1.0 / (1.0 - ratio));
    int64_t dropped = 0;
    int bad = 0;
    for (int64_t i = 0; i < x.numel() && bad < 5; ++i) {
      if (y[i] == 0.0f) {
        ++dropped;
        if (g[i] != 0.0f) ++bad;  // backward must drop the same elements
      } else {
        if (y[i] != xv[i] * scale || g[i] != d[i] * scale) ++bad;
      }
    }
    EXPECT_EQ(bad, 0) << "ratio " << ratio;
    // Binomial standard deviation of the rate is below 1e-3 here.
    EXPECT_NEAR(static_cast<double>(dropped) / x.numel(), ratio, 5e-3) << "ratio " << ratio;
  }
}

TEST(Dropout, DeterministicGivenRngStateAndThreadCount) {
  Rng data_rng(42);
  Tensor x = nonzero_input({3, 5, 71, 67}, data_rng);  // odd size, several mask chunks
  Rng a(99), b(99), c(100);
  std::vector<double> ya = values_of(run_kernel(dropout(0.5), {x}, {}, 1, true, &a).outputs[0]);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  std::vector<double> yb = values_of(run_kernel(dropout(0.5), {x}, {}, 1, true, &b).outputs[0]);
  omp_set_num_threads(threads);
  std::vector<double> yc = values_of(run_kernel(dropout(0.5), {x}, {}, 1, true, &c).outputs[0]);
  EXPECT_EQ(ya, yb);
  EXPECT_NE(ya, yc);
  // The rng advanced: the next step draws a different mask.
  std::vector<double> ya2 = values_of(run_kernel(dropout(0.5), {x}, {}, 1, true, &a).outputs[0]);
  EXPECT_NE(ya, ya2);
}

TEST(Dropout, EvalModeAndZeroRatioAreIdentity) {
  Rng rng(43);
  Tensor x = random_tensor({2, 3, 5}, rng), dy = random_tensor({2, 3, 5}, rng);
  for (auto [ratio, training] : {std::pair{0.5, false}, std::pair{0.0, true}}) {
    KernelRun r = run_kernel(dropout(ratio), {x}, {dy}, 1, training, &rng);
    expect_values(r.outputs[0], values_of(x), 0, "forward");
    expect_values(r.grads[0], values_of(dy), 0, "backward");
  }
  KernelRun r = run_kernel(make_node(OpKind::kDropout), {x}, {Tensor()}, 1, true, &rng);
  expect_values(r.grads[0], std::vector<double>(30, 0.0), 0, "absent output gradient");
}

TEST(Dropout, GradientMatchesFiniteDifference) {
  Rng rng(44);
  const std::vector<Shape> shapes = {{1, 9}, {3, 4, 5}, {2, 3, 7, 7}};
  for (const Shape& s : shapes) {
    for (bool training : {true, false}) {
      OpCase c;
      c.label = "dropout " + shape_str(s) + (training ? " train" : " eval");
      c.node = dropout(0.4);
      c.training = training;
      c.inputs = {random_tensor(s, rng)};
      expect_gradient_matches_finite_difference(c, 40);
    }
  }
}

TEST(Dropout, F64UsesTheSameMaskAsF32) {
  Rng data_rng(45);
  Tensor x = nonzero_input({5, 999}, data_rng);
  Rng a(3), b(3);
  KernelRun r32 = run_kernel(dropout(0.25), {x}, {}, 1, true, &a);
  KernelRun r64 = run_kernel(dropout(0.25), {to_dtype(x, DType::kF64)}, {}, 1, true, &b);
  expect_values(r32.outputs[0], values_of(r64.outputs[0]), 1e-6, "f32 vs f64");
}

TEST(Dropout, InferAndBadRatio) {
  EXPECT_EQ(infer_shape(dropout(0.2), {{kDynamic, 10}}), (Shape{kDynamic, 10}));
  EXPECT_EQ(infer_shape(make_node(OpKind::kDropout), {{3}}), (Shape{3}));
  EXPECT_NO_THROW(infer_shape(dropout(0.0), {{3}}));
  for (double bad : {-0.1, 1.0, 1.5, static_cast<double>(NAN)}) {
    EXPECT_THROW(infer_shape(dropout(bad), {{3}}), Error) << bad;
  }
  EXPECT_THROW(infer_outputs(dropout(0.5), {{3}}, 1, DType::kI64), Error);
}

}  // namespace
}  // namespace minnow::testing
