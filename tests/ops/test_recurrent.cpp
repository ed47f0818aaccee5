// LSTM and GRU: fast vs reference over a table of shapes (batch 1, T = 1, odd sizes, both
// directions, with and without lengths), BPTT gradients vs central finite differences in f64,
// pack_padded_sequence semantics checked against truncated sequences, and bad input.
// PyTorch golden values are in test_recurrent_golden.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "dense_test_util.h"
#include "minnow/builder.h"
#include "op_harness.h"
#include "ops/recurrent_math.h"
#include "recurrent_test_util.h"
#include "train/training_session.h"

namespace minnow::testing {
namespace {

struct RnnShape {
  int64_t n, t, f, h;
  bool bidirectional;
  std::vector<int64_t> lengths;  // empty: no lengths input
};

const std::vector<RnnShape> kShapes = {
    {1, 1, 1, 1, false, {}},         // smallest
    {1, 5, 3, 4, false, {}},         // batch 1
    {2, 1, 7, 3, true, {}},          // T = 1, bidirectional
    {3, 6, 5, 4, false, {6, 4, 1}},  // lengths incl. 1 and T
    {5, 7, 3, 5, true, {2, 7, 1, 5, 3}},
    {4, 9, 6, 8, true, {}},
    {1, 4, 2, 3, true, {3}},  // batch 1 with a short length
};

// Larger cases for fast vs reference only: oneDNN matmul primitives (>= 8 rows) and threads.
const std::vector<RnnShape> kFastOnlyShapes = {
    {17, 4, 9, 11, false, {}},
    {33, 12, 16, 24, true, {12, 1, 5, 12, 7,  3, 9, 11, 2, 12, 6,  4,  8, 10, 12, 12, 1,
                            3,  5, 7, 9,  11, 2, 4, 6,  8, 10, 12, 12, 1, 1,  2,  3}},
    {64, 5, 16, 64, false, {}},
};

int64_t gates(OpKind op) { return op == OpKind::kLstm ? 4 : 3; }

Node rnn_node(OpKind op, int64_t hidden, bool bidirectional) {
  return dense::node(op, {{"hidden_size", hidden}, {"bidirectional", int64_t{bidirectional}}});
}

std::vector<Tensor> rnn_inputs(OpKind op, const RnnShape& s, Rng& rng) {
  const int64_t rows = (s.bidirectional ? 2 : 1) * gates(op) * s.h;
  std::vector<Tensor> in = {
      random_tensor({s.n, s.t, s.f}, rng), random_tensor({rows, s.f}, rng, -0.6f, 0.6f),
      random_tensor({rows, s.h}, rng, -0.6f, 0.6f), random_tensor({rows}, rng, -0.5f, 0.5f),
      random_tensor({rows}, rng, -0.5f, 0.5f)};
  if (!s.lengths.empty()) in.push_back(dense::labels(s.lengths));
  return in;
}

OpCase rnn_case(OpKind op, const RnnShape& s, Rng& rng) {
  OpCase c;
  c.label = std::string(op_def(op).name) + " N=" + std::to_string(s.n) +
            " T=" + std::to_string(s.t) + " F=" + std::to_string(s.f) +
            " H=" + std::to_string(s.h) + (s.bidirectional ? " bi" : " uni") +
            (s.lengths.empty() ? "" : " lengths");
  c.node = rnn_node(op, s.h, s.bidirectional);
  c.inputs = rnn_inputs(op, s, rng);
  c.num_outputs = 2;
  return c;
}

class Recurrent : public ::testing::TestWithParam<OpKind> {};

TEST_P(Recurrent, FastMatchesReference) {
  Rng rng(51);
  std::vector<RnnShape> shapes = kShapes;
  shapes.insert(shapes.end(), kFastOnlyShapes.begin(), kFastOnlyShapes.end());
  for (const RnnShape& s : shapes) {
    OpCase c = rnn_case(GetParam(), s, rng);
    c.fast_tolerance = 2e-4;
    expect_fast_matches_reference(c);
  }
}

TEST_P(Recurrent, GradientMatchesFiniteDifference) {
  Rng rng(52);
  for (const RnnShape& s : kShapes) {
    OpCase c = rnn_case(GetParam(), s, rng);
    c.fd_tolerance = 1e-5;
    expect_gradient_matches_finite_difference(c, 40);
  }
}

// Gradient flowing from only one of the two outputs (the other is null, i.e. zero).
TEST_P(Recurrent, OneOutputGradient) {
  Rng rng(53);
  const RnnShape s = {3, 5, 4, 6, true, {5, 2, 3}};
  std::vector<Tensor> in = rnn_inputs(GetParam(), s, rng);
  Node n = rnn_node(GetParam(), s.h, s.bidirectional);
  Tensor dy = random_tensor({s.n, s.t, 2 * s.h}, rng);
  Tensor dh = random_tensor({s.n, 2 * s.h}, rng);
  for (int which = 0; which < 2; ++which) {
    std::vector<Tensor> g =
        which == 0 ? std::vector<Tensor>{dy, Tensor()} : std::vector<Tensor>{Tensor(), dh};
    rnn::Run ref = rnn::run(n, in, KernelChoice::kReference, g);
    rnn::Run fast = rnn::run(n, in, KernelChoice::kFast, g);
    for (size_t i = 0; i < 5; ++i) {
      dense::expect_values(fast.grads[i], dense::values_of(ref.grads[i]), 1e-4,
                           "grad " + std::to_string(i) + " seed " + std::to_string(which));
    }
  }
  // Both seeds together must give the sum of the single-seed gradients (linearity).
  rnn::Run both = rnn::run(n, in, KernelChoice::kReference, {dy, dh});
  rnn::Run only_y = rnn::run(n, in, KernelChoice::kReference, {dy, Tensor()});
  rnn::Run only_h = rnn::run(n, in, KernelChoice::kReference, {Tensor(), dh});
  for (size_t i = 0; i < 5; ++i) {
    std::vector<double> a = dense::values_of(only_y.grads[i]),
                        b = dense::values_of(only_h.grads[i]);
    for (size_t k = 0; k < a.size(); ++k) a[k] += b[k];
    dense::expect_values(both.grads[i], a, 1e-5, "linearity of grad " + std::to_string(i));
  }
}

// pack_padded_sequence semantics: sample n with length L gives the same y[:, :L] and h_last as
// running it alone, truncated to L steps, without lengths; y is zero past L.
TEST_P(Recurrent, LengthsMatchTruncatedSequences) {
  Rng rng(54);
  const RnnShape s = {4, 7, 3, 5, true, {7, 3, 1, 5}};
  std::vector<Tensor> in = rnn_inputs(GetParam(), s, rng);
  Node n = rnn_node(GetParam(), s.h, s.bidirectional);
  const int64_t w = 2 * s.h;
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    SCOPED_TRACE(choice == KernelChoice::kFast ? "fast" : "reference");
    rnn::Run all = rnn::run(n, in, choice);
    for (int64_t b = 0; b < s.n; ++b) {
      const int64_t len = s.lengths[b];
      Tensor xb(DType::kF32, {1, len, s.f});
      std::copy_n(in[0].f32() + b * s.t * s.f, len * s.f, xb.f32());
      rnn::Run one = rnn::run(n, {xb, in[1], in[2], in[3], in[4]}, choice);
      const float* y = all.outputs[0].f32() + b * s.t * w;
      for (int64_t k = 0; k < len * w; ++k) {
        EXPECT_NEAR(y[k], one.outputs[0].f32()[k], 1e-5) << "sample " << b << " y " << k;
      }
      for (int64_t k = len * w; k < s.t * w; ++k) {
        EXPECT_EQ(y[k], 0.0f) << "sample " << b << " padding " << k;
      }
      for (int64_t k = 0; k < w; ++k) {
        EXPECT_NEAR(all.outputs[1].f32()[b * w + k], one.outputs[1].f32()[k], 1e-5)
            << "sample " << b << " h_last " << k;
      }
      // h_last: forward half is y at step len-1, reverse half is y at step 0.
      for (int64_t k = 0; k < s.h; ++k) {
        EXPECT_EQ(all.outputs[1].f32()[b * w + k], y[(len - 1) * w + k]);
        EXPECT_EQ(all.outputs[1].f32()[b * w + s.h + k], y[s.h + k]);
      }
    }
  }
}

TEST_P(Recurrent, FastIsDeterministic) {
  Rng rng(55);
  const RnnShape s = {40, 6, 12, 48, true, {}};
  std::vector<Tensor> in = rnn_inputs(GetParam(), s, rng);
  Node n = rnn_node(GetParam(), s.h, s.bidirectional);
  std::vector<Tensor> g = {random_tensor({s.n, s.t, 2 * s.h}, rng),
                           random_tensor({s.n, 2 * s.h}, rng)};
  rnn::Run a = rnn::run(n, in, KernelChoice::kFast, g), b = rnn::run(n, in, KernelChoice::kFast, g);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(dense::values_of(a.grads[i]), dense::values_of(b.grads[i])) << "grad " << i;
  }
  EXPECT_EQ(dense::values_of(a.outputs[0]), dense::values_of(b.outputs[0]));
}

