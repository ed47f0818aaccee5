// BatchNormDepthwiseConv (the training session's fused BatchNorm [+ ReLU/ReLU6] -> depthwise
// Conv2d [-> BatchNorm [+ ReLU/ReLU6]]): the fused fast kernel against the reference (BatchNorm's
// and Conv2d's own reference kernels in sequence), forward, running statistics and every
// gradient, in training and eval mode; the reference gradient against finite differences; shape
// errors.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "dense_test_util.h"
#include "minnow/error.h"
#include "op_harness.h"

namespace minnow::testing {
namespace {

struct Geometry {
  Shape x;  // [N, C, H, W]
  int64_t stride;
  std::string activation;  // "" none, "relu", "relu6"
  bool bias;
  std::string post = "";  // the trailing BatchNorm: "" none; "linear", "relu", "relu6"
};

Node fused_node(const Geometry& g) {
  Node n = dense::node(OpKind::kBatchNormDepthwiseConv,
                       {{"momentum", 0.1},
                        {"epsilon", 1e-5},
                        {"strides", std::vector<int64_t>{g.stride, g.stride}},
                        {"pads", std::vector<int64_t>{1, 1, 1, 1}},
                        {"group", g.x[1]}});
  if (!g.activation.empty()) n.attrs.set("activation", g.activation);
  if (!g.post.empty()) {
    n.attrs.set("post_momentum", 0.2);
    n.attrs.set("post_epsilon", 1e-4);
    if (g.post != "linear") n.attrs.set("post_activation", g.post);
  }
  return n;
}

// Scales up to 3 spread the normalized values over about [-9, 9]: both ReLU6 clamps are hit.
std::vector<Tensor> fused_inputs(const Geometry& g, Rng& rng) {
  const int64_t c = g.x[1];
  std::vector<Tensor> in = {
      random_tensor(g.x, rng, -2.0f, 3.0f), random_tensor({c}, rng, 0.5f, 3.0f),
      random_tensor({c}, rng, -3.0f, 3.0f), random_tensor({c}, rng),
      random_tensor({c}, rng, 0.5f, 2.0f),  random_tensor({c, 1, 3, 3}, rng)};
  if (g.bias) in.push_back(random_tensor({c}, rng));
  if (!g.post.empty()) {
    in.resize(7);  // the bias' slot stays empty without one
    for (Tensor t : {random_tensor({c}, rng, 0.5f, 3.0f), random_tensor({c}, rng, -3.0f, 3.0f),
                     random_tensor({c}, rng), random_tensor({c}, rng, 0.5f, 2.0f)}) {
      in.push_back(t);
    }
  }
  return in;
}

// The running statistics among the inputs.
std::vector<int> running_inputs(const Geometry& g) {
  if (g.post.empty()) return {3, 4};
  return {3, 4, 9, 10};
}

std::string label(const Geometry& g, bool training) {
  return shape_str(g.x) + " s" + std::to_string(g.stride) + " " +
         (g.activation.empty() ? "linear" : g.activation) + (g.bias ? " bias" : "") +
         (g.post.empty() ? "" : " then bn " + g.post) + (training ? " train" : " eval");
}

OpCase fused_case(const Geometry& g, bool training, Rng& rng) {
  OpCase c;
  c.label = label(g, training);
  c.node = fused_node(g);
  c.inputs = fused_inputs(g, rng);
  c.training = training;
  if (!g.post.empty() && g.bias && training) {
    // A bias before a BatchNorm with batch statistics has no effect: its gradient is zero up to
    // rounding, which both sides compute differently.
    c.check_grad.assign(c.inputs.size(), true);
    c.check_grad[6] = false;
  }
  return c;
}

TEST(BatchNormDepthwiseConv, FastMatchesReference) {
  Rng rng(71);
  // The fused loops: the row kernel for planes of 28x28 and more and for stride 2 from 14x14
  // (MobileNetV2's 28x28 and 14x14 stride 2, odd sizes with tails, stride 1, enough channels
  // for both threads); the flat-plane kernel for stride-1 planes up to 256 pixels (14x14, 7x7,
  // odd, batches that are not a multiple of its four planes); the rest runs BatchNorm's and
  // Conv2d's fast kernels in sequence.
  const std::vector<Geometry> cases = {{{8, 24, 28, 28}, 2, "relu6", false},
                                       {{3, 5, 29, 31}, 1, "relu", true},
                                       {{4, 6, 28, 30}, 2, "", true},
                                       {{64, 16, 28, 28}, 1, "relu6", false},
                                       {{8, 36, 14, 14}, 1, "relu6", false},
                                       {{16, 48, 7, 7}, 1, "relu6", false},
                                       {{8, 24, 14, 14}, 2, "relu6", false},
                                       {{5, 7, 15, 17}, 2, "relu", true},
                                       {{5, 4, 9, 9}, 1, "relu", true},
                                       {{7, 3, 12, 20}, 2, "", false},
                                       {{2, 3, 5, 37}, 1, "relu6", true},
                                       // With the trailing BatchNorm, on each of the three paths.
                                       {{8, 24, 28, 28}, 2, "relu6", false, "linear"},
                                       {{4, 6, 28, 30}, 2, "", true, "relu6"},
                                       {{8, 36, 14, 14}, 1, "relu6", false, "linear"},
                                       {{16, 48, 7, 7}, 1, "relu6", true, "relu"},
                                       {{8, 24, 14, 14}, 2, "relu6", false, "relu6"},
                                       {{5, 4, 9, 9}, 1, "relu", true, "linear"},
                                       {{7, 3, 12, 20}, 2, "", false, "relu6"}};
  for (const Geometry& g : cases) {
    for (bool training : {true, false}) {
      OpCase c = fused_case(g, training, rng);
      // The activation's mask is taken from float values on one side and from double ones on
      // the other: values within rounding of a kink may fall on either side, so the tolerance
      // allows for a handful of them in the reductions.
      c.fast_tolerance = 2e-4;
      // The weight gradient sums N * H * W products in float vectors (as the unfused depthwise
      // kernel does), the reference in double: 50,000 terms drift by about 1e-3 relative.
      if (g.x[0] * g.x[2] * g.x[3] > 10000) c.fast_tolerance = 1e-3;
      expect_fast_matches_reference(c);
      dense::Run ref = dense::run(c.node, c.inputs, dense::opts().train(training));
      dense::Run fast =
          dense::run(c.node, c.inputs, dense::opts().kernel(KernelChoice::kFast).train(training));
      for (int i : running_inputs(g)) {
        ASSERT_EQ(fast.inputs[i].numel(), ref.inputs[i].numel());
        for (int64_t k = 0; k < ref.inputs[i].numel(); ++k) {
          EXPECT_NEAR(fast.inputs[i].f32()[k], ref.inputs[i].f32()[k],
                      1e-5 * (1 + std::fabs(ref.inputs[i].f32()[k])))
              << c.label << " running statistic " << i << " channel " << k;
        }
      }
    }
  }
}

TEST(BatchNormDepthwiseConv, GradientMatchesFiniteDifference) {
  Rng rng(73);
  for (const Geometry& g :
       {Geometry{{2, 3, 6, 5}, 1, "", true}, Geometry{{3, 2, 7, 6}, 2, "", false},
        Geometry{{2, 3, 6, 5}, 1, "", true, "linear"},
        Geometry{{3, 2, 7, 6}, 2, "", false, "linear"}}) {
    for (bool training : {true, false}) {
      OpCase c = fused_case(g, training, rng);
      c.check_grad = {true, true, true, !training, !training, true, g.bias};
      if (!g.post.empty()) {
        for (bool b : {true, true, !training, !training}) c.check_grad.push_back(b);
      }
      c.check_grad.resize(c.inputs.size());
      c.fd_tolerance = 1e-5;
      expect_gradient_matches_finite_difference(c);
    }
  }
}

TEST(BatchNormDepthwiseConv, RejectsANonDepthwiseConvolution) {
  Rng rng(75);
  const Geometry g{{2, 4, 6, 6}, 1, "relu6", false};
  OpCase c;
  c.node = fused_node(g);
  c.node.attrs.set("group", int64_t{2});
  c.inputs = fused_inputs(g, rng);
  c.inputs[5] = random_tensor({4, 2, 3, 3}, rng);
  EXPECT_THROW(run_reference(c), Error);
}

TEST(BatchNormDepthwiseConv, RejectsAnIncompleteTrailingBatchNorm) {
  Rng rng(77);
  const Geometry g{{2, 4, 6, 6}, 1, "relu6", true, "linear"};
  OpCase c;
  c.node = fused_node(g);
  c.inputs = fused_inputs(g, rng);
  c.inputs.pop_back();  // no running variance
  EXPECT_THROW(run_reference(c), Error);
}

}  // namespace
}  // namespace minnow::testing
