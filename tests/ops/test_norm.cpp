// BatchNorm: values and gradients against PyTorch (literals below), the running-statistic update
// in training mode, fast vs reference over rank 2/3/4 shapes in both modes, finite-difference
// gradients through the batch statistics, and bad input.
#include <gtest/gtest.h>

#include "dense_test_util.h"
#include "op_harness.h"

namespace minnow::testing {
namespace {

using dense::expect_values;
using dense::info;
using dense::tensor;

Node bn_node(double momentum = 0.1, double eps = 1e-5) {
  return dense::node(OpKind::kBatchNorm, {{"momentum", momentum}, {"epsilon", eps}});
}

// x, scale, bias, running mean, running var (positive) for x of shape s.
std::vector<Tensor> bn_inputs(const Shape& s, Rng& rng) {
  const int64_t c = s[1];
  return {random_tensor(s, rng, -2.0f, 3.0f), random_tensor({c}, rng, 0.5f, 1.5f),
          random_tensor({c}, rng), random_tensor({c}, rng), random_tensor({c}, rng, 0.5f, 2.0f)};
}

const std::vector<Shape> kBnShapes = {
    {5, 7},        // rank 2, odd
    {2, 3},        // rank 2, smallest trainable batch
    {4, 3, 6},     // rank 3
    {2, 3, 5, 4},  // rank 4
    {1, 2, 3, 3},  // rank 4, batch 1 (statistics over the spatial dims)
    {3, 1, 1, 1},
};

// A [2,2,1,2] case computed with PyTorch 1.13 (Debian python3-torch), float64:
//   bn = torch.nn.BatchNorm2d(2, eps=1e-5, momentum=0.1).double()
//   weight [1.5,-0.5], bias [0.1,0.2], running_mean [0.5,-1], running_var [2,0.5]
//   x = [1,2,-1,0,3,5,2,4].reshape(2,2,1,2), dy = [0.5,-1,2,1,0.25,0,-0.5,1.5].reshape(2,2,1,2)
//   bn.train(); y = bn(x); y.backward(dy)   -> y, running stats, dx, dweight, dbias
//   bn.eval();  y = bn(x); y.backward(dy)   (with the updated running stats)
const std::vector<double> kX = {1, 2, -1, 0, 3, 5, 2, 4};
const std::vector<double> kDy = {0.5, -1, 2, 1, 0.25, 0, -0.5, 1.5};

TEST(BatchNorm, TrainingMatchesPyTorch) {
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    SCOPED_TRACE(choice == KernelChoice::kFast ? "fast" : "reference");
    dense::Run r =
        dense::run(bn_node(),
                   {tensor({2, 2, 1, 2}, kX), tensor({2}, {1.5, -0.5}), tensor({2}, {0.1, 0.2}),
                    tensor({2}, {0.5, -1.0}), tensor({2}, {2.0, 0.5})},
                   dense::opts().kernel(choice).train(true).grads({tensor({2, 2, 1, 2}, kDy)}));
    expect_values(
        r.outputs[0],
        {-1.6748198767132545, -0.6606370891684712, 0.7858493080225392, 0.5254718391148472,
         0.3535456983763121, 2.381911273465879, 0.0047169012994632276, -0.5160380365159207},
        1e-5, "y");
    // Running stats: mean (1-m) r + m mean_b, var with the unbiased batch variance.
    // Channel 0 sees {1,2,3,5}: mean 2.75, unbiased var 2.9166..: 0.9*0.5+0.1*2.75 = 0.725,
    // 0.9*2 + 0.1*2.91667 = 2.091667.
    expect_values(r.inputs[3], {0.7250000000000001, -0.775}, 1e-6, "running mean");
    expect_values(r.inputs[4], {2.091666666666667, 0.9416666666666667}, 1e-6, "running var");
    expect_values(
        r.grads[0],
        {0.557800591102668, -0.9562294605623511, -0.18094049042596488, 0.04413165471207061,
         0.31874315352078375, 0.0796857159388994, 0.3640872105342956, -0.22727837482040134},
        1e-5, "dx");
    expect_values(r.grads[1], {-0.0422576161476993, -1.041509875630768}, 1e-5, "dscale");
    expect_values(r.grads[2], {-0.25, 4.0}, 1e-6, "dbias");
    expect_values(r.grads[3], {0, 0}, 0, "running stats get no gradient in training");
  }
}

TEST(BatchNorm, EvalMatchesPyTorch) {
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    SCOPED_TRACE(choice == KernelChoice::kFast ? "fast" : "reference");
    dense::Run r = dense::run(
        bn_node(),
        {tensor({2, 2, 1, 2}, kX), tensor({2}, {1.5, -0.5}), tensor({2}, {0.1, 0.2}),
         tensor({2}, {0.725, -0.775}), tensor({2}, {2.091666666666667, 0.9416666666666667})},
        dense::opts().kernel(choice).train(false).grads({tensor({2, 2, 1, 2}, kDy)}));
    expect_values(r.outputs[0],
                  {0.3852178352121447, 1.42237359420134, 0.31593154640029675, -0.19931975768887888,
                   2.4595293531905353, 4.533840871168926, -1.2298223658672303, -2.2603249740455813},
                  1e-5, "y");
    expect_values(r.inputs[3], {0.725, -0.775}, 1e-7, "running mean unchanged");
    expect_values(r.inputs[4], {2.091666666666667, 0.9416666666666667}, 1e-7,
                  "running var unchanged");
    expect_values(
        r.grads[0],
        {0.5185778794945977, -1.0371557589891953, -1.0305026081783513, -0.5152513040891756,
         0.25928893974729883, 0.0, 0.2576256520445878, -0.7728769561337634},
        1e-5, "dx");
    expect_values(r.grads[1], {-0.3932548919500699, 6.2860659098879434}, 1e-5, "dscale");
    expect_values(r.grads[2], {-0.25, 4.0}, 1e-6, "dbias");
  }
}

