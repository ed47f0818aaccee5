// QLinearConv: the oneDNN kernel against the integer reference over a table of shapes, the
// reference against a float convolution of the dequantized inputs, the kernel's cached state
// (weights and scales changing between calls), shape inference, MACs and bad input.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "kernels/qconv_depthwise_nhwc.h"
#include "kernels/qconv_dnnl.h"
#include "kernels/qconv_one_channel_nhwc.h"
#include "kernels/qconv_pointwise_nhwc.h"
#include "kernels/spin_team.h"
#include "minnow/error.h"
#include "ops/fused_activation.h"
#include "qlinear_test_util.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

using testing::element;
using testing::max_difference;
using testing::run_op;

struct QConvCase {
  std::string label;
  Shape x, w;
  std::vector<int64_t> strides{1, 1}, pads{0, 0, 0, 0}, dilations{1, 1};
  int64_t group = 1;
  DType x_dtype = DType::kU8;
  DType out = DType::kU8;  // kF32: y_scale and y_zero_point absent
  bool per_channel = true;
  bool bias = true;
  std::string act;
  int x_zp = 128, y_zp = 128;
  bool w_zp_input = true;  // pass an explicit all-zero w_zero_point
  bool sum = false;        // a fused residual Add (inputs 9-13): u8, zero points 120 and 7
  // The residual Add's output scale (times y_scale) and zero point; the residual's dtype (also
  // the Add's output dtype) and zero point.
  float sum_out_scale = 1.2f;
  int sum_out_zp = 7;
  DType sum_dtype = DType::kU8;
  int sum_zp = 120;
};

Node qconv_node(const QConvCase& c) {
  Node n;
  n.op = OpKind::kQLinearConv;
  n.attrs.set("strides", c.strides);
  n.attrs.set("pads", c.pads);
  n.attrs.set("dilations", c.dilations);
  n.attrs.set("group", c.group);
  if (!c.act.empty()) n.attrs.set("activation", c.act);
  return n;
}

struct QConvInputs {
  std::vector<Tensor> t;  // the nine inputs in ONNX order (undefined = absent)
  float x_scale, y_scale;
  std::vector<float> w_scale;
};

QConvInputs make_inputs(const QConvCase& c, uint64_t seed) {
  Rng rng(seed);
  QConvInputs in;
  const int64_t o = c.w[0], k = c.w[1] * c.w[2] * c.w[3];
  const bool u8 = c.x_dtype == DType::kU8;
  in.x_scale = 0.02f;
  in.w_scale.resize(c.per_channel ? o : 1);
  for (float& s : in.w_scale) s = rng.uniform(0.002f, 0.01f);
  // Spread outputs over ~±40 steps: |x - zp| ~ 74, |w| ~ 73 on average.
  in.y_scale = in.x_scale * 0.006f * 5400.0f * std::sqrt(static_cast<float>(k)) / 40.0f;
  const Shape sc = c.per_channel ? Shape{o} : Shape{};
  in.t.resize(9);
  in.t[0] = testing::random_q(c.x_dtype, c.x, rng, u8 ? 0 : -128, u8 ? 255 : 127);
  in.t[1] = testing::f32_tensor({}, {in.x_scale});
  in.t[2] = testing::zp_tensor(c.x_dtype, u8 ? c.x_zp : c.x_zp - 128);
  in.t[3] = testing::random_q(DType::kI8, c.w, rng, -127, 127);
  in.t[4] = testing::f32_tensor(sc, in.w_scale);
  if (c.w_zp_input) in.t[5] = Tensor(DType::kI8, sc);
  if (c.out != DType::kF32) {
    in.t[6] = testing::f32_tensor({}, {in.y_scale});
    in.t[7] = testing::zp_tensor(c.out, c.out == DType::kU8 ? c.y_zp : c.y_zp - 128);
  }
  if (c.bias) {
    const int b = static_cast<int>(3000 * std::sqrt(static_cast<float>(k)));
    in.t[8] = testing::random_q(DType::kI32, {o}, rng, -b, b);
  }
  return in;
}

std::vector<QConvCase> cases() {
  std::vector<QConvCase> v;
  v.push_back({"1x1 96->24 14x14 (mobilenet project)", {1, 96, 14, 14}, {24, 96, 1, 1}});
  v.push_back({"3x3 16->16 pad 1 batch 2", {2, 16, 9, 9}, {16, 16, 3, 3}, {1, 1}, {1, 1, 1, 1}});
  QConvCase dw{
      "depthwise 3x3 144 pad 1 relu6", {1, 144, 7, 7}, {144, 1, 3, 3}, {1, 1}, {1, 1, 1, 1}};
  dw.group = 144;
  dw.act = "relu6";
  v.push_back(dw);
  dw.label = "depthwise 3x3 s2 odd 13x11 relu, x_zp 0";
  dw.x = {3, 24, 13, 11};
  dw.w = {24, 1, 3, 3};
  dw.group = 24;
  dw.strides = {2, 2};
  dw.act = "relu";
  dw.x_zp = 0;
  v.push_back(dw);
  v.push_back({"3x3 s2 odd channels 3->5, pads 0,1,2,1",
               {1, 3, 11, 10},
               {5, 3, 3, 3},
               {2, 2},
               {0, 1, 2, 1}});
  QConvCase g{"groups 2 3x3 6->10 i8 in/out", {2, 6, 8, 7}, {10, 3, 3, 3}, {1, 1}, {1, 1, 1, 1}};
  g.group = 2;
  g.x_dtype = DType::kI8;
  g.out = DType::kI8;
  g.x_zp = 131;
  g.y_zp = 120;
  v.push_back(g);
  QConvCase pt{"1x1 per-tensor weights, no bias, relu, i8 x", {5, 17, 3, 4}, {7, 17, 1, 1}};
  pt.per_channel = false;
  pt.bias = false;
  pt.act = "relu";
  pt.x_dtype = DType::kI8;
  pt.x_zp = 128;  // i8 zero point 0 (symmetric)
  pt.w_zp_input = false;
  v.push_back(pt);
  QConvCase f{"3x3 f32 output relu6 dilation 2",
              {2, 8, 10, 10},
              {6, 8, 3, 3},
              {1, 1},
              {2, 2, 2, 2},
              {2, 2}};
  f.out = DType::kF32;
  f.act = "relu6";
  v.push_back(f);
  QConvCase f2{"depthwise f32 output, no bias", {1, 32, 5, 5}, {32, 1, 3, 3}, {1, 1}, {1, 1, 1, 1}};
  f2.group = 32;
  f2.out = DType::kF32;
  f2.bias = false;
  v.push_back(f2);
  QConvCase sat{"saturating: y_zp at the edge", {1, 8, 6, 6}, {4, 8, 3, 3}};
  sat.y_zp = 250;
  v.push_back(sat);
  return v;
}

