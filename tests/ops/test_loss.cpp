// Losses: values and gradients against PyTorch (literals below), label smoothing 0 / 0.1 / 0.3,
// finite-difference gradients, stability for huge logits, bad labels and shapes; distillation
// (soft targets + hard labels) against PyTorch.
#include <gtest/gtest.h>

#include "dense_test_util.h"
#include "op_harness.h"

namespace minnow::testing {
namespace {

using dense::expect_values;
using dense::info;
using dense::tensor;

Node ce_node(double smoothing) {
  return dense::node(OpKind::kSoftmaxCrossEntropy, {{"label_smoothing", smoothing}});
}

// Computed with PyTorch 1.13 (Debian python3-torch), float64:
//   x = torch.tensor([[1.,2.,3.],[1.,-1.,.5]], dtype=torch.float64, requires_grad=True)
//   l = F.cross_entropy(x, torch.tensor([2, 0]), label_smoothing=s); l.backward()
struct CeExpected {
  double smoothing, loss;
  std::vector<double> grad;
};
const CeExpected kCeTorch[] = {
    {0.0,
     0.48128144204318557,
     {0.04501528658519022, 0.12236423552739882, -0.1673795221125891, -0.21295150351615272,
      0.03884778957428529, 0.1741037139418674}},
    {0.1,
     0.5729481087098522,
     {0.02834861991852355, 0.10569756886073216, -0.13404618877925578, -0.1796181701828194,
      0.02218112290761862, 0.15743704727520075}},
};

TEST(SoftmaxCrossEntropy, MatchesPyTorch) {
  for (const CeExpected& e : kCeTorch) {
    for (DType dt : {DType::kF32, DType::kF64}) {
      SCOPED_TRACE("smoothing " + std::to_string(e.smoothing));
      dense::Run r = dense::run(ce_node(e.smoothing),
                                {tensor({2, 3}, {1, 2, 3, 1, -1, 0.5}, dt), dense::labels({2, 0})},
                                dense::opts().grads({tensor({}, {1}, dt)}));
      const double tol = dt == DType::kF64 ? 1e-12 : 1e-6;
      expect_values(r.outputs[0], {e.loss}, tol, "loss");
      expect_values(r.grads[0], e.grad, tol, "dlogits");
      EXPECT_FALSE(r.grads[1].defined());  // labels are integers: no gradient
    }
  }
  // The incoming gradient scales the result.
  dense::Run r =
      dense::run(ce_node(0.0), {tensor({2, 3}, {1, 2, 3, 1, -1, 0.5}), dense::labels({2, 0})},
                 dense::opts().grads({tensor({}, {-2})}));
  std::vector<double> scaled;
  for (double g : kCeTorch[0].grad) scaled.push_back(-2 * g);
  expect_values(r.grads[0], scaled, 1e-6, "scaled dlogits");
}

// One row, label 0, smoothing s, C = 2 with logits [0, 0]: every log p = -log 2, so the loss is
// log 2 whatever s is; the gradient is (p - q) = [0.5 - (1 - s) - s/2, 0.5 - s/2].
TEST(SoftmaxCrossEntropy, HandComputed) {
  for (double s : {0.0, 0.1, 0.3}) {
    dense::Run r = dense::run(ce_node(s), {tensor({1, 2}, {0, 0}), dense::labels({0})},
                              dense::opts().grads({tensor({}, {1})}));
    expect_values(r.outputs[0], {std::log(2.0)}, 1e-6, "loss");
    expect_values(r.grads[0], {0.5 - (1 - s) - s / 2, 0.5 - s / 2}, 1e-6, "grad");
  }
  // Huge logits: log-sum-exp keeps the loss finite. Label 1 is the winner by 1000 -> loss ~0;
  // label 0 loses by 1000 -> loss 1000.
  dense::Run r =
      dense::run(ce_node(0), {tensor({2, 2}, {0, 1000, 0, 1000}), dense::labels({1, 0})});
  expect_values(r.outputs[0], {500}, 1e-6, "stable loss");
}

TEST(SoftmaxCrossEntropy, GradientMatchesFiniteDifference) {
  Rng rng(61);
  const Shape shapes[] = {{1, 3}, {5, 7}, {4, 10}, {3, 1}};
  for (double s : {0.0, 0.1, 0.3}) {
    for (const Shape& shape : shapes) {
      OpCase c;
      c.label = "ce " + shape_str(shape) + " smoothing " + std::to_string(s);
      c.node = ce_node(s);
      c.inputs = {random_tensor(shape, rng, -3, 3), random_labels(shape[0], shape[1], rng)};
      expect_gradient_matches_finite_difference(c);
    }
  }
}

TEST(SoftmaxCrossEntropy, InferShapes) {
  auto out = dense::infer(ce_node(0.1), {info({kDynamic, 10}), info({kDynamic}, DType::kI64)});
  EXPECT_EQ(out[0].shape, Shape{});
  EXPECT_EQ(out[0].dtype, DType::kF32);
  EXPECT_EQ(dense::infer(ce_node(0), {info({4, 10}, DType::kF64), info({4}, DType::kI64)})[0].dtype,
            DType::kF64);
}

TEST(SoftmaxCrossEntropy, BadInputIsAnError) {
  const ValueInfo logits = info({4, 10}), labels = info({4}, DType::kI64);
  EXPECT_THROW(dense::infer(ce_node(0), {logits, info({4})}), Error);  // f32 labels
  EXPECT_THROW(dense::infer(ce_node(0), {logits, info({4}, DType::kI32)}), Error);
  EXPECT_THROW(dense::infer(ce_node(0), {logits, info({5}, DType::kI64)}), Error);  // count
  EXPECT_THROW(dense::infer(ce_node(0), {logits, info({4, 1}, DType::kI64)}), Error);
  EXPECT_THROW(dense::infer(ce_node(0), {info({4, 10, 2}), labels}), Error);
  EXPECT_THROW(dense::infer(ce_node(0), {info({4, 10}, DType::kI64), labels}), Error);
  EXPECT_THROW(dense::infer(ce_node(1.5), {logits, labels}), Error);
  EXPECT_THROW(dense::infer(ce_node(-0.1), {logits, labels}), Error);
  // Out-of-range labels are found when the kernel runs; the message names the value.
  for (int64_t bad : {int64_t{3}, int64_t{-1}, int64_t{100}}) {
    try {
      dense::run(ce_node(0), {tensor({2, 3}, {1, 2, 3, 4, 5, 6}), dense::labels({0, bad})});
      ADD_FAILURE() << "label " << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("label " + std::to_string(bad)), std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("node_under_test"), std::string::npos) << e.what();
    }
  }
}

// ------------------------------------------------------------------------------------------
// MseLoss, BceWithLogits

// PyTorch 1.13, float64: p = [0.5,-2,3], t = [1,0,0.25];
//   F.mse_loss(p, t) and F.binary_cross_entropy_with_logits(p, t), each .backward().
TEST(MseLoss, MatchesPyTorch) {
  dense::Run r = dense::run(dense::node(OpKind::kMseLoss),
                            {tensor({3}, {0.5, -2, 3}), tensor({3}, {1, 0, 0.25})},
                            dense::opts().grads({tensor({}, {1})}));
  expect_values(r.outputs[0], {3.9375}, 1e-7, "mse");
  expect_values(r.grads[0], {-0.3333333333333333, -1.3333333333333333, 1.8333333333333333}, 1e-6,
                "d pred");
  expect_values(r.grads[1], {0.3333333333333333, 1.3333333333333333, -1.8333333333333333}, 1e-6,
                "d target");
}

TEST(BceWithLogits, MatchesPyTorch) {
  dense::Run r = dense::run(dense::node(OpKind::kBceWithLogits),
                            {tensor({3}, {0.5, -2, 3}), tensor({3}, {1, 0, 0.25})},
                            dense::opts().grads({tensor({}, {1})}));
  expect_values(r.outputs[0], {0.9665307822656071}, 1e-6, "bce");
  expect_values(r.grads[0], {-0.1258468895993818, 0.03973430734070585, 0.2341913756074778}, 1e-6,
                "d logits");
  expect_values(r.grads[1], {-0.16666666666666666, 0.6666666666666666, -1.0}, 1e-6, "d targets");
  // |x| = 1000 on both sides: finite, ~0 when right, ~1000 when wrong.
  dense::Run big = dense::run(dense::node(OpKind::kBceWithLogits),
                              {tensor({2}, {1000, -1000}), tensor({2}, {1, 1})},
                              dense::opts().grads({tensor({}, {1})}));
  expect_values(big.outputs[0], {500}, 1e-6, "stable bce");
  expect_values(big.grads[0], {0, -0.5}, 1e-6, "stable bce grad");
}

TEST(PairLosses, GradientMatchesFiniteDifference) {
  Rng rng(62);
  const Shape shapes[] = {{1}, {7}, {3, 5}, {2, 3, 4}};
  for (OpKind kind : {OpKind::kMseLoss, OpKind::kBceWithLogits}) {
    for (const Shape& s : shapes) {
      OpCase c;
      c.label = std::string(op_def(kind).name) + " " + shape_str(s);
      c.node = dense::node(kind);
      const bool bce = kind == OpKind::kBceWithLogits;
      c.inputs = {random_tensor(s, rng, -3, 3),
                  bce ? random_tensor(s, rng, 0, 1) : random_tensor(s, rng, -3, 3)};
      expect_gradient_matches_finite_difference(c);
    }
  }
}

TEST(PairLosses, InferAndBadInput) {
  for (OpKind kind : {OpKind::kMseLoss, OpKind::kBceWithLogits}) {
    Node n = dense::node(kind);
    EXPECT_EQ(dense::infer(n, {info({kDynamic, 3}), info({kDynamic, 3})})[0].shape, Shape{});
    EXPECT_THROW(dense::infer(n, {info({4, 3}), info({4, 2})}), Error);
    EXPECT_THROW(dense::infer(n, {info({4, 3}), info({12})}), Error);
    EXPECT_THROW(dense::infer(n, {info({4, 3}), info({4, 3}, DType::kF64)}), Error);
    EXPECT_THROW(dense::infer(n, {info({4, 3}, DType::kI64), info({4, 3}, DType::kI64)}), Error);
  }
}

// ------------------------------------------------------------------------------------------
// DistillationLoss

Node kd_node(double temperature, double alpha) {
  return dense::node(OpKind::kDistillationLoss, {{"temperature", temperature}, {"alpha", alpha}});
}

// PyTorch 1.13, float64, s = [[1,2,3],[1,-1,.5]], t = [[.5,2.5,1],[-1,0,2]], y = [2, 0]:
//   l = a*T*T*F.kl_div(F.log_softmax(s/T,1), F.log_softmax(t/T,1), log_target=True,
//                      reduction='batchmean') + (1-a)*F.cross_entropy(s, y); l.backward()
struct KdExpected {
  double temperature, alpha, loss;
  std::vector<double> ds, dt;
};
const KdExpected kKdTorch[] = {
    {4.0,
     0.7,
     0.7352732096750079,
     {-0.0006973788520675695, -0.11653217297262561, 0.11722955182469323, 0.1804755276570172,
      -0.055649524362452, -0.1248260032945652},
     {0.0012480646691365414, 0.1546416142048689, -0.1558896788740055, -0.20349768434058857,
      0.045047562984877505, 0.158450121355711}},
    {1.0,
     1.0,
     0.6359878020071862,
     {-0.004796537445968937, -0.2456981266288981, 0.250494664074867, 0.2660434634168143,
      -0.018249810118011953, -0.24779365329880232},
     {-0.024395205474305924, 0.18780482036171026, -0.16340961488740427, -0.06922979886600061,
      -0.016893305168432373, 0.08612310403443296}},
    // alpha 0 is plain cross-entropy (same numbers as kCeTorch[0]); the teacher has no effect.
    {2.0,
     0.0,
     0.48128144204318557,
     {0.04501528658519022, 0.12236423552739882, -0.1673795221125891, -0.21295150351615272,
      0.03884778957428529, 0.1741037139418674},
     {0, 0, 0, 0, 0, 0}},
};

TEST(DistillationLoss, MatchesPyTorch) {
  for (const KdExpected& e : kKdTorch) {
    for (DType dt : {DType::kF32, DType::kF64}) {
      SCOPED_TRACE("T " + std::to_string(e.temperature) + " alpha " + std::to_string(e.alpha));
      dense::Run r = dense::run(kd_node(e.temperature, e.alpha),
                                {tensor({2, 3}, {1, 2, 3, 1, -1, 0.5}, dt), dense::labels({2, 0}),
                                 tensor({2, 3}, {0.5, 2.5, 1, -1, 0, 2}, dt)},
                                dense::opts().grads({tensor({}, {1}, dt)}));
      const double tol = dt == DType::kF64 ? 1e-12 : 1e-6;
      expect_values(r.outputs[0], {e.loss}, tol, "loss");
      expect_values(r.grads[0], e.ds, tol, "dlogits");
      expect_values(r.grads[2], e.dt, tol, "dteacher");
      EXPECT_FALSE(r.grads[1].defined());
    }
  }
}

// A student that already equals the teacher has zero KL: with alpha 1 the loss is 0 and so is
// the gradient, however large the logits.
TEST(DistillationLoss, IdenticalLogitsGiveZero) {
  dense::Run r = dense::run(
      kd_node(3, 1),
      {tensor({2, 2}, {0, 1000, -7, 3}), dense::labels({1, 0}), tensor({2, 2}, {0, 1000, -7, 3})},
      dense::opts().grads({tensor({}, {1})}));
  expect_values(r.outputs[0], {0}, 1e-6, "loss");
  expect_values(r.grads[0], {0, 0, 0, 0}, 1e-6, "grad");
}

TEST(DistillationLoss, GradientMatchesFiniteDifference) {
  Rng rng(63);
  const Shape shapes[] = {{1, 3}, {5, 7}, {4, 10}, {3, 1}};
  for (double temperature : {1.0, 2.5, 8.0}) {
    for (double alpha : {0.0, 0.5, 1.0}) {
      for (const Shape& shape : shapes) {
        OpCase c;
        c.label = "kd " + shape_str(shape) + " T " + std::to_string(temperature) + " alpha " +
                  std::to_string(alpha);
        c.node = kd_node(temperature, alpha);
        c.inputs = {random_tensor(shape, rng, -3, 3), random_labels(shape[0], shape[1], rng),
                    random_tensor(shape, rng, -3, 3)};
        expect_gradient_matches_finite_difference(c);
      }
    }
  }
}

TEST(DistillationLoss, InferAndBadInput) {
  const ValueInfo logits = info({kDynamic, 10}), labels = info({kDynamic}, DType::kI64);
  auto out = dense::infer(kd_node(4, 0.9), {logits, labels, logits});
  EXPECT_EQ(out[0].shape, Shape{});
  EXPECT_EQ(out[0].dtype, DType::kF32);
  EXPECT_THROW(dense::infer(kd_node(4, 0.9), {logits, labels, info({kDynamic, 9})}), Error);
  EXPECT_THROW(dense::infer(kd_node(4, 0.9), {logits, labels, info({kDynamic, 10}, DType::kF64)}),
               Error);
  EXPECT_THROW(dense::infer(kd_node(4, 0.9), {logits, info({kDynamic}), logits}), Error);
  EXPECT_THROW(dense::infer(kd_node(0, 0.9), {logits, labels, logits}), Error);
  EXPECT_THROW(dense::infer(kd_node(-1, 0.9), {logits, labels, logits}), Error);
  EXPECT_THROW(dense::infer(kd_node(4, 1.5), {logits, labels, logits}), Error);
  EXPECT_THROW(dense::infer(kd_node(4, -0.1), {logits, labels, logits}), Error);
  try {
    dense::run(kd_node(2, 0.5), {tensor({2, 3}, {1, 2, 3, 4, 5, 6}), dense::labels({0, 7}),
                                 tensor({2, 3}, {1, 2, 3, 4, 5, 6})});
    ADD_FAILURE() << "label 7 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 7"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace minnow::testing