// Rank 2, hand arithmetic: x = [1,2,3,4] in one channel, momentum 0.5, running (0, 1):
// mean 2.5, biased var 1.25 (normalization), unbiased var 5/3 (running update).
TEST(BatchNorm, Rank2RunningStatsByHand) {
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    dense::Run r = dense::run(bn_node(0.5, 0.0),
                              {tensor({4, 1}, {1, 2, 3, 4}), tensor({1}, {2}), tensor({1}, {1}),
                               tensor({1}, {0}), tensor({1}, {1})},
                              dense::opts().kernel(choice).train(true));
    const double s = std::sqrt(1.25);
    expect_values(r.outputs[0],
                  {2 * -1.5 / s + 1, 2 * -0.5 / s + 1, 2 * 0.5 / s + 1, 2 * 1.5 / s + 1}, 1e-6,
                  "y");
    expect_values(r.inputs[3], {1.25}, 1e-7, "running mean = 0.5*0 + 0.5*2.5");
    expect_values(r.inputs[4], {0.5 + 0.5 * 5.0 / 3.0}, 1e-6, "running var");
  }
}

TEST(BatchNorm, FastMatchesReference) {
  Rng rng(41);
  std::vector<Shape> shapes = kBnShapes;
  shapes.push_back({64, 300});         // rank 2, multi-threaded affine pass
  shapes.push_back({64, 16, 12, 12});  // rank 4, multi-threaded channel loops
  shapes.push_back({8, 5, 17});
  shapes.push_back({33, 24, 7, 7});  // MobileNetV2's 7x7 runs (shorter than a vector block)
  shapes.push_back({5, 7, 9, 11});   // odd everything
  // Over 8 MB: outputs written with streaming stores where the CPU has them; odd runs leave
  // unaligned heads and tails in every run.
  shapes.push_back({64, 33, 33, 31});
  // Short runs swept sample by sample, large enough for both threads.
  shapes.push_back({64, 336, 7, 7});
  for (const Shape& s : shapes) {
    for (bool training : {true, false}) {
      OpCase c;
      c.label = "bn " + shape_str(s) + (training ? " train" : " eval");
      c.node = bn_node();
      c.inputs = bn_inputs(s, rng);
      c.training = training;
      expect_fast_matches_reference(c);
      // The running statistics the fast kernel writes must match the reference too.
      dense::Run ref = dense::run(c.node, c.inputs, dense::opts().train(training));
      dense::Run fast =
          dense::run(c.node, c.inputs, dense::opts().kernel(KernelChoice::kFast).train(training));
      expect_values(fast.inputs[3], dense::values_of(ref.inputs[3]), 1e-5,
                    c.label + " running mean");
      expect_values(fast.inputs[4], dense::values_of(ref.inputs[4]), 1e-5,
                    c.label + " running var");
    }
  }
}