// The reference performs oneDNN's float steps (see kernels/qlinear_reference.h), and the
// direct jit_int8 convolutions (depthwise, 3x3) agree exactly. oneDNN's 1x1 brgemm kernel
// applies bias and scale in another order and lands one step away on rare ties (1 of 4704
// elements in the first case), so one step is allowed on at most 0.5% of the elements.
// f32 outputs agree to float rounding.
TEST(QLinearConv, FastMatchesReference) {
  uint64_t seed = 1;
  for (const QConvCase& c : cases()) {
    SCOPED_TRACE(c.label);
    const QConvInputs in = make_inputs(c, seed++);
    const Tensor ref = run_op(qconv_node(c), in.t, KernelChoice::kReference);
    const Tensor fast = run_op(qconv_node(c), in.t, KernelChoice::kFast, 2);
    if (c.out == DType::kF32) {
      for (int64_t i = 0; i < ref.numel(); ++i) {
        ASSERT_NEAR(element(fast, i), element(ref, i), 1e-5 * (1 + std::abs(element(ref, i))))
            << "element " << i;
      }
    } else {
      int64_t differing = 0;
      EXPECT_LE(max_difference(fast, ref, &differing), 1.0);
      EXPECT_LE(differing, ref.numel() / 200 + 1);
    }
  }
}

// A copy of a rank-4 tensor with its dimensions permuted by `perm` (any dtype).
Tensor permuted(const Tensor& t, const std::vector<int64_t>& perm) {
  const Shape& in = t.shape();
  const Shape out{in[perm[0]], in[perm[1]], in[perm[2]], in[perm[3]]};
  Tensor r(t.dtype(), out);
  const size_t es = dtype_size(t.dtype());
  const int64_t stride[4] = {in[1] * in[2] * in[3], in[2] * in[3], in[3], 1};
  const auto* src = static_cast<const char*>(t.raw());
  auto* dst = static_cast<char*>(r.raw());
  int64_t k = 0;
  for (int64_t a = 0; a < out[0]; ++a) {
    for (int64_t b = 0; b < out[1]; ++b) {
      for (int64_t c = 0; c < out[2]; ++c) {
        for (int64_t d = 0; d < out[3]; ++d, ++k) {
          const int64_t i =
              a * stride[perm[0]] + b * stride[perm[1]] + c * stride[perm[2]] + d * stride[perm[3]];
          std::memcpy(dst + k * es, src + i * es, es);
        }
      }
    }
  }
  return r;
}

// channels_last=1: the same convolution on NHWC data. The reference gives exactly the NCHW
// reference's values (one oracle for both layouts); the oneDNN kernel then wraps the data as it
// is (no reorders) and agrees with the reference as in FastMatchesReference.
TEST(QLinearConv, ChannelsLastMatchesNchw) {
  uint64_t seed = 50;
  for (const QConvCase& c : cases()) {
    SCOPED_TRACE(c.label);
    const QConvInputs in = make_inputs(c, seed++);
    const Tensor want =
        permuted(run_op(qconv_node(c), in.t, KernelChoice::kReference), {0, 2, 3, 1});
    std::vector<Tensor> t = in.t;
    t[0] = permuted(in.t[0], {0, 2, 3, 1});
    Node n = qconv_node(c);
    n.attrs.set("channels_last", int64_t{1});
    const Tensor ref = run_op(n, t, KernelChoice::kReference);
    ASSERT_EQ(ref.shape(), want.shape());
    EXPECT_EQ(max_difference(ref, want), 0.0);
    const Tensor fast = run_op(n, t, KernelChoice::kFast, 2);
    ASSERT_EQ(fast.shape(), want.shape());
    if (c.out == DType::kF32) {
      for (int64_t i = 0; i < want.numel(); ++i) {
        ASSERT_NEAR(element(fast, i), element(want, i), 1e-5 * (1 + std::abs(element(want, i))))
            << "element " << i;
      }
    } else {
      int64_t differing = 0;
      EXPECT_LE(max_difference(fast, want, &differing), 1.0);
      EXPECT_LE(differing, want.numel() / 200 + 1);
    }
  }
}

