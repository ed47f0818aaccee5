// fuse_activation: which pairs it fuses (only a producer whose single consumer is ReLU or ReLU6,
// never a graph output), that value names survive, that a training session with BatchNorm
// fusion gives the same loss, parameter gradients and running statistics as one without it, and
// that after BatchNorm folding the convolutions take the activations.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/rng.h"
#include "minnow/builder.h"
#include "minnow/zoo.h"
#include "passes/fold_batchnorm.h"
#include "passes/fuse_activation.h"
#include "train/training_session.h"
#include "training_steps.h"

namespace minnow {
namespace {

int count_op(const Graph& g, OpKind kind) {
  return static_cast<int>(
      std::count_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.op == kind; }));
}

// conv -> bn1 -> relu6 (fusable); conv -> bn2 -> relu and bn2 also feeds an add (not fusable);
// bn3 -> relu where bn3's output is a graph output too (not fusable).
Graph mixed_graph() {
  GraphBuilder b("mixed", 3);
  std::string x = b.input("input", {kDynamic, 2, 6, 6});
  std::string c1 = b.conv2d(x, 4, 3, {.pad = 1, .bias = false}, "c1");
  std::string a1 = b.activation(OpKind::kRelu6, b.batch_norm(c1, 1e-5, 0.1, "bn1"), "act1");
  std::string n2 = b.batch_norm(b.conv2d(a1, 4, 1, {.bias = false}, "c2"), 1e-5, 0.1, "bn2");
  std::string a2 = b.activation(OpKind::kRelu, n2, "act2");
  std::string s = b.op(OpKind::kAdd, {a2, n2}, {}, "add");
  std::string n3 = b.batch_norm(s, 1e-5, 0.1, "bn3");
  std::string a3 = b.activation(OpKind::kRelu, n3, "act3");
  b.output(b.linear(b.flatten(b.global_avg_pool(a3)), 3, true, "fc"));
  b.output(n3);
  return b.build();
}

TEST(FuseBatchNormActivation, FusesOnlySingleConsumerPairs) {
  Graph g = mixed_graph();
  const int bns = count_op(g, OpKind::kBatchNorm);
  EXPECT_EQ(fuse_batchnorm_activation(g), 1);
  g.validate();
  EXPECT_EQ(count_op(g, OpKind::kBatchNorm), bns);
  EXPECT_EQ(count_op(g, OpKind::kRelu6), 0);
  EXPECT_EQ(count_op(g, OpKind::kRelu), 2);
  for (const Node& n : g.nodes) {
    if (n.name == "bn1") {
      EXPECT_EQ(n.attrs.get_string("activation", ""), "relu6");
      EXPECT_EQ(n.outputs[0], "act1");  // the activation's output name survives
    } else if (n.op == OpKind::kBatchNorm) {
      EXPECT_FALSE(n.attrs.has("activation")) << n.name;
    }
  }
  EXPECT_EQ(fuse_batchnorm_activation(g), 0);  // idempotent
}

// A training step of the zoo MobileNetV2 (BN -> ReLU6 throughout) with and without the pass.
TEST(FuseBatchNormActivation, TrainingStepIsUnchanged) {
  zoo::ZooOptions zo;
  zo.input_shape = {1, 12, 12};
  Graph g = zoo::build("mobilenet_v2", zo);
  Graph fused_graph = g;
  EXPECT_GT(fuse_batchnorm_activation(fused_graph), 10);
  const auto [x, y] = testing::random_batch(6, 12, 5);

  SessionOptions plain, fused;
  plain.fuse_batchnorm_activation = plain.fuse_batchnorm_depthwise = false;
  fused.fuse_batchnorm_depthwise = false;
  const testing::StepResult r0 = testing::train_steps(g, plain, x, y),
                            r1 = testing::train_steps(g, fused, x, y);
  const float l0 = r0.loss, l1 = r1.loss;
  const std::vector<Tensor>&g0 = r0.grads, &g1 = r1.grads, &s0 = r0.statistics, &s1 = r1.statistics;
  EXPECT_NEAR(l0, l1, 1e-6);
  ASSERT_EQ(g0.size(), g1.size());
  for (size_t i = 0; i < g0.size(); ++i) {
    for (int64_t k = 0; k < g0[i].numel(); ++k) {
      ASSERT_NEAR(g0[i].f32()[k], g1[i].f32()[k], 1e-5 + 1e-4 * std::abs(g0[i].f32()[k]))
          << "param " << i << "[" << k << "]";
    }
  }
  ASSERT_EQ(s0.size(), s1.size());
  for (size_t i = 0; i < s0.size(); ++i) {
    for (int64_t k = 0; k < s0[i].numel(); ++k) ASSERT_NEAR(s0[i].f32()[k], s1[i].f32()[k], 1e-6);
  }
}

// The inference order: BatchNorm folded into the convolutions, then Conv2d -> ReLU6 fused.
TEST(FuseActivation, ConvolutionsTakeTheActivationAfterFolding) {
  zoo::ZooOptions zo;
  zo.input_shape = {1, 12, 12};
  Graph g = zoo::build("mobilenet_v2", zo);
  const int relu6 = count_op(g, OpKind::kRelu6);
  ASSERT_GT(relu6, 10);
  EXPECT_EQ(fuse_activation(g, {OpKind::kConv2d}), 0);  // BN sits between conv and ReLU6
  fold_batchnorm(g);
  EXPECT_EQ(fuse_activation(g, {OpKind::kConv2d, OpKind::kLinear}), relu6);
  g.validate();
  EXPECT_EQ(count_op(g, OpKind::kRelu6), 0);
  int fused = 0;
  for (const Node& n : g.nodes) fused += n.attrs.get_string("activation", "") == "relu6";
  EXPECT_EQ(fused, relu6);
}

}  // namespace
}  // namespace minnow