// Data far from zero: single-pass variance formulas would cancel catastrophically in float.
TEST(BatchNorm, FastIsAccurateForLargeOffsets) {
  Rng rng(42);
  OpCase c;
  c.label = "bn offset 1000";
  c.node = bn_node();
  c.inputs = bn_inputs({16, 4, 8, 8}, rng);
  for (int64_t i = 0; i < c.inputs[0].numel(); ++i) c.inputs[0].f32()[i] += 1000.0f;
  c.training = true;
  c.fast_tolerance = 2e-3;  // float inputs near 1000 carry ~6e-5 absolute error already
  expect_fast_matches_reference(c);
}

TEST(BatchNorm, GradientMatchesFiniteDifference) {
  Rng rng(43);
  for (const Shape& s : kBnShapes) {
    for (bool training : {true, false}) {
      OpCase c;
      c.label = "bn " + shape_str(s) + (training ? " train" : " eval");
      c.node = bn_node();
      c.inputs = bn_inputs(s, rng);
      c.training = training;
      // Eval mode also differentiates the running statistics (the output depends on them).
      c.check_grad = {true, true, true, !training, !training};
      c.fd_tolerance = 1e-5;
      expect_gradient_matches_finite_difference(c);
    }
  }
}

Node bn_act_node(const std::string& activation) {
  return dense::node(OpKind::kBatchNorm,
                     {{"momentum", 0.1}, {"epsilon", 1e-5}, {"activation", activation}});
}

// Scales up to 4 spread y over roughly [-10, 10], so both ReLU6 clamps are exercised.
std::vector<Tensor> bn_act_inputs(const Shape& s, Rng& rng) {
  std::vector<Tensor> in = bn_inputs(s, rng);
  for (int64_t i = 0; i < in[1].numel(); ++i) in[1].f32()[i] *= 3.0f;
  for (int64_t i = 0; i < in[2].numel(); ++i) in[2].f32()[i] *= 3.0f;
  return in;
}

// Nudges x until no pre-activation value (plain BatchNorm output) lies within 1e-3 of a kink
// of ReLU/ReLU6: there float and double legitimately disagree on the activation's mask.
void keep_off_kinks(std::vector<Tensor>& in, bool training) {
  for (int round = 0; round < 20; ++round) {
    dense::Run bn = dense::run(bn_node(), in, dense::opts().train(training));
    bool moved = false;
    for (int64_t i = 0; i < bn.outputs[0].numel(); ++i) {
      const double t = bn.outputs[0].f32()[i];
      if (std::abs(t) < 1e-3 || std::abs(t - 6.0) < 1e-3) {
        in[0].f32()[i] += 0.01f;
        moved = true;
      }
    }
    if (!moved) return;
  }
  FAIL() << "could not move the inputs away from the activation's kinks";
}

// The fused activation is the same as BatchNorm followed by the activation op.
TEST(BatchNorm, FusedActivationMatchesSeparateOps) {
  Rng rng(45);
  for (const char* act : {"relu", "relu6"}) {
    for (const Shape& s : {Shape{6, 5}, Shape{4, 3, 5, 6}}) {
      for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
        SCOPED_TRACE(std::string(act) + " " + shape_str(s) +
                     (choice == KernelChoice::kFast ? " fast" : " reference"));
        std::vector<Tensor> in = bn_act_inputs(s, rng);
        keep_off_kinks(in, true);
        Tensor dy = random_tensor(s, rng);
        // dense::run works on copies of the inputs, so each run starts from the same state.
        dense::Run fused =
            dense::run(bn_act_node(act), in, dense::opts().kernel(choice).train(true).grads({dy}));
        dense::Run bn = dense::run(bn_node(), in, dense::opts().kernel(choice).train(true));
        const OpKind kind = std::string(act) == "relu" ? OpKind::kRelu : OpKind::kRelu6;
        dense::Run a = dense::run(dense::node(kind), {bn.outputs[0]},
                                  dense::opts().kernel(choice).train(true).grads({dy}));
        expect_values(fused.outputs[0], dense::values_of(a.outputs[0]), 1e-5, "y");
        dense::Run bn_back =
            dense::run(bn_node(), in, dense::opts().kernel(choice).train(true).grads({a.grads[0]}));
        for (size_t i = 0; i < 3; ++i) {
          expect_values(fused.grads[i], dense::values_of(bn_back.grads[i]), 1e-4,
                        "grad " + std::to_string(i));
        }
      }
    }
  }
}