// The kernel geometry of a case (NCHW shapes).
kernels::ConvGeometry geometry_of(const QConvCase& c) {
  kernels::ConvGeometry g;
  g.n = c.x[0];
  g.c = c.x[1];
  g.h = c.x[2];
  g.w = c.x[3];
  g.o = c.w[0];
  g.kh = c.w[2];
  g.kw = c.w[3];
  g.sh = c.strides[0];
  g.sw = c.strides[1];
  g.pt = c.pads[0];
  g.pl = c.pads[1];
  g.pb = c.pads[2];
  g.pr = c.pads[3];
  g.dh = c.dilations[0];
  g.dw = c.dilations[1];
  g.group = c.group;
  g.has_bias = c.bias;
  return g;
}

// Runs case c channels-last with the fast kernel four times, changing the weights in place, a
// weight scale and the x zero point between calls, and expects the reference's outputs exactly
// when minnow's own kernel runs it (`own`: its supports() on this CPU). On CPUs without
// AVX-512 VNNI oneDNN runs it, within one step on rare ties as in FastMatchesReference. Then
// runs it again on the last inputs with the spin team off (kernels/spin_team.h; layers from
// 60k multiply-adds are shared with it otherwise) and expects the same outputs.
void expect_channels_last_exact(const QConvCase& c, uint64_t seed, bool own) {
  SCOPED_TRACE(c.label);
  QConvInputs in = make_inputs(c, seed);
  Node n = qconv_node(c);
  n.attrs.set("channels_last", int64_t{1});
  std::vector<Tensor> t = in.t;
  t[0] = permuted(in.t[0], {0, 2, 3, 1});
  if (c.sum) {
    Rng rng(seed + 1000);
    const Tensor y0 = run_op(n, t, KernelChoice::kReference);  // y's shape
    const bool u8 = c.sum_dtype == DType::kU8;
    t.push_back(testing::random_q(c.sum_dtype, y0.shape(), rng, u8 ? 0 : -128, u8 ? 255 : 127));
    t.push_back(testing::f32_tensor({}, {in.y_scale * 0.8f}));
    t.push_back(testing::zp_tensor(c.sum_dtype, c.sum_zp));
    t.push_back(testing::f32_tensor({}, {in.y_scale * c.sum_out_scale}));
    t.push_back(testing::zp_tensor(c.sum_dtype, c.sum_out_zp));
  }
  testing::KernelUnderTest fast(n, t, KernelChoice::kFast);
  Tensor last;
  for (int step = 0; step < 4; ++step) {
    if (step == 1) static_cast<int8_t*>(t[3].raw())[5] ^= 0x55;  // weights, in place
    if (step == 2) t[4].f32()[0] *= 1.5f;                        // a weight scale
    if (step == 3) *static_cast<uint8_t*>(t[2].raw()) ^= 0x21;   // the x zero point
    const Tensor& y = fast.run(t);
    // The NCHW reference, or with a residual the channels-last one (the same arithmetic: the
    // oracle copies channels-last input to NCHW first).
    std::vector<Tensor> nchw = t;
    nchw[0] = in.t[0];
    const Tensor want =
        c.sum ? run_op(n, t, KernelChoice::kReference)
              : permuted(run_op(qconv_node(c), nchw, KernelChoice::kReference), {0, 2, 3, 1});
    int64_t differing = 0;
    EXPECT_LE(max_difference(y, want, &differing), own ? 0.0 : 1.0) << "step " << step;
    EXPECT_LE(differing, own ? 0 : want.numel() / 200 + 1) << "step " << step;
    last = y.clone();
  }
  kernels::SpinTeamOff off;
  int64_t differing = 0;
  EXPECT_EQ(max_difference(fast.run(t), last, &differing), 0.0) << "team off";
  EXPECT_EQ(differing, 0) << "team off";
}

