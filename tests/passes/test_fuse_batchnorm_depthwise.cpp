// fuse_batchnorm_depthwise: MobileNetV2's expansion BatchNorm + ReLU6 -> depthwise convolution
// -> BatchNorm + ReLU6 chains become BatchNormDepthwiseConv nodes, pairs whose normalized value has
// another reader stay, and a training step computes the same loss, gradients and running statistics
// with and without the pass.
#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"
#include "graph_test_util.h"
#include "minnow/zoo.h"
#include "passes/fuse_activation.h"
#include "passes/fuse_batchnorm_depthwise.h"
#include "train/training_session.h"
#include "training_steps.h"

namespace minnow {
namespace {

using testing::count_op;

TEST(FuseBatchNormDepthwise, MobileNetV2ExpansionPairs) {
  zoo::ZooOptions zo;
  zo.input_shape = {1, 28, 28};
  Graph g = zoo::build("mobilenet_v2", zo);
  fuse_batchnorm_activation(g);
  const int bns = count_op(g, OpKind::kBatchNorm), convs = count_op(g, OpKind::kConv2d);
  // Blocks 2-6 expand, so their depthwise input is the expansion's BatchNorm + ReLU6, and the
  // depthwise's own BatchNorm + ReLU6 joins. Block 1 has no expansion: its depthwise reads the
  // stem's output, which the residual Add reads too.
  EXPECT_EQ(fuse_batchnorm_depthwise(g), 5);
  EXPECT_EQ(count_op(g, OpKind::kBatchNormDepthwiseConv), 5);
  EXPECT_EQ(count_op(g, OpKind::kBatchNorm), bns - 10);
  for (const Node& n : g.nodes) {
    if (n.op == OpKind::kBatchNormDepthwiseConv) {
      EXPECT_EQ(n.inputs.size(), 11u) << n.name;
      EXPECT_EQ(n.attrs.get_string("post_activation", ""), "relu6") << n.name;
    }
  }
  EXPECT_EQ(count_op(g, OpKind::kConv2d), convs - 5);
  g.validate();
  EXPECT_EQ(fuse_batchnorm_depthwise(g), 0) << "nothing left to fuse";
}

// A training step of MobileNetV2 at 28x28 (the fused kernel's own loops, on two threads where
// there are two) with and without the pass.
TEST(FuseBatchNormDepthwise, TrainingStepIsUnchanged) {
  zoo::ZooOptions zo;
  zo.input_shape = {1, 28, 28};
  Graph g = zoo::build("mobilenet_v2", zo);
  testing::randomize_batchnorm(g, 7);
  const auto [x, y] = testing::random_batch(8, 28, 5);

  SessionOptions plain, fused;
  plain.fuse_batchnorm_depthwise = false;
  // Two steps: the second reuses the plan (kernels and their state) the first built.
  const testing::StepResult r0 = testing::train_steps(g, plain, x, y, 2),
                            r1 = testing::train_steps(g, fused, x, y, 2);
  const float l0 = r0.loss, l1 = r1.loss;
  const std::vector<Tensor>&g0 = r0.grads, &g1 = r1.grads, &s0 = r0.statistics, &s1 = r1.statistics;
  EXPECT_NEAR(l0, l1, 1e-5);
  ASSERT_EQ(g0.size(), g1.size());
  for (size_t i = 0; i < g0.size(); ++i) {
    double scale = 0;
    for (int64_t k = 0; k < g0[i].numel(); ++k)
      scale = std::max(scale, double(std::abs(g0[i].f32()[k])));
    for (int64_t k = 0; k < g0[i].numel(); ++k) {
      ASSERT_NEAR(g0[i].f32()[k], g1[i].f32()[k], 1e-6 + 1e-3 * scale)
          << "param " << i << "[" << k << "]";
    }
  }
  ASSERT_EQ(s0.size(), s1.size());
  for (size_t i = 0; i < s0.size(); ++i) {
    for (int64_t k = 0; k < s0[i].numel(); ++k) {
      ASSERT_NEAR(s0[i].f32()[k], s1[i].f32()[k], 1e-5 * (1 + std::abs(s0[i].f32()[k])));
    }
  }
}

}  // namespace
}  // namespace minnow