TEST(BatchNorm, FusedActivationFastMatchesReference) {
  Rng rng(46);
  for (const char* act : {"relu", "relu6"}) {
    for (const Shape& s : {Shape{64, 40}, Shape{5, 7}, Shape{3, 5, 9, 11}, Shape{64, 16, 12, 12},
                           Shape{64, 33, 33, 31}, Shape{33, 24, 7, 7}, Shape{64, 336, 7, 7}}) {
      for (bool training : {true, false}) {
        OpCase c;
        c.label = std::string("bn+") + act + " " + shape_str(s) + (training ? " train" : " eval");
        c.node = bn_act_node(act);
        c.inputs = bn_act_inputs(s, rng);
        c.training = training;
        keep_off_kinks(c.inputs, training);
        expect_fast_matches_reference(c);
      }
    }
  }
}

TEST(BatchNorm, FusedActivationGradientMatchesFiniteDifference) {
  Rng rng(47);
  for (const char* act : {"relu", "relu6"}) {
    for (const Shape& s : kBnShapes) {
      for (bool training : {true, false}) {
        OpCase c;
        c.label = std::string("bn+") + act + " " + shape_str(s) + (training ? " train" : " eval");
        c.node = bn_act_node(act);
        c.inputs = bn_act_inputs(s, rng);
        c.training = training;
        keep_off_kinks(c.inputs, training);
        c.check_grad = {true, true, true, !training, !training};
        c.fd_tolerance = 1e-5;
        expect_gradient_matches_finite_difference(c);
      }
    }
  }
}

TEST(BatchNorm, InferShapes) {
  Node n = bn_node();
  EXPECT_EQ(
      dense::infer(n, {info({kDynamic, 3, 5, 5}), info({3}), info({3}), info({3}), info({3})})[0]
          .shape,
      (Shape{kDynamic, 3, 5, 5}));
  EXPECT_EQ(
      dense::infer(n, {info({kDynamic, 3}), info({3}), info({3}), info({3}), info({3})})[0].shape,
      (Shape{kDynamic, 3}));
}

TEST(BatchNorm, BadInputIsAnError) {
  Node n = bn_node();
  auto p = [](int64_t c) { return info({c}); };
  EXPECT_THROW(dense::infer(n, {info({6}), p(6), p(6), p(6), p(6)}), Error);  // rank 1
  EXPECT_THROW(dense::infer(n, {info({2, 3, 4, 4}), p(4), p(3), p(3), p(3)}), Error);
  EXPECT_THROW(dense::infer(n, {info({2, 3, 4, 4}), p(3), p(3), p(3), info({1, 3})}), Error);
  EXPECT_THROW(dense::infer(n, {info({2, 3}), p(3), p(3), info({3}, DType::kF64), p(3)}), Error);
  EXPECT_THROW(dense::infer(n, {info({2, 3}, DType::kI64), p(3), p(3), p(3), p(3)}), Error);
  EXPECT_THROW(dense::infer(bn_node(1.5), {info({2, 3}), p(3), p(3), p(3), p(3)}), Error);
  EXPECT_THROW(dense::infer(bn_node(0.1, -1.0), {info({2, 3}), p(3), p(3), p(3), p(3)}), Error);
  EXPECT_THROW(dense::infer(bn_act_node("gelu"), {info({2, 3}), p(3), p(3), p(3), p(3)}), Error);
  // One value per channel cannot give a variance in training mode (PyTorch refuses too).
  Rng rng(44);
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    EXPECT_THROW(dense::run(n, bn_inputs({1, 3}, rng), dense::opts().kernel(choice).train(true)),
                 Error);
    EXPECT_NO_THROW(
        dense::run(n, bn_inputs({1, 3}, rng), dense::opts().kernel(choice).train(false)));
  }
}

}  // namespace
}  // namespace minnow::testing