// Channels-last depthwise layers run minnow's own kernel (kernels/qconv_depthwise_nhwc.h) on
// CPUs with AVX-512 VNNI, which computes the reference's exact integers and float steps: every
// output equals the reference's. The cases cover both tap layouts (3x3 stride 1 pairs columns;
// strides 2 and 5x5 do not), odd widths, channel tails, asymmetric and zero padding, i8 and f32
// outputs, batches split across threads, and weights, scales and zero points that change
// between calls. From 64 channels, 8-bit outputs take the grouped path (channels in slot order).
TEST(QLinearConv, ChannelsLastDepthwiseIsExact) {
  auto dw = [](std::string label, Shape x, int64_t k, int64_t stride, std::vector<int64_t> pads) {
    QConvCase c{std::move(label), x, {x[1], 1, k, k}, {stride, stride}, std::move(pads)};
    c.group = x[1];
    c.act = "relu6";
    return c;
  };
  std::vector<QConvCase> v;
  v.push_back(dw("3x3 s1 16ch 28x28", {1, 16, 28, 28}, 3, 1, {1, 1, 1, 1}));
  v.push_back(dw("3x3 s1 17ch 7x7 batch 3", {3, 17, 7, 7}, 3, 1, {1, 1, 1, 1}));
  v.push_back(dw("3x3 s1 144ch 14x14 batch 4 (threads)", {4, 144, 14, 14}, 3, 1, {1, 1, 1, 1}));
  v.push_back(dw("3x3 s2 96ch 28x28 batch 2", {2, 96, 28, 28}, 3, 2, {1, 1, 1, 1}));
  v.push_back(dw("3x3 s2 40ch 15x16 pads 0,1,1,0", {1, 40, 15, 16}, 3, 2, {0, 1, 1, 0}));
  v.push_back(dw("3x3 s1 unpadded 5ch 6x9", {2, 5, 6, 9}, 3, 1, {0, 0, 0, 0}));
  v.push_back(dw("5x5 s1 33ch 9x10", {1, 33, 9, 10}, 5, 1, {2, 2, 2, 2}));
  v.push_back(dw("5x5 s2 72ch 13x13 batch 8 (threads)", {8, 72, 13, 13}, 5, 2, {2, 2, 2, 2}));
  v.push_back(
      dw("5x5 s2 u8 64ch 12x11 pads 1,2,2,1 (read in place)", {2, 64, 12, 11}, 5, 2, {1, 2, 2, 1}));
  v.push_back(
      dw("3x3 s1 u8 32ch 5x7 pads 0,1,1,0 (read in place)", {1, 32, 5, 7}, 3, 1, {0, 1, 1, 0}));
  v.push_back(dw("3x3 s1 u8 64ch 7x7, i8 out (64-channel groups, odd width)", {2, 64, 7, 7}, 3, 1,
                 {1, 1, 1, 1}));
  // Padding wider than the image: no column reads pixels only.
  v.push_back(dw("3x3 s1 u8 16ch 1x1", {2, 16, 1, 1}, 3, 1, {1, 1, 1, 1}));
  v.push_back(dw("5x5 s2 u8 80ch 3x2 pads 2", {1, 80, 3, 2}, 5, 2, {2, 2, 2, 2}));
  // Small images of every kernel, stride and padding combination (u8: read in place).
  Rng shapes(77);
  for (int64_t k : {3, 5}) {
    for (int64_t stride : {1, 2}) {
      for (int i = 0; i < 9; ++i) {
        const int64_t c = std::vector<int64_t>{16, 64, 80}[static_cast<size_t>(i % 3)];
        const int64_t h = 1 + static_cast<int64_t>(shapes.below(5));
        const int64_t w = 1 + static_cast<int64_t>(shapes.below(5));
        std::vector<int64_t> pads;
        for (int d = 0; d < 4; ++d)
          pads.push_back(static_cast<int64_t>(shapes.below(static_cast<uint64_t>(k))));
        const int64_t oh = (h + pads[0] + pads[2] - k) / stride + 1;
        const int64_t ow = (w + pads[1] + pads[3] - k) / stride + 1;
        if (h + pads[0] + pads[2] < k || w + pads[1] + pads[3] < k || oh < 1 || ow < 1) continue;
        v.push_back(dw(std::to_string(k) + "x" + std::to_string(k) + " s" + std::to_string(stride) +
                           " " + std::to_string(c) + "ch " + std::to_string(h) + "x" +
                           std::to_string(w) + " pads " + std::to_string(pads[0]) +
                           std::to_string(pads[1]) + std::to_string(pads[2]) +
                           std::to_string(pads[3]),
                       {1, c, h, w}, k, stride, pads));
      }
    }
  }
  v[1].x_dtype = DType::kI8;
  v[1].out = DType::kI8;
  v[1].x_zp = 125;  // i8 zero point -3
  v[1].y_zp = 120;
  v[2].act = "";
  v[3].x_zp = 0;
  v[3].act = "relu";
  v[4].out = DType::kF32;
  v[5].bias = false;
  v[5].per_channel = false;
  v[6].y_zp = 250;  // saturates often
  v[7].x_dtype = DType::kI8;
  v[7].x_zp = 128;
  v[10].out = DType::kI8;
  v[10].y_zp = 100;
  uint64_t seed = 300;
  for (const QConvCase& c : v) {
    expect_channels_last_exact(c, seed++,
                               kernels::QConvDepthwiseNhwc::supports(geometry_of(c), c.x_dtype));
  }
}

// One-channel images (a grayscale network's stem) run minnow's own kernel
// (kernels/qconv_one_channel_nhwc.h) on CPUs with AVX-512 VNNI, exact as the depthwise one.
TEST(QLinearConv, ChannelsLastOneChannelIsExact) {
  auto stem = [](std::string label, Shape x, int64_t o, int64_t k, int64_t stride,
                 std::vector<int64_t> pads) {
    QConvCase c{std::move(label), x, {o, 1, k, k}, {stride, stride}, std::move(pads)};
    c.act = "relu6";
    return c;
  };
  std::vector<QConvCase> v;
  v.push_back(stem("3x3 s1 ->16 28x28", {1, 1, 28, 28}, 16, 3, 1, {1, 1, 1, 1}));
  v.push_back(stem("3x3 s1 ->32 28x28 batch 4 (threads)", {4, 1, 28, 28}, 32, 3, 1, {1, 1, 1, 1}));
  v.push_back(stem("3x3 s2 ->20 15x16 pads 0,1,1,0", {2, 1, 15, 16}, 20, 3, 2, {0, 1, 1, 0}));
  v.push_back(stem("5x5 s2 ->24 13x11", {3, 1, 13, 11}, 24, 5, 2, {2, 2, 2, 2}));
  v.push_back(stem("5x5 s1 unpadded ->7 9x9", {1, 1, 9, 9}, 7, 5, 1, {0, 0, 0, 0}));
  v[1].act = "";
  v[2].out = DType::kF32;
  v[3].x_dtype = DType::kI8;
  v[3].out = DType::kI8;
  v[3].x_zp = 131;
  v[3].y_zp = 100;
  v[4].y_zp = 250;
  v[4].bias = false;
  uint64_t seed = 500;
  for (const QConvCase& c : v) {
    expect_channels_last_exact(c, seed++,
                               kernels::QConvOneChannelNhwc::supports(geometry_of(c), c.x_dtype));
  }
}