TEST_P(Recurrent, InferShapesAndMacs) {
  const OpKind op = GetParam();
  const int64_t g = gates(op);
  Node n = rnn_node(op, 6, true);
  n.inputs = {"x", "wi", "wh", "bi", "bh", "len"};
  n.outputs = {"y", "h"};
  ValueInfo x{"x", DType::kF32, {kDynamic, 9, 5}}, wi{"wi", DType::kF32, {2 * g * 6, 5}},
      wh{"wh", DType::kF32, {2 * g * 6, 6}}, bi{"bi", DType::kF32, {2 * g * 6}},
      bh{"bh", DType::kF32, {2 * g * 6}}, len{"len", DType::kI64, {kDynamic}};
  InputInfos in = {&x, &wi, &wh, &bi, &bh, &len};
  std::vector<ValueInfo> out(2);
  op_def(op).infer(n, in, out);
  EXPECT_EQ(out[0].shape, (Shape{kDynamic, 9, 12}));
  EXPECT_EQ(out[1].shape, (Shape{kDynamic, 12}));
  // Per sample: T * dirs * H outputs, each G * (F + H) MACs.
  EXPECT_EQ(op_def(op).macs(n, in, out), 9 * 12 * g * (5 + 6));
  x.shape[0] = 4;
  op_def(op).infer(n, in, out);
  EXPECT_EQ(op_def(op).macs(n, in, out), 4 * 9 * 12 * g * (5 + 6));
}

