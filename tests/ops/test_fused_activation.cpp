// The activation attribute of Conv2d and Linear (set by passes/fuse_activation): the fused op
// equals the op followed by ReLU/ReLU6 (values and gradients, both kernels), fast matches
// reference, gradients match finite differences away from the kinks, bad values are errors.
// (BatchNorm's fused activation is tested in test_norm.cpp.)
#include <gtest/gtest.h>

#include <cmath>

#include "dense_test_util.h"
#include "op_harness.h"

namespace minnow::testing {
namespace {

using dense::expect_values;

struct FusedCase {
  std::string label;
  Node node;
  Shape x, w;  // bias [w[0]]
};

std::vector<FusedCase> cases() {
  Node conv = dense::node(OpKind::kConv2d);
  conv.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  Node dw = conv;
  dw.attrs.set("group", int64_t{3});
  dw.attrs.set("strides", std::vector<int64_t>{2, 2});
  return {{"conv 3x3 pad 1", conv, {2, 3, 6, 5}, {4, 3, 3, 3}},
          {"depthwise 3x3 stride 2", dw, {2, 3, 7, 7}, {3, 1, 3, 3}},
          {"conv batch 16 28x28 (parallel clamp)", conv, {16, 2, 28, 28}, {8, 2, 3, 3}},
          {"linear", dense::node(OpKind::kLinear), {5, 7}, {6, 7}}};
}

Node with_activation(Node n, const std::string& act) {
  n.attrs.set("activation", act);
  return n;
}

// Random values on a grid of 1/8; the bias on 1/64 plus 1/128. Every product and sum is then
// exact in float, and every output is k/64 + 1/128: at least 1/128 from the kinks at 0 and 6,
// so the activation's mask is unambiguous and finite differences never straddle a kink.
Tensor on_grid(const Shape& shape, Rng& rng, float lo, float hi, float step, float offset) {
  Tensor t = random_tensor(shape, rng, lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) {
    t.f32()[i] = std::round(t.f32()[i] / step) * step + offset;
  }
  return t;
}

std::vector<Tensor> inputs_off_kinks(const FusedCase& fc, uint64_t seed) {
  Rng rng(seed);
  return {on_grid(fc.x, rng, -2.0f, 2.0f, 0.125f, 0.0f),
          on_grid(fc.w, rng, -1.5f, 1.5f, 0.125f, 0.0f),
          on_grid({fc.w[0]}, rng, -1.0f, 3.0f, 1.0f / 64, 1.0f / 128)};
}

TEST(FusedActivation, EqualsTheOpFollowedByTheActivation) {
  for (const FusedCase& fc : cases()) {
    for (const char* act : {"relu", "relu6"}) {
      for (KernelChoice k : {KernelChoice::kReference, KernelChoice::kFast}) {
        SCOPED_TRACE(fc.label + " + " + act + (k == KernelChoice::kFast ? " fast" : " ref"));
        std::vector<Tensor> in = inputs_off_kinks(fc, 11);
        ASSERT_FALSE(in.empty());
        Rng rng(3);
        dense::Run plain = dense::run(fc.node, in, dense::opts().kernel(k));
        Tensor dy = random_tensor(plain.outputs[0].shape(), rng);
        dense::Run fused =
            dense::run(with_activation(fc.node, act), in, dense::opts().kernel(k).grads({dy}));
        const OpKind kind = std::string(act) == "relu" ? OpKind::kRelu : OpKind::kRelu6;
        dense::Run a =
            dense::run(dense::node(kind), {plain.outputs[0]}, dense::opts().kernel(k).grads({dy}));
        expect_values(fused.outputs[0], dense::values_of(a.outputs[0]), 1e-5, "y");
        dense::Run back = dense::run(fc.node, in, dense::opts().kernel(k).grads({a.grads[0]}));
        for (size_t i = 0; i < 3; ++i) {
          expect_values(fused.grads[i], dense::values_of(back.grads[i]), 1e-4,
                        "grad " + std::to_string(i));
        }
      }
    }
  }
}

TEST(FusedActivation, FastMatchesReferenceAndFiniteDifferences) {
  for (const FusedCase& fc : cases()) {
    for (const char* act : {"relu", "relu6"}) {
      OpCase c;
      c.label = fc.label + " + " + act;
      c.node = with_activation(fc.node, act);
      c.inputs = inputs_off_kinks(fc, 50);
      ASSERT_FALSE(c.inputs.empty());
      expect_fast_matches_reference(c);
      if (fc.x[0] <= 2 || fc.x.size() == 2) expect_gradient_matches_finite_difference(c, 40);
    }
  }
}

TEST(FusedActivation, UnknownActivationIsAnError) {
  for (const FusedCase& fc : cases()) {
    EXPECT_THROW(dense::infer(with_activation(fc.node, "swish"),
                              {dense::info(fc.x), dense::info(fc.w), dense::info({fc.w[0]})}),
                 Error)
        << fc.label;
  }
}

}  // namespace
}  // namespace minnow::testing