// Channels-last 1x1 layers (any stride) of small products (batch 1) run minnow's own kernel
// (kernels/qconv_pointwise_nhwc.h) on CPUs with AVX-512 VNNI, exact as the depthwise one, with
// a fused residual too.
TEST(QLinearConv, ChannelsLastPointwiseIsExact) {
  auto pw = [](std::string label, Shape x, int64_t o) {
    return QConvCase{std::move(label), x, {o, x[1], 1, 1}};
  };
  std::vector<QConvCase> v;
  v.push_back(pw("16->96 28x28 relu6, x_zp 0 (expand)", {1, 16, 28, 28}, 96));
  v.push_back(pw("96->24 14x14 batch 2 (project)", {2, 96, 14, 14}, 24));
  v.push_back(pw("144->24 14x14 with residual (project + add)", {1, 144, 14, 14}, 24));
  v.push_back(pw("64->128 7x7 batch 4, i8 out, relu", {4, 64, 7, 7}, 128));
  v.push_back(pw("20->10 5x5, f32 out", {3, 20, 5, 5}, 10));
  v.push_back(pw("192->64 7x7 batch 30 (threads), residual relu", {30, 192, 7, 7}, 64));
  v.push_back(pw("8->33 3x5 per-tensor, no bias", {2, 8, 3, 5}, 33));
  v.push_back(pw("16->32 s2 28x28 with residual, relu (resnet shortcut)", {1, 16, 28, 28}, 32));
  v.push_back(pw("32->64 s2 15x13 batch 3", {3, 32, 15, 13}, 64));
  v.push_back(pw("32->64 s2 15x13 batch 24 (threads start mid-sample)", {24, 32, 15, 13}, 64));
  // Tails of 16 and 32 channels past the 64-channel blocks, packed four accumulators at a
  // time (V = 1 and 2): with channels after them, alone (one store per run), and part-empty.
  v.push_back(pw("24->144 7x9 batch 2 (16-channel tail)", {2, 24, 7, 9}, 144));
  v.push_back(pw("48->16 5x7 batch 3, i8 out (16 channels)", {3, 48, 5, 7}, 16));
  v.push_back(pw("16->72 5x7 batch 2 (8-channel tail)", {2, 16, 5, 7}, 72));
  v.push_back(pw("144->32 7x7 batch 2 (32 channels)", {2, 144, 7, 7}, 32));
  v.push_back(pw("16->88 3x11 s2, i8 out (24-channel tail)", {1, 16, 6, 21}, 88));
  // Tails of 17 to 24 channels: the last ones of two pixels share an accumulator.
  v.push_back(pw("32->20 5x5 batch 3, residual (4 of a pixel pair's channels together)",
                 {3, 32, 5, 5}, 20));
  v.push_back(pw("48->84 3x3, i8 out", {1, 48, 3, 3}, 84));
  v[0].act = "relu6";
  v[0].x_zp = 0;
  v[11].out = DType::kI8;
  v[14].out = DType::kI8;
  v[14].strides = {2, 2};
  v[15].sum = true;
  v[15].act = "relu";
  v[16].out = DType::kI8;
  v[2].sum = true;
  v[3].out = DType::kI8;
  v[3].act = "relu";
  v[4].out = DType::kF32;
  v[5].sum = true;
  v[5].act = "relu";
  v[6].per_channel = false;
  v[6].bias = false;
  v[7].strides = {2, 2};
  v[7].sum = true;
  v[7].act = "relu";
  v[8].strides = {2, 2};
  v[9].strides = {2, 2};
  // The residual's activation folds into the output range's clamp (kernels/qconv_vnni_common.h,
  // Epilogue::of): ranges that clip most sums, and one where every sum clips to the same code.
  v.push_back(pw("16->16 28x28 residual relu6, tiny output scale", {2, 16, 28, 28}, 16));
  v.back().sum = true;
  v.back().act = "relu6";
  v.back().sum_out_scale = 0.02f;
  v.back().sum_out_zp = 128;
  v.push_back(pw("144->24 14x14 residual relu, output zero point 255", {1, 144, 14, 14}, 24));
  v.back().sum = true;
  v.back().act = "relu";
  v.back().sum_out_zp = 255;
  v.push_back(pw("32->32 7x7 residual relu6, large output scale", {3, 32, 7, 7}, 32));
  v.back().sum = true;
  v.back().act = "relu6";
  v.back().sum_out_scale = 40.0f;
  v.back().sum_out_zp = 0;
  // i8 residual and output (the packed residual stores' signed packs), 64, 32, 24 and 16
  // channels.
  for (int64_t o : {64, 32, 24, 16}) {
    v.push_back(pw("32->" + std::to_string(o) + " 9x9 i8 residual and output, no activation",
                   {2, 32, 9, 9}, o));
    v.back().sum = true;
    v.back().sum_dtype = DType::kI8;
    v.back().sum_zp = -20;
    v.back().sum_out_zp = 9;
  }
  uint64_t seed = 700;
  for (const QConvCase& c : v) {
    expect_channels_last_exact(c, seed++,
                               kernels::QConvPointwiseNhwc::supports(geometry_of(c), c.x_dtype));
  }
}