TEST_P(Recurrent, BadInputIsAnError) {
  const OpKind op = GetParam();
  const int64_t g = gates(op), H = 4, F = 3;
  auto infer = [&](Node n, std::vector<ValueInfo> in) {
    std::vector<ValueInfo> out(2);
    InputInfos p;
    for (ValueInfo& v : in) p.push_back(&v);
    op_def(op).infer(n, p, out);
  };
  using dense::info;
  const Node ok = rnn_node(op, H, false);
  const auto good = [&]() {
    return std::vector<ValueInfo>{info({2, 5, F}), info({g * H, F}), info({g * H, H}),
                                  info({g * H}), info({g * H})};
  };
  EXPECT_NO_THROW(infer(ok, good()));
  EXPECT_THROW(infer(rnn_node(op, 0, false), good()), Error);  // hidden_size 0
  EXPECT_THROW(infer(dense::node(op, {{"bidirectional", int64_t{0}}}), good()), Error);  // none
  EXPECT_THROW(infer(dense::node(op, {{"hidden_size", 2.5}}), good()), Error);  // not an int
  Node bad_bi = rnn_node(op, H, false);
  bad_bi.attrs.set("bidirectional", int64_t{2});
  EXPECT_THROW(infer(bad_bi, good()), Error);
  EXPECT_THROW(infer(rnn_node(op, H, true), good()), Error);  // weights for one direction only
  std::vector<ValueInfo> v = good();
  v[0] = info({2, F});  // rank 2
  EXPECT_THROW(infer(ok, v), Error);
  v = good();
  v[1] = info({g * H, F + 1});
  EXPECT_THROW(infer(ok, v), Error);
  v = good();
  v[2] = info({g * H + 1, H});
  EXPECT_THROW(infer(ok, v), Error);
  v = good();
  v[3] = info({H});
  EXPECT_THROW(infer(ok, v), Error);
  v = good();
  v[4] = info({g * H}, DType::kF64);
  EXPECT_THROW(infer(ok, v), Error);
  v = good();
  v[0] = info({2, 5, F}, DType::kI64);
  EXPECT_THROW(infer(ok, v), Error);
  v = good();
  v.push_back(info({2}, DType::kF32));  // lengths must be i64
  EXPECT_THROW(infer(ok, v), Error);
  v = good();
  v.push_back(info({3}, DType::kI64));  // lengths for 3 samples, batch 2
  EXPECT_THROW(infer(ok, v), Error);
  // Length values are checked when the kernel runs.
  Rng rng(56);
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    for (std::vector<int64_t> lens :
         {std::vector<int64_t>{0, 3}, std::vector<int64_t>{6, 3}, std::vector<int64_t>{-1, 5}}) {
      std::vector<Tensor> in = rnn_inputs(op, {2, 5, F, H, false, lens}, rng);
      EXPECT_THROW(rnn::run(ok, in, choice), Error);
    }
  }
}

