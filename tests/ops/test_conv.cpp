// Conv2d: table of shapes through the harness (fast vs reference, gradients vs finite
// differences), every fast strategy against the reference, hand-computed values, shape
// inference, MACs and bad input.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "kernels/conv_algo.h"
#include "kernels/conv_depthwise3x3.h"
#include "kernels/conv_depthwise_plane.h"
#include "kernels/conv_nhwc.h"
#include "kernels/conv_reference.h"
#include "minnow/error.h"
#include "op_harness.h"

namespace minnow {
namespace {

using kernels::ConvGeometry;
using testing::OpCase;

struct ConvSpec {
  std::string label;
  Shape x, w;
  bool bias = true;
  std::vector<int64_t> strides{1, 1}, pads{0, 0, 0, 0}, dilations{1, 1};
  int64_t group = 1;
  bool grad_x = true;  // false: like a first layer, backward-data is skipped
};

Node conv_node(const ConvSpec& s) {
  Node n;
  n.op = OpKind::kConv2d;
  n.attrs.set("strides", s.strides);
  n.attrs.set("pads", s.pads);
  n.attrs.set("dilations", s.dilations);
  n.attrs.set("group", s.group);
  return n;
}

OpCase conv_case(const ConvSpec& s, uint64_t seed) {
  Rng rng(seed);
  OpCase c;
  c.label = s.label;
  c.node = conv_node(s);
  c.inputs = {testing::random_tensor(s.x, rng), testing::random_tensor(s.w, rng)};
  if (s.bias) c.inputs.push_back(testing::random_tensor({s.w[0]}, rng));
  c.check_grad = {s.grad_x, true, true};
  return c;
}

const std::vector<ConvSpec>& small_cases() {
  static const std::vector<ConvSpec> cases = {
      {"lenet conv1 1->6 5x5 pad 2, no dx",
       {2, 1, 28, 28},
       {6, 1, 5, 5},
       true,
       {1, 1},
       {2, 2, 2, 2},
       {1, 1},
       1,
       false},
      {"lenet conv2 6->16 5x5", {2, 6, 14, 14}, {16, 6, 5, 5}},
      {"batch 1 3x3 pad 1", {1, 3, 5, 5}, {4, 3, 3, 3}, true, {1, 1}, {1, 1, 1, 1}},
      {"odd 7x9 input, 3x2 kernel, no bias", {2, 3, 7, 9}, {5, 3, 3, 2}, false},
      {"stride 2 pad 1", {2, 4, 9, 8}, {6, 4, 3, 3}, true, {2, 2}, {1, 1, 1, 1}},
      {"asymmetric pads t1 l0 b2 r1", {2, 3, 6, 7}, {4, 3, 3, 3}, true, {1, 1}, {1, 0, 2, 1}},
      {"dilation 2 pad 2", {2, 3, 9, 9}, {4, 3, 3, 3}, true, {1, 1}, {2, 2, 2, 2}, {2, 2}},
      {"stride (2,1) dilation (1,2) no bias",
       {2, 2, 8, 9},
       {3, 2, 3, 2},
       false,
       {2, 1},
       {0, 1, 1, 0},
       {1, 2}},
      {"groups=2", {2, 4, 6, 6}, {6, 2, 3, 3}, true, {1, 1}, {1, 1, 1, 1}, {1, 1}, 2},
      {"groups=3 stride 2 no bias",
       {3, 6, 7, 7},
       {9, 2, 3, 3},
       false,
       {2, 2},
       {0, 0, 0, 0},
       {1, 1},
       3},
      {"depthwise 3x3 pad 1", {2, 5, 7, 7}, {5, 1, 3, 3}, true, {1, 1}, {1, 1, 1, 1}, {1, 1}, 5},
      {"depthwise 3x3 stride 2", {2, 6, 8, 8}, {6, 1, 3, 3}, true, {2, 2}, {1, 1, 1, 1}, {1, 1}, 6},
      // Flat-plane kernel: one pixel, one row, one column, planes ending inside a vector and
      // exactly on one (16x16), vectors that start mid-row.
      {"depthwise 3x3 1x1 plane",
       {3, 4, 1, 1},
       {4, 1, 3, 3},
       true,
       {1, 1},
       {1, 1, 1, 1},
       {1, 1},
       4},
      {"depthwise 3x3 1x19 row",
       {2, 3, 1, 19},
       {3, 1, 3, 3},
       true,
       {1, 1},
       {1, 1, 1, 1},
       {1, 1},
       3},
      {"depthwise 3x3 13x1 column",
       {2, 3, 13, 1},
       {3, 1, 3, 3},
       false,
       {1, 1},
       {1, 1, 1, 1},
       {1, 1},
       3},
      {"depthwise 3x3 5x3", {4, 5, 5, 3}, {5, 1, 3, 3}, true, {1, 1}, {1, 1, 1, 1}, {1, 1}, 5},
      {"depthwise 3x3 16x16", {2, 3, 16, 16}, {3, 1, 3, 3}, true, {1, 1}, {1, 1, 1, 1}, {1, 1}, 3},
      {"depthwise 3x3 11x13 no bias",
       {3, 2, 11, 13},
       {2, 1, 3, 3},
       false,
       {1, 1},
       {1, 1, 1, 1},
       {1, 1},
       2},
      {"depthwise 3x3 stride 2, 7x7 no bias",
       {3, 4, 7, 7},
       {4, 1, 3, 3},
       false,
       {2, 2},
       {1, 1, 1, 1},
       {1, 1},
       4},
      // Rows wider than one 16-lane vector, odd sizes, pads 0 and 2 and asymmetric pads: the
      // AVX-512 3x3 kernel's masks and its stride-2 even/odd permutes at every border.
      {"depthwise 3x3 wide 37x35 pad 1",
       {2, 3, 37, 35},
       {3, 1, 3, 3},
       true,
       {1, 1},
       {1, 1, 1, 1},
       {1, 1},
       3},
      {"depthwise 3x3 stride 2 wide 36x37 pad 1",
       {2, 3, 36, 37},
       {3, 1, 3, 3},
       true,
       {2, 2},
       {1, 1, 1, 1},
       {1, 1},
       3},
      {"depthwise 3x3 stride 2 pad 0 odd 33x34",
       {2, 2, 33, 34},
       {2, 1, 3, 3},
       false,
       {2, 2},
       {0, 0, 0, 0},
       {1, 1},
       2},
      {"depthwise 3x3 stride 2 pad 2 asymmetric",
       {1, 2, 19, 17},
       {2, 1, 3, 3},
       true,
       {2, 2},
       {2, 1, 0, 2},
       {1, 1},
       2},
      {"depthwise 3x3 pad 0 asymmetric 18x20",
       {2, 2, 18, 20},
       {2, 1, 3, 3},
       true,
       {1, 1},
       {0, 2, 1, 0},
       {1, 1},
       2},
      {"depthwise 3x3 tiny 2x2 stride 2 pad 1",
       {3, 2, 2, 2},
       {2, 1, 3, 3},
       true,
       {2, 2},
       {1, 1, 1, 1},
       {1, 1},
       2},
      {"depthwise 5x5 dilation 2",
       {2, 3, 9, 9},
       {3, 1, 5, 5},
       true,
       {1, 1},
       {4, 4, 4, 4},
       {2, 2},
       3},
      {"depthwise multiplier 2 (group=C, O=2C)",
       {2, 3, 6, 6},
       {6, 1, 3, 3},
       true,
       {1, 1},
       {1, 1, 1, 1},
       {1, 1},
       3},
      {"depthwise 3x3 batch 1, 1 channel, 1x1 input pad 1",
       {1, 1, 1, 1},
       {1, 1, 3, 3},
       true,
       {1, 1},
       {1, 1, 1, 1},
       {1, 1},
       1},
      {"depthwise 3x3 stride 2 odd 9x11, asymmetric pads t0 l1 b1 r0",
       {2, 3, 9, 11},
       {3, 1, 3, 3},
       true,
       {2, 2},
       {0, 1, 1, 0},
       {1, 1},
       3},
      {"depthwise 3x2 kernel stride (1,3) no pad",
       {1, 2, 6, 10},
       {2, 1, 3, 2},
       false,
       {1, 3},
       {0, 0, 0, 0},
       {1, 1},
       2},
      {"depthwise 3x3 stride 3 pad 2 dilation (2,1)",
       {2, 2, 10, 8},
       {2, 1, 3, 3},
       true,
       {3, 3},
       {2, 2, 2, 2},
       {2, 1},
       2},
      {"depthwise 1x1", {2, 4, 3, 5}, {4, 1, 1, 1}, true, {1, 1}, {0, 0, 0, 0}, {1, 1}, 4},
      {"1x1", {2, 8, 5, 5}, {12, 8, 1, 1}},
      {"1x1 no bias batch 1", {1, 7, 3, 5}, {4, 7, 1, 1}, false},
      {"1x1 stride 2", {2, 8, 7, 7}, {4, 8, 1, 1}, true, {2, 2}},
      {"1x1 groups=2", {2, 8, 4, 4}, {6, 4, 1, 1}, true, {1, 1}, {0, 0, 0, 0}, {1, 1}, 2},
      {"kernel equals padded input", {2, 2, 3, 3}, {3, 2, 5, 5}, true, {1, 1}, {1, 1, 1, 1}},
  };
  return cases;
}

// Larger, training-sized shapes: fast vs reference only (the f64 gradient check would be slow).
const std::vector<ConvSpec>& large_cases() {
  static const std::vector<ConvSpec> cases = {
      {"lenet conv1 batch 64",
       {64, 1, 28, 28},
       {6, 1, 5, 5},
       true,
       {1, 1},
       {2, 2, 2, 2},
       {1, 1},
       1,
       false},
      {"lenet conv2 batch 64", {64, 6, 14, 14}, {16, 6, 5, 5}},
      {"lenet conv2 batch 33", {33, 6, 14, 14}, {16, 6, 5, 5}},
      {"mbv2 depthwise 32 14x14",
       {8, 32, 14, 14},
       {32, 1, 3, 3},
       true,
       {1, 1},
       {1, 1, 1, 1},
       {1, 1},
       32},
      {"mbv2 depthwise 48 s2 15x15",
       {5, 48, 15, 15},
       {48, 1, 3, 3},
       false,
       {2, 2},
       {1, 1, 1, 1},
       {1, 1},
       48},
      // Stride 2 with padding 1 up to 32 columns runs backward-data's direct even/odd form;
      // wider rows and other paddings the gather (conv_depthwise3x3.cpp).
      {"depthwise s2 31 wide, no bottom/right padding",
       {2, 3, 11, 31},
       {3, 1, 3, 3},
       true,
       {2, 2},
       {1, 1, 0, 0},
       {1, 1},
       3},
      {"depthwise s2 32 wide", {1, 2, 6, 32}, {2, 1, 3, 3}, false, {2, 2}, {1, 1, 1, 1}, {1, 1}, 2},
      {"depthwise s2 33 wide", {1, 2, 5, 33}, {2, 1, 3, 3}, false, {2, 2}, {1, 1, 1, 1}, {1, 1}, 2},
      {"depthwise s2 pad 2", {2, 2, 9, 10}, {2, 1, 3, 3}, true, {2, 2}, {2, 2, 2, 2}, {1, 1}, 2},
      {"depthwise s2 no padding",
       {2, 2, 9, 9},
       {2, 1, 3, 3},
       true,
       {2, 2},
       {0, 0, 0, 0},
       {1, 1},
       2},
      {"depthwise s2 1 row", {1, 2, 1, 17}, {2, 1, 3, 3}, true, {2, 2}, {1, 1, 1, 1}, {1, 1}, 2},
      {"mbv2 depthwise 96 s2 28x28 batch 16",
       {16, 96, 28, 28},
       {96, 1, 3, 3},
       false,
       {2, 2},
       {1, 1, 1, 1},
       {1, 1},
       96},
      {"mbv2 depthwise 192 7x7 batch 17",
       {17, 192, 7, 7},
       {192, 1, 3, 3},
       false,
       {1, 1},
       {1, 1, 1, 1},
       {1, 1},
       192},
      {"mbv2 pointwise 24->144 7x7", {9, 24, 7, 7}, {144, 24, 1, 1}, false},
      {"mbv2 pointwise 96->24 14x14", {4, 96, 14, 14}, {24, 96, 1, 1}},
      // Several packed sample groups per thread, the last one partial (ConvGemm's pointwise
      // weight gradient packs 64K floats of dy and x per GEMM: 4 samples here).
      {"pointwise 64->48 12x12 batch 11", {11, 64, 12, 12}, {48, 64, 1, 1}},
      {"stem 3->16 3x3 s2", {6, 3, 17, 17}, {16, 3, 3, 3}, true, {2, 2}, {1, 1, 1, 1}},
  };
  return cases;
}

TEST(Conv2d, FastMatchesReference) {
  uint64_t seed = 1;
  for (const ConvSpec& s : small_cases())
    testing::expect_fast_matches_reference(conv_case(s, seed++));
  for (const ConvSpec& s : large_cases()) {
    OpCase c = conv_case(s, seed++);
    // Sums over 50k products: the f32 reference itself is only this accurate.
    c.fast_tolerance = 1e-3;
    testing::expect_fast_matches_reference(c);
  }
}

TEST(Conv2d, GradientMatchesFiniteDifferences) {
  uint64_t seed = 100;
  for (const ConvSpec& s : small_cases()) {
    testing::expect_gradient_matches_finite_difference(conv_case(s, seed++), 40);
  }
}

// Input 3, `sum` (a fused residual Add): y = act(conv(x) + b + sum), with and without a fused
// ReLU6 and bias; fast against reference, and the gradient of every input including the sum.
TEST(Conv2d, FusedSumInput) {
  uint64_t seed = 300;
  for (const ConvSpec& s : small_cases()) {
    for (const char* act : {"", "relu6"}) {
      OpCase c = conv_case(s, seed++);
      if (*act) c.node.attrs.set("activation", std::string(act));
      const int64_t oh =
          (s.x[2] + s.pads[0] + s.pads[2] - s.dilations[0] * (s.w[2] - 1) - 1) / s.strides[0] + 1;
      const int64_t ow =
          (s.x[3] + s.pads[1] + s.pads[3] - s.dilations[1] * (s.w[3] - 1) - 1) / s.strides[1] + 1;
      Rng rng(seed);
      if (!s.bias) c.inputs.push_back(Tensor());  // absent bias
      c.inputs.push_back(testing::random_tensor({s.x[0], s.w[0], oh, ow}, rng));
      c.check_grad = {s.grad_x, true, s.bias, true};
      SCOPED_TRACE(s.label + " " + act);
      testing::expect_fast_matches_reference(c);
      testing::expect_gradient_matches_finite_difference(c, 30);
    }
  }
}

// channels_last = 1 (inference only): x and y NHWC; the same values as NCHW, fused sum and
// activation included, for both kernels.
TEST(Conv2d, ChannelsLastMatchesNchw) {
  uint64_t seed = 400;
  auto nhwc = [](const Tensor& t) {
    Tensor o(t.dtype(), {t.dim(0), t.dim(2), t.dim(3), t.dim(1)});
    for (int64_t n = 0; n < t.dim(0); ++n)
      for (int64_t c = 0; c < t.dim(1); ++c)
        for (int64_t h = 0; h < t.dim(2); ++h)
          for (int64_t w = 0; w < t.dim(3); ++w)
            o.f32()[((n * t.dim(2) + h) * t.dim(3) + w) * t.dim(1) + c] =
                t.f32()[((n * t.dim(1) + c) * t.dim(2) + h) * t.dim(3) + w];
    return o;
  };
  for (const ConvSpec& s : small_cases()) {
    SCOPED_TRACE(s.label);
    OpCase c = conv_case(s, seed++);
    c.node.attrs.set("activation", std::string("relu"));
    const Tensor plain = testing::run_reference(c)[0];
    Rng rng(seed);
    const Tensor sum = testing::random_tensor(plain.shape(), rng);
    if (!s.bias) c.inputs.push_back(Tensor());
    c.inputs.push_back(sum);
    const Tensor want = nhwc(testing::run_reference(c)[0]);
    OpCase cl = c;
    cl.node.attrs.set("channels_last", int64_t{1});
    cl.inputs[0] = nhwc(c.inputs[0]);
    cl.inputs.back() = nhwc(sum);
    for (KernelChoice k : {KernelChoice::kReference, KernelChoice::kFast}) {
      const Tensor got = testing::run_forward(cl, k)[0];
      ASSERT_EQ(got.shape(), want.shape());
      for (int64_t i = 0; i < got.numel(); ++i) {
        ASSERT_NEAR(got.f32()[i], want.f32()[i], 1e-4 * (1 + std::fabs(want.f32()[i]))) << i;
      }
    }
  }
}

ConvGeometry geometry_of(const ConvSpec& s) {
  ConvGeometry g;
  g.n = s.x[0];
  g.c = s.x[1];
  g.h = s.x[2];
  g.w = s.x[3];
  g.o = s.w[0];
  g.kh = s.w[2];
  g.kw = s.w[3];
  g.sh = s.strides[0];
  g.sw = s.strides[1];
  g.pt = s.pads[0];
  g.pl = s.pads[1];
  g.pb = s.pads[2];
  g.pr = s.pads[3];
  g.dh = s.dilations[0];
  g.dw = s.dilations[1];
  g.group = s.group;
  g.has_bias = s.bias;
  return g;
}

void expect_near_all(const std::vector<float>& got, const std::vector<float>& want,
                     const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i) {
    if (std::abs(got[i] - want[i]) > 2e-4 * (1 + std::abs(want[i]))) {
      ADD_FAILURE() << what << " element " << i << ": " << got[i] << " vs " << want[i];
      ++bad;
    }
  }
}

// Every strategy the fast kernel may pick, whether or not it is picked for these shapes today.
TEST(Conv2d, EveryStrategyMatchesReference) {
  std::vector<ConvSpec> specs = small_cases();
  for (const ConvSpec& s : large_cases()) specs.push_back(s);
  for (const ConvSpec& s : specs) {
    ConvGeometry g = geometry_of(s);
    Rng rng(5);
    auto rand = [&](int64_t n) {
      std::vector<float> v(n);
      for (float& f : v) f = rng.uniform(-1, 1);
      return v;
    };
    std::vector<float> x = rand(g.n * g.c * g.h * g.w), w = rand(g.o * g.col_rows()), b = rand(g.o),
                       dy = rand(g.n * g.o * g.ohw());
    std::vector<float> y(dy.size()), dx(x.size()), dw(w.size()), db(g.o);
    const float* bp = s.bias ? b.data() : nullptr;
    kernels::conv_forward_reference<float>(g, x.data(), w.data(), bp, y.data());
    kernels::conv_backward_reference<float>(g, x.data(), w.data(), dy.data(), dx.data(), dw.data(),
                                            db.data());
    std::vector<std::unique_ptr<kernels::ConvAlgo>> algos;
    using S = kernels::ConvStrategy;
    for (S st : {S::kGemm, S::kDnnlPlain, S::kDnnlAny}) {
      algos.push_back(kernels::make_conv_strategy(g, st));
    }
    if (g.is_depthwise()) algos.push_back(kernels::make_conv_strategy(g, S::kDepthwise));
    if (kernels::ConvDepthwise3x3::supports(g)) {
      algos.push_back(kernels::make_conv_strategy(g, S::kDepthwise3x3));
    }
    if (kernels::ConvDepthwisePlane::supports(g)) {
      algos.push_back(kernels::make_conv_strategy(g, S::kDepthwisePlane));
    }
    algos.push_back(kernels::make_conv_plan(g, S::kDnnlAny, S::kGemm, S::kDnnlPlain));
    algos.push_back(kernels::choose_conv_algo(g));
    for (auto& a : algos) {
      SCOPED_TRACE(s.label + " / " + a->name());
      std::vector<float> y2(y.size()), dx2(dx.size()), dw2(dw.size()), db2(db.size(), 7.0f);
      a->forward(x.data(), w.data(), bp, y2.data(), /*training=*/true);
      a->backward_data(dy.data(), w.data(), dx2.data());
      a->backward_weights(x.data(), dy.data(), dw2.data(), db2.data());
      expect_near_all(y2, y, "y");
      expect_near_all(dx2, dx, "dx");
      expect_near_all(dw2, dw, "dw");
      if (s.bias) expect_near_all(db2, db, "db");
      // Inference forward on other data, then backward on x: state kept by the training
      // forward (saved columns, reordered x) must not be used for the wrong input.
      std::vector<float> x_other = rand(x.size()), dw3(dw.size());
      a->forward(x_other.data(), w.data(), bp, y2.data(), /*training=*/false);
      a->backward_weights(x.data(), dy.data(), dw3.data(), nullptr);
      expect_near_all(dw3, dw, "dw (after an inference forward, no db)");
      // Both passes in one call (ConvFast's path), with and without dx.
      std::vector<float> dx4(dx.size()), dw4(dw.size()), db4(db.size(), 7.0f);
      a->forward(x.data(), w.data(), bp, y2.data(), /*training=*/true);
      a->backward(x.data(), dy.data(), w.data(), dx4.data(), dw4.data(), db4.data());
      expect_near_all(dx4, dx, "dx (fused backward)");
      expect_near_all(dw4, dw, "dw (fused backward)");
      if (s.bias) expect_near_all(db4, db, "db (fused backward)");
      a->backward(x.data(), dy.data(), w.data(), nullptr, dw4.data(), nullptr);
      expect_near_all(dw4, dw, "dw (fused backward, no dx)");
    }
  }
}

// The channels-last inference kernel may run any of oneDNN's candidate implementations (the
// fastest measured one for small layers): each must compute the reference's values, with the
// residual sum and the ReLU6 clamp fused.
TEST(Conv2d, EveryChannelsLastImplementationMatchesReference) {
  const std::vector<ConvSpec> specs = {
      {"stem 1->8 3x3", {1, 1, 12, 12}, {8, 1, 3, 3}, true, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1},
      {"depthwise 24 3x3", {1, 24, 10, 10}, {24, 1, 3, 3}, false, {1, 1}, {1, 1, 1, 1}, {1, 1}, 24},
      {"depthwise 40 3x3 s2", {2, 40, 9, 9}, {40, 1, 3, 3}, true, {2, 2}, {1, 1, 1, 1}, {1, 1}, 40},
      {"pointwise 8->40", {1, 8, 7, 7}, {40, 8, 1, 1}, true, {1, 1}, {0, 0, 0, 0}, {1, 1}, 1}};
  int impls_tested = 0;
  for (const ConvSpec& s : specs) {
    const ConvGeometry g = geometry_of(s);
    Rng rng(9);
    auto rand = [&](int64_t n) {
      std::vector<float> v(n);
      for (float& f : v) f = rng.uniform(-2, 2);
      return v;
    };
    const int64_t hw = g.h * g.w, ohw = g.ohw();
    std::vector<float> x = rand(g.n * g.c * hw), w = rand(g.o * g.col_rows()), b = rand(g.o),
                       sum = rand(g.n * g.o * ohw), y(sum.size());
    const float* bp = s.bias ? b.data() : nullptr;
    kernels::conv_forward_reference<float>(g, x.data(), w.data(), bp, y.data());
    // NHWC copies; the expected output is clamp(y + sum, 0, 6) in NHWC.
    std::vector<float> x_nhwc(x.size()), sum_nhwc(sum.size()), want(sum.size());
    for (int64_t n = 0; n < g.n; ++n) {
      for (int64_t c = 0; c < g.c; ++c) {
        for (int64_t p = 0; p < hw; ++p) x_nhwc[(n * hw + p) * g.c + c] = x[(n * g.c + c) * hw + p];
      }
      for (int64_t o = 0; o < g.o; ++o) {
        for (int64_t p = 0; p < ohw; ++p) {
          const int64_t nchw = (n * g.o + o) * ohw + p, nhwc = (n * ohw + p) * g.o + o;
          sum_nhwc[nhwc] = sum[nchw];
          want[nhwc] = std::min(6.0f, std::max(0.0f, y[nchw] + sum[nchw]));
        }
      }
    }
    for (const std::string& impl : kernels::ConvNhwc::candidates(g, true, true, 0.0f, 6.0f)) {
      kernels::ConvNhwc k(g, true, true, 0.0f, 6.0f, impl);
      SCOPED_TRACE(s.label + " / " + impl);
      EXPECT_EQ(k.impl(), impl);
      std::vector<float> got(want.size(), -1.0f);
      k.forward(x_nhwc.data(), w.data(), bp, sum_nhwc.data(), got.data());
      expect_near_all(got, want, "y");
      ++impls_tested;
    }
    // The default (timed) choice is one of them.
    kernels::ConvNhwc chosen(g, true, true, 0.0f, 6.0f);
    std::vector<float> got(want.size());
    chosen.forward(x_nhwc.data(), w.data(), bp, sum_nhwc.data(), got.data());
    expect_near_all(got, want, "y (chosen: " + chosen.impl() + ")");
  }
  EXPECT_GT(impls_tested, static_cast<int>(specs.size()));  // more than oneDNN's first each
}

TEST(Conv2d, DepthwiseStrategyRejectsOtherGeometries) {
  ConvGeometry g =
      geometry_of({"groups=2", {2, 4, 6, 6}, {6, 2, 3, 3}, true, {1, 1}, {1, 1, 1, 1}, {1, 1}, 2});
  EXPECT_THROW(kernels::make_conv_strategy(g, kernels::ConvStrategy::kDepthwise), Error);
  g = geometry_of(
      {"multiplier 2", {2, 3, 6, 6}, {6, 1, 3, 3}, true, {1, 1}, {1, 1, 1, 1}, {1, 1}, 3});
  EXPECT_THROW(kernels::make_conv_strategy(g, kernels::ConvStrategy::kDepthwise), Error);
  g = geometry_of({"dw", {2, 3, 6, 6}, {3, 1, 3, 3}, true, {1, 1}, {1, 1, 1, 1}, {1, 1}, 3});
  EXPECT_EQ(kernels::make_conv_strategy(g, kernels::ConvStrategy::kDepthwise)->name(),
            "depthwise-direct");
}

// Runs one Conv2d node with the given kernel; returns y and, for dy = ones, dx, dw, db.
struct HandRun {
  std::vector<float> y, dx, dw, db;
};

HandRun run_hand(const Node& node, const Tensor& x, const Tensor& w, const Tensor& b,
                 KernelChoice choice) {
  std::vector<ValueInfo> infos = {
      {"x", x.dtype(), x.shape()}, {"w", w.dtype(), w.shape()}, {"b", b.dtype(), b.shape()}};
  InputInfos in = {&infos[0], &infos[1], &infos[2]};
  std::vector<ValueInfo> out(1);
  op_def(OpKind::kConv2d).infer(node, in, out);
  auto k = make_kernel(node, in, out, choice);
  Tensor y(DType::kF32, out[0].shape), dy(DType::kF32, out[0].shape);
  for (int64_t i = 0; i < dy.numel(); ++i) dy.f32()[i] = 1.0f;
  Tensor dx(DType::kF32, x.shape()), dw(DType::kF32, w.shape()), db(DType::kF32, b.shape());
  Tensor xc = x, wc = w, bc = b;
  std::vector<Tensor*> ins = {&xc, &wc, &bc}, outs = {&y}, gout = {&dy}, gin = {&dx, &dw, &db};
  RunContext ctx;
  k->forward(ins, outs, ctx);
  k->backward(ins, outs, gout, gin, ctx);
  auto vec = [](const Tensor& t) { return std::vector<float>(t.f32(), t.f32() + t.numel()); };
  return {vec(y), vec(dx), vec(dw), vec(db)};
}

Tensor tensor_of(Shape shape, std::vector<float> v) {
  Tensor t(DType::kF32, std::move(shape));
  for (size_t i = 0; i < v.size(); ++i) t.f32()[i] = v[i];
  return t;
}

TEST(Conv2d, HandComputedValues) {
  Tensor x = tensor_of({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor w = tensor_of({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor b = tensor_of({1}, {0.5f});
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    Node n;
    n.op = OpKind::kConv2d;
    n.name = "hand";
    HandRun r = run_hand(n, x, w, b, choice);
    EXPECT_EQ(r.y, (std::vector<float>{37.5f, 47.5f, 67.5f, 77.5f}));
    // dy = ones: dx counts the kernel taps covering each input, dw sums the covered inputs.
    EXPECT_EQ(r.dx, (std::vector<float>{1, 3, 2, 4, 10, 6, 3, 7, 4}));
    EXPECT_EQ(r.dw, (std::vector<float>{12, 16, 24, 28}));
    EXPECT_EQ(r.db, (std::vector<float>{4}));

    // Pad 1, stride 2: the four windows see 1, {2,3}, {4,7} and the bottom-right 2x2.
    n.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
    n.attrs.set("strides", std::vector<int64_t>{2, 2});
    r = run_hand(n, x, w, b, choice);
    EXPECT_EQ(r.y, (std::vector<float>{4.5f, 18.5f, 36.5f, 77.5f}));
  }
}

std::vector<ValueInfo> infer(const Node& n, const std::vector<ValueInfo>& inputs) {
  InputInfos in;
  for (const ValueInfo& v : inputs) in.push_back(v.name.empty() ? nullptr : &v);
  std::vector<ValueInfo> out(1);
  op_def(n.op).infer(n, in, out);
  return out;
}

TEST(Conv2d, InferPropagatesSymbolicBatchAndCountsMacs) {
  Node n;
  n.op = OpKind::kConv2d;
  n.attrs.set("pads", std::vector<int64_t>{2, 2, 2, 2});
  std::vector<ValueInfo> in = {{"x", DType::kF32, {kDynamic, 1, 28, 28}},
                               {"w", DType::kF32, {6, 1, 5, 5}},
                               {"b", DType::kF32, {6}}};
  EXPECT_EQ(infer(n, in)[0].shape, (Shape{kDynamic, 6, 28, 28}));
  InputInfos ptrs = {&in[0], &in[1], &in[2]};
  EXPECT_EQ(op_def(n.op).macs(n, ptrs, {}), 6 * 28 * 28 * 25);

  Node dw;
  dw.op = OpKind::kConv2d;
  dw.attrs.set("group", int64_t{32});
  dw.attrs.set("strides", std::vector<int64_t>{2, 2});
  dw.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  std::vector<ValueInfo> din = {{"x", DType::kF64, {4, 32, 15, 15}},
                                {"w", DType::kF64, {32, 1, 3, 3}}};
  std::vector<ValueInfo> out = infer(dw, din);
  EXPECT_EQ(out[0].shape, (Shape{4, 32, 8, 8}));
  EXPECT_EQ(out[0].dtype, DType::kF64);
  InputInfos dptrs = {&din[0], &din[1]};
  EXPECT_EQ(op_def(dw.op).macs(dw, dptrs, {}), 32 * 64 * 9);
}

void expect_bad(const ConvSpec& s, const std::string& why, DType wdtype = DType::kF32,
                Shape bias = {}) {
  Node n = conv_node(s);
  n.name = "bad_conv";
  std::vector<ValueInfo> in = {{"x", DType::kF32, s.x}, {"w", wdtype, s.w}};
  if (!bias.empty()) in.push_back({"b", DType::kF32, bias});
  EXPECT_THROW(infer(n, in), Error) << why;
}

TEST(Conv2d, BadInputThrows) {
  expect_bad({"", {1, 3, 5, 5}, {4, 2, 3, 3}}, "weight channels differ from input channels");
  expect_bad({"", {1, 3, 5, 5}, {4, 1, 3, 3}, true, {1, 1}, {0, 0, 0, 0}, {1, 1}, 2},
             "group 2 does not divide 3 input channels");
  expect_bad({"", {1, 4, 5, 5}, {3, 2, 3, 3}, true, {1, 1}, {0, 0, 0, 0}, {1, 1}, 2},
             "group 2 does not divide 3 output channels");
  expect_bad({"", {1, 4, 5, 5}, {4, 4, 3, 3}, true, {1, 1}, {0, 0, 0, 0}, {1, 1}, 0}, "group 0");
  expect_bad({"", {1, 1, 3, 3}, {1, 1, 5, 5}}, "kernel larger than the input");
  expect_bad({"", {1, 1, 3, 3}, {1, 1, 5, 5}, true, {1, 1}, {0, 1, 0, 1}},
             "kernel larger than the input padded on one axis only");
  expect_bad({"", {1, 1, 6, 6}, {1, 1, 3, 3}, true, {1, 1}, {0, 0, 0, 0}, {3, 3}},
             "dilated kernel larger than the input");
  expect_bad({"", {1, 5, 5}, {4, 1, 3, 3}}, "input rank 3");
  expect_bad({"", {1, 1, 5, 5}, {4, 3, 3}}, "weight rank 3");
  expect_bad({"", {1, 1, 5, 5, 1}, {4, 1, 3, 3}}, "input rank 5");
  expect_bad({"", {1, 1, 5, 5}, {4, 1, 3, 3}}, "bias of the wrong size", DType::kF32, {3});
  expect_bad({"", {1, 1, 5, 5}, {4, 1, 3, 3}}, "bias of rank 2", DType::kF32, {4, 1});
  expect_bad({"", {1, 1, 5, 5}, {4, 1, 3, 3}}, "weight dtype differs", DType::kF64);
  expect_bad({"", {1, 1, 5, 5}, {4, 1, 3, 3}, true, {0, 1}}, "stride 0");
  expect_bad({"", {1, 1, 5, 5}, {4, 1, 3, 3}, true, {1, 1}, {1, 1}}, "two pads instead of four");
  expect_bad({"", {1, 1, 5, 5}, {4, 1, 3, 3}, true, {1, 1}, {-1, 0, 0, 0}}, "negative pad");
  expect_bad({"", {1, 1, 5, 5}, {4, 1, 3, 3}, true, {1, 1}, {0, 0, 0, 0}, {0, 1}}, "dilation 0");
  expect_bad({"", {1, 1, kDynamic, 5}, {4, 1, 3, 3}}, "symbolic spatial dim");

  Node n;
  n.op = OpKind::kConv2d;
  n.attrs.set("strides", std::string("2"));
  EXPECT_THROW(infer(n, {{"x", DType::kF32, {1, 1, 5, 5}}, {"w", DType::kF32, {1, 1, 3, 3}}}),
               Error);
  Node m;
  m.op = OpKind::kConv2d;
  m.name = "named_conv";
  try {
    infer(m, {{"x", DType::kF32, {1, 3, 5, 5}}, {"w", DType::kF32, {4, 2, 3, 3}}});
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("named_conv"), std::string::npos) << e.what();
  }
}

TEST(Conv2d, KernelRejectsAnotherBatchSize) {
  ConvSpec s{"", {2, 3, 5, 5}, {4, 3, 3, 3}};
  OpCase c = conv_case(s, 3);
  std::vector<ValueInfo> infos = {
      {"x", DType::kF32, s.x}, {"w", DType::kF32, s.w}, {"b", DType::kF32, {4}}};
  InputInfos in = {&infos[0], &infos[1], &infos[2]};
  std::vector<ValueInfo> out(1);
  Node n = conv_node(s);
  op_def(n.op).infer(n, in, out);
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    auto k = make_kernel(n, in, out, choice);
    Tensor x(DType::kF32, {3, 3, 5, 5}), y(DType::kF32, {3, 4, 3, 3});
    std::vector<Tensor*> ins = {&x, &c.inputs[1], &c.inputs[2]}, outs = {&y};
    RunContext ctx;
    EXPECT_THROW(k->forward(ins, outs, ctx), Error);
  }
}

}  // namespace
}  // namespace minnow