// An inference session runs a large batch in pieces on parallel lanes (one thread each); an
// int8 convolution there computes what it does on one thread. oneDNN 2.6's int8 convolution
// with a source zero point and padding did not when the lanes were members of one OpenMP team
// (runtime/lane_workers.h): about 1 in 20 outputs differed, at random.
TEST(QLinearConv, ParallelLanesMatchOneThread) {
  QConvCase c{"3x3 pad 1, 8 -> 16, x_zp 128", {48, 8, 10, 10}, {16, 8, 3, 3}};
  c.pads = {1, 1, 1, 1};
  const QConvInputs in = make_inputs(c, 900);
  Graph g;
  g.name = "qconv";
  Node n = qconv_node(c);
  n.name = "conv";
  n.outputs = {"y"};
  for (size_t i = 0; i < in.t.size(); ++i) {
    const std::string name = i == 0 ? "x" : "in" + std::to_string(i);
    n.inputs.push_back(in.t[i].defined() ? name : "");
    if (i > 0 && in.t[i].defined()) g.initializers[name].value = in.t[i];
  }
  g.nodes.push_back(n);
  g.inputs.push_back(ValueInfo{"x", DType::kU8, {kDynamic, 8, 10, 10}});
  g.outputs.push_back(ValueInfo{"y", DType::kU8, {kDynamic, 16, 10, 10}});
  const std::map<std::string, Tensor> feeds = {{"x", in.t[0]}};
  omp_set_num_threads(1);
  InferenceSession one(g);
  const Tensor want = one.run(feeds)[0].clone();
  omp_set_num_threads(2);
  InferenceSession lanes(g);
  ASSERT_LT(lanes.piece_size(48, 2), 48);
  for (int round = 0; round < 5; ++round) {
    int64_t differing = 0;
    EXPECT_EQ(max_difference(lanes.run(feeds)[0], want, &differing), 0.0) << "round " << round;
    EXPECT_EQ(differing, 0) << "round " << round;
  }
  omp_set_num_threads(omp_get_num_procs());
}

// The NHWC int8 convolutions this layout exists for: oneDNN's chosen implementation takes the
// caller's NHWC memory as it is, so the kernel runs no reorder (the point of channels_last).
TEST(QLinearConv, ChannelsLastDnnlKernelDoesNotReorder) {
  for (const QConvCase& c : cases()) {
    SCOPED_TRACE(c.label);
    const QConvInputs in = make_inputs(c, 77);
    const kernels::ConvGeometry g = geometry_of(c);
    kernels::QLinearParams p;
    p.x_scale = in.x_scale;
    p.x_zp = static_cast<int32_t>(element(in.t[2], 0));
    p.w_scale = in.w_scale.data();
    p.w_count = static_cast<int64_t>(in.w_scale.size());
    p.bias = c.bias ? static_cast<const int32_t*>(in.t[8].raw()) : nullptr;
    p.out = c.out;
    if (c.out != DType::kF32) {
      p.y_scale = in.y_scale;
      p.y_zp = static_cast<int32_t>(element(in.t[7], 0));
    }
    const Tensor x = permuted(in.t[0], {0, 2, 3, 1});
    Tensor y(c.out, {g.n, g.oh(), g.ow(), g.o});
    kernels::QConvDnnl k(g, c.x_dtype, c.out, /*channels_last=*/true);
    k.forward(p, x.raw(), static_cast<const int8_t*>(in.t[3].raw()), y.raw());
    EXPECT_FALSE(k.reorders()) << k.impl();
  }
}

// The float computation the integer op stands for: dequantize, convolve in float (Conv2d's
// reference kernel), activation, quantize. Float rounding may move a value across a rounding
// boundary, so one step is allowed.
TEST(QLinearConv, ReferenceMatchesFloatConvolution) {
  uint64_t seed = 100;
  for (const QConvCase& c : cases()) {
    SCOPED_TRACE(c.label);
    const QConvInputs in = make_inputs(c, seed++);
    const Tensor q = run_op(qconv_node(c), in.t, KernelChoice::kReference);
    const int64_t o = c.w[0], per_o = c.w[1] * c.w[2] * c.w[3];
    const int x_zp = static_cast<int>(element(in.t[2], 0));
    Tensor x(DType::kF32, c.x), w(DType::kF32, c.w), b(DType::kF32, {o});
    const std::vector<float> xf = testing::dequantize(in.t[0], {in.x_scale}, {x_zp}, 1, 1);
    const std::vector<float> wf =
        testing::dequantize(in.t[3], in.w_scale, std::vector<int>(in.w_scale.size(), 0), per_o, o);
    std::copy(xf.begin(), xf.end(), x.f32());
    std::copy(wf.begin(), wf.end(), w.f32());
    for (int64_t i = 0; i < o; ++i) {
      const float ws = in.w_scale[in.w_scale.size() == 1 ? 0 : i];
      b.f32()[i] = c.bias ? static_cast<float>(element(in.t[8], i)) * in.x_scale * ws : 0.0f;
    }
    Node conv = qconv_node(c);
    conv.op = OpKind::kConv2d;
    const Tensor yf = run_op(conv, {x, w, b}, KernelChoice::kReference);
    double worst = 0;
    for (int64_t i = 0; i < yf.numel(); ++i) {
      double expect = yf.f32()[i];
      if (c.out != DType::kF32) {
        const double zp = element(in.t[7], 0);
        expect = std::nearbyint(expect / in.y_scale) + zp;
        expect = c.out == DType::kU8 ? std::clamp(expect, 0.0, 255.0)
                                     : std::clamp(expect, -128.0, 127.0);
        worst = std::max(worst, std::abs(expect - element(q, i)));
      } else {
        ASSERT_NEAR(element(q, i), expect, 1e-4 * (1 + std::abs(expect))) << "element " << i;
      }
    }
    EXPECT_LE(worst, 1.0);
  }
}