// The fast kernels' vectorizable activations against libm, including saturation.
TEST(RecurrentMath, ActivationsMatchLibm) {
  double max_exp = 0, max_tanh = 0, max_sigmoid = 0;
  for (float x = -120.0f; x < 120.0f; x += 0.00731f) {
    const double e = std::exp(static_cast<double>(x));
    if (x > -80 && x < 80) {
      max_exp = std::max(max_exp, std::abs(ops::recurrent::exp_vec(x) - e) / e);
    }
    max_tanh = std::max(max_tanh, std::abs(ops::recurrent::tanh_vec(x) - std::tanh(double{x})));
    max_sigmoid = std::max(max_sigmoid, std::abs(ops::recurrent::sigmoid_vec(x) - 1 / (1 + 1 / e)));
  }
  EXPECT_LT(max_exp, 5e-7);
  EXPECT_LT(max_tanh, 5e-7);
  EXPECT_LT(max_sigmoid, 5e-7);
  EXPECT_EQ(ops::recurrent::tanh_vec(200.0f), 1.0f);
  EXPECT_EQ(ops::recurrent::tanh_vec(-200.0f), -1.0f);
  EXPECT_EQ(ops::recurrent::sigmoid_vec(-200.0f) < 1e-30f, true);
}

// GraphBuilder::lstm/gru in a model (bi-LSTM -> GRU on its y -> Linear on the GRU's h_last)
// trained by the session with lengths: parameter names and shapes, and parameter gradients
// against central differences of the session's own loss (f32, loose tolerance).
TEST(RecurrentBuilder, ModelGradientsMatchFiniteDifferences) {
  GraphBuilder b("rnn", 12);
  std::string x = b.input("input", {kDynamic, 5, 3});
  std::string len = b.input("lengths", {kDynamic}, DType::kI64);
  std::vector<std::string> l = b.lstm(x, 4, true, len, "enc");
  std::vector<std::string> g = b.gru(l[0], 3, false, len);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(b.info(l[0]).shape, (Shape{kDynamic, 5, 8}));
  EXPECT_EQ(b.info(g[1]).shape, (Shape{kDynamic, 3}));
  b.output(b.linear(g[1], 3, true, "head"));
  Graph model = b.build();
  ASSERT_TRUE(model.initializers.count("enc.weight_ih"));
  EXPECT_EQ(model.initializers.at("enc.weight_ih").value.shape(), (Shape{32, 3}));
  EXPECT_EQ(model.initializers.at("enc.bias_hh").value.shape(), (Shape{32}));
  ASSERT_TRUE(model.initializers.count("gru1.weight_hh"));
  EXPECT_EQ(model.initializers.at("gru1.weight_hh").value.shape(), (Shape{9, 3}));
  for (float v : dense::values_of(model.initializers.at("gru1.weight_hh").value)) {
    EXPECT_LE(std::abs(v), 1 / std::sqrt(3.0f));  // U(-1/sqrt(H), 1/sqrt(H))
  }
  Rng rng(5);
  Tensor xs = random_tensor({4, 5, 3}, rng);
  Tensor lens = dense::labels({5, 2, 4, 1});
  Tensor ys = dense::labels({0, 2, 1, 2});
  TrainingSession session(model, SessionOptions{});
  Rng step_rng(0);
  session.train_step(xs, ys, step_rng, lens);
  ASSERT_EQ(session.params().size(), 10u);
  for (ParamRef& p : session.params()) {
    Tensor analytic = p.grad.clone();
    for (int64_t i = 0; i < p.value.numel(); i += 5) {
      const float saved = p.value.f32()[i];
      const float eps = 1e-2f;
      p.value.f32()[i] = saved + eps;
      const double lp = session.evaluate(xs, ys, lens);
      p.value.f32()[i] = saved - eps;
      const double lm = session.evaluate(xs, ys, lens);
      p.value.f32()[i] = saved;
      const double numeric = (lp - lm) / (2 * eps);
      EXPECT_NEAR(analytic.f32()[i], numeric, 2e-3 + 2e-2 * std::abs(numeric))
          << p.name << "[" << i << "]";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, Recurrent, ::testing::Values(OpKind::kLstm, OpKind::kGru),
                         [](const ::testing::TestParamInfo<OpKind>& p) {
                           return std::string(op_def(p.param).name);
                         });

}  // namespace
}  // namespace minnow::testing