// A fused residual QLinearAdd (inputs 9-13, passes/fuse_qlinear_residual.h) is exactly
// QLinearConv then QLinearAdd: the reference kernel equals the two reference ops bit for bit;
// oneDNN's post-ops (NCHW here; channels-last small products run minnow's exact kernel) agree
// within one step on rare ties.
TEST(QLinearConv, FusedResidualIsConvThenAdd) {
  struct SumCase {
    QConvCase c;
    DType sum_dtype, out_dtype;
    int sum_zp, out_zp;
    std::string act;
  };
  std::vector<SumCase> v;
  v.push_back({{"1x1 96->24 14x14 (mobilenet project)", {2, 96, 14, 14}, {24, 96, 1, 1}},
               DType::kU8,
               DType::kU8,
               131,
               120,
               ""});
  v.push_back({{"3x3 16->16 pad 1 relu (resnet block)",
                {1, 16, 12, 12},
                {16, 16, 3, 3},
                {1, 1},
                {1, 1, 1, 1}},
               DType::kU8,
               DType::kU8,
               0,
               0,
               "relu"});
  v.push_back({{"1x1 s2 16->32 i8 residual, i8 out, relu6", {3, 16, 9, 9}, {32, 16, 1, 1}, {2, 2}},
               DType::kI8,
               DType::kI8,
               -5,
               3,
               "relu6"});
  uint64_t seed = 400;
  for (const SumCase& sc : v) {
    SCOPED_TRACE(sc.c.label);
    const QConvCase& c = sc.c;
    QConvInputs in = make_inputs(c, seed++);
    Rng rng(seed);
    const Tensor conv = run_op(qconv_node(c), in.t, KernelChoice::kReference);
    const bool u8 = sc.sum_dtype == DType::kU8;
    const Tensor sum =
        testing::random_q(sc.sum_dtype, conv.shape(), rng, u8 ? 0 : -128, u8 ? 255 : 127);
    const Tensor sum_scale = testing::f32_tensor({}, {in.y_scale * 0.7f});
    const Tensor sum_zp = testing::zp_tensor(sc.sum_dtype, sc.sum_zp);
    const Tensor out_scale = testing::f32_tensor({}, {in.y_scale * 1.3f});
    const Tensor out_zp = testing::zp_tensor(sc.out_dtype, sc.out_zp);
    // The two ops.
    Node add;
    add.op = OpKind::kQLinearAdd;
    if (!sc.act.empty()) add.attrs.set("activation", sc.act);
    const Tensor want =
        run_op(add, {conv, in.t[6], in.t[7], sum, sum_scale, sum_zp, out_scale, out_zp},
               KernelChoice::kReference);
    // The fused op.
    std::vector<Tensor> t = in.t;
    for (const Tensor& x : {sum, sum_scale, sum_zp, out_scale, out_zp}) t.push_back(x);
    Node n = qconv_node(c);
    if (!sc.act.empty()) n.attrs.set("activation", sc.act);
    const Tensor ref = run_op(n, t, KernelChoice::kReference);
    EXPECT_EQ(ref.dtype(), sc.out_dtype);
    EXPECT_EQ(max_difference(ref, want), 0.0);
    for (bool nhwc : {false, true}) {
      SCOPED_TRACE(nhwc ? "NHWC" : "NCHW");
      Node m = n;
      std::vector<Tensor> tn = t;
      if (nhwc) {
        m.attrs.set("channels_last", int64_t{1});
        tn[0] = permuted(t[0], {0, 2, 3, 1});
        tn[9] = permuted(t[9], {0, 2, 3, 1});
      }
      const Tensor fast = run_op(m, tn, KernelChoice::kFast, 2);
      const Tensor expect = nhwc ? permuted(want, {0, 2, 3, 1}) : want;
      int64_t differing = 0;
      EXPECT_LE(max_difference(fast, expect, &differing), 1.0);
      EXPECT_LE(differing, expect.numel() / 200 + 1);
    }
  }
}

// The fast kernel prepares oneDNN state from the first call's weights and scales; a later call
// with other values must be computed with those.
TEST(QLinearConv, FastKernelFollowsChangedWeightsAndScales) {
  QConvCase c = cases()[1];
  QConvInputs in = make_inputs(c, 7);
  testing::KernelUnderTest fast(qconv_node(c), in.t, KernelChoice::kFast);
  for (int step = 0; step < 4; ++step) {
    if (step == 1) static_cast<int8_t*>(in.t[3].raw())[5] ^= 0x55;  // weights, in place
    if (step == 2) in.t[4].f32()[3] *= 1.5f;                        // a weight scale
    if (step == 3) *static_cast<uint8_t*>(in.t[2].raw()) = 0;       // x zero point to 0
    const Tensor& y = fast.run(in.t);
    const Tensor ref = run_op(qconv_node(c), in.t, KernelChoice::kReference);
    EXPECT_EQ(max_difference(y, ref), 0.0) << "step " << step;
  }
}

// With the session's promise that the weights are constant (graph initializers), the kernels
// prepare them once per address: a weight tensor at another address is prepared again.
TEST(QLinearConv, ConstantWeightsArePreparedPerAddress) {
  for (const QConvCase& c : {cases()[1], cases()[2]}) {  // oneDNN; depthwise (own kernel NHWC)
    for (bool nhwc : {false, true}) {
      SCOPED_TRACE(c.label + (nhwc ? " NHWC" : ""));
      QConvInputs in = make_inputs(c, 9);
      Node n = qconv_node(c);
      std::vector<Tensor> t = in.t;
      if (nhwc) {
        n.attrs.set("channels_last", int64_t{1});
        t[0] = permuted(in.t[0], {0, 2, 3, 1});
      }
      testing::KernelUnderTest fast(n, t, KernelChoice::kFast);
      std::vector<bool> constant(t.size(), false);
      constant[3] = constant[4] = true;
      fast.kernel->set_constant_inputs(constant);
      for (int step = 0; step < 2; ++step) {
        if (step == 1) {  // other weights in another tensor
          t[3] = t[3].clone();
          for (int64_t i = 0; i < t[3].numel(); i += 3) static_cast<int8_t*>(t[3].raw())[i] ^= 0x35;
        }
        const Tensor& y = fast.run(t);
        std::vector<Tensor> nchw = t;
        nchw[0] = in.t[0];
        Tensor want = run_op(qconv_node(c), nchw, KernelChoice::kReference);
        if (nhwc) want = permuted(want, {0, 2, 3, 1});
        int64_t differing = 0;
        EXPECT_LE(max_difference(y, want, &differing), 1.0) << "step " << step;
        EXPECT_LE(differing, want.numel() / 200 + 1) << "step " << step;
      }
    }
  }
}

TEST(QLinearConv, InferenceAndMacs) {
  QConvCase c = cases()[4];
  QConvInputs in = make_inputs(c, 3);
  Node n = qconv_node(c);
  n.name = "qc";
  n.inputs = {"x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"};
  n.outputs = {"y"};
  std::vector<ValueInfo> infos;
  for (size_t i = 0; i < in.t.size(); ++i) {
    infos.push_back(ValueInfo{n.inputs[i], in.t[i].dtype(), in.t[i].shape()});
  }
  infos[0].shape[0] = kDynamic;
  InputInfos ptrs;
  for (auto& v : infos) ptrs.push_back(&v);
  std::vector<ValueInfo> out(1);
  op_def(n.op).infer(n, ptrs, out);
  EXPECT_EQ(out[0].dtype, DType::kU8);
  EXPECT_EQ(out[0].shape, (Shape{kDynamic, 5, 6, 5}));
  EXPECT_EQ(op_def(n.op).macs(n, ptrs, out), 5 * 6 * 5 * 3 * 3 * 3);
  n.attrs.set("channels_last", int64_t{1});
  infos[0].shape = {kDynamic, 11, 10, 3};
  op_def(n.op).infer(n, ptrs, out);
  EXPECT_EQ(out[0].shape, (Shape{kDynamic, 6, 5, 5}));
  EXPECT_EQ(op_def(n.op).macs(n, ptrs, out), 5 * 6 * 5 * 3 * 3 * 3);
  EXPECT_STREQ(op_def(OpKind::kQLinearConv).name, "QLinearConv");
  EXPECT_EQ(op_kind_from_name("QLinearConv"), OpKind::kQLinearConv);
}

TEST(QLinearConv, BadInputsThrow) {
  const QConvCase c = cases()[4];
  const QConvInputs good = make_inputs(c, 5);
  auto expect_throw = [&](const std::string& what, auto mutate, Node n = Node()) {
    SCOPED_TRACE(what);
    std::vector<Tensor> t = good.t;
    if (n.op == OpKind::kCount) n = qconv_node(c);
    mutate(t, n);
    EXPECT_THROW(run_op(n, t, KernelChoice::kFast), Error);
    EXPECT_THROW(run_op(n, t, KernelChoice::kReference), Error);
  };
  using V = std::vector<Tensor>;
  expect_throw("u8 weights", [](V& t, Node&) { t[3] = Tensor(DType::kU8, t[3].shape()); });
  expect_throw("f32 x", [](V& t, Node&) { t[0] = Tensor(DType::kF32, t[0].shape()); });
  expect_throw("x_zp dtype", [](V& t, Node&) { t[2] = testing::zp_tensor(DType::kI8, 0); });
  expect_throw("w_scale shape", [](V& t, Node&) { t[4] = testing::f32_tensor({2}, {1, 1}); });
  expect_throw("bias dtype", [](V& t, Node&) { t[8] = Tensor(DType::kF32, {5}); });
  expect_throw("bias shape", [](V& t, Node&) { t[8] = Tensor(DType::kI32, {4}); });
  expect_throw("y_zp without y_scale", [](V& t, Node&) { t[6] = Tensor(); });
  expect_throw("y_scale not scalar", [](V& t, Node&) { t[6] = testing::f32_tensor({2}, {1, 1}); });
  expect_throw("zero x_scale at run time",
               [](V& t, Node&) { t[1] = testing::f32_tensor({}, {0}); });
  expect_throw("NaN w_scale", [](V& t, Node&) {
    t[4] = t[4].clone();
    t[4].f32()[0] = NAN;
  });
  expect_throw("rank 3 x", [](V& t, Node&) { t[0] = Tensor(DType::kU8, {1, 3, 11}); });
  expect_throw("channels", [](V& t, Node&) { t[0] = Tensor(DType::kU8, {1, 4, 11, 10}); });
  expect_throw("group", [](V&, Node& n) { n.attrs.set("group", int64_t{2}); });
  expect_throw("activation", [](V&, Node& n) { n.attrs.set("activation", std::string("gelu")); });
  expect_throw("channels_last 2", [](V&, Node& n) { n.attrs.set("channels_last", int64_t{2}); });
  expect_throw("channels_last with NCHW shape", [](V&, Node& n) {
    n.attrs.set("channels_last", int64_t{1});  // x [1,3,11,10] read as 3x11 with 10 channels
  });
  expect_throw("kernel too large", [](V& t, Node& n) {
    t[0] = Tensor(DType::kU8, {1, 3, 2, 2});
    n.attrs.set("pads", std::vector<int64_t>{0, 0, 0, 0});
  });
  try {
    std::vector<Tensor> t = good.t;
    t[3] = Tensor(DType::kU8, t[3].shape());
    Node n = qconv_node(c);
    n.name = "conv7";
    run_op(n, t, KernelChoice::kReference);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("conv7"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace minnow
