// MaxPool / AvgPool / GlobalAvgPool: tables through the harness (fast vs reference, gradients
// vs finite differences), oneDNN pooling against the reference, values computed by hand and
// by PyTorch 1.13, shape inference and bad input.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "kernels/pool_dnnl.h"
#include "kernels/pool_reference.h"
#include "minnow/error.h"
#include "op_harness.h"

namespace minnow {
namespace {

using testing::OpCase;

struct PoolSpec {
  std::string label;
  Shape x;
  std::vector<int64_t> kernel, strides, pads;  // empty strides/pads: defaults
  bool ceil_mode = false;
  bool include_pad = false;
};

Node pool_node(OpKind op, const PoolSpec& s) {
  Node n;
  n.op = op;
  n.attrs.set("kernel", s.kernel);
  if (!s.strides.empty()) n.attrs.set("strides", s.strides);
  if (!s.pads.empty()) n.attrs.set("pads", s.pads);
  n.attrs.set("ceil_mode", int64_t{s.ceil_mode});
  if (op == OpKind::kAvgPool) n.attrs.set("count_include_pad", int64_t{s.include_pad});
  return n;
}

OpCase pool_case(OpKind op, const PoolSpec& s, uint64_t seed) {
  Rng rng(seed);
  OpCase c;
  c.label = s.label;
  c.node = pool_node(op, s);
  c.inputs = {testing::random_tensor(s.x, rng)};
  return c;
}

const std::vector<PoolSpec>& small_cases() {
  static const std::vector<PoolSpec> cases = {
      {"lenet pool1 2x2", {2, 6, 28, 28}, {2, 2}},
      {"lenet pool2 2x2", {2, 16, 10, 10}, {2, 2}},
      {"batch 1 odd 7x9, 2x2 floor", {1, 3, 7, 9}, {2, 2}},
      {"odd 7x9, 2x2 ceil_mode", {2, 3, 7, 9}, {2, 2}, {}, {}, true},
      {"overlapping 3x3 stride 2", {2, 3, 9, 9}, {3, 3}, {2, 2}},
      {"overlapping 3x3 stride 2 pad 1 (count_include_pad)",
       {2, 2, 8, 7},
       {3, 3},
       {2, 2},
       {1, 1, 1, 1},
       false,
       true},
      {"3x3 stride 2 pad 1 ceil_mode", {2, 2, 6, 6}, {3, 3}, {2, 2}, {1, 1, 1, 1}, true},
      {"3x3 stride 2 pad 1 ceil_mode (count_include_pad)",
       {2, 2, 6, 6},
       {3, 3},
       {2, 2},
       {1, 1, 1, 1},
       true,
       true},
      {"asymmetric pads t1 l0 b2 r1", {2, 3, 7, 6}, {3, 3}, {2, 2}, {1, 0, 2, 1}},
      {"asymmetric pads (count_include_pad)",
       {2, 3, 7, 6},
       {3, 3},
       {2, 2},
       {1, 0, 2, 1},
       false,
       true},
      {"2x3 kernel stride (1,2)", {2, 2, 5, 8}, {2, 3}, {1, 2}},
      {"stride 1 2x2", {1, 2, 5, 5}, {2, 2}, {1, 1}},
      {"kernel covers the input", {2, 3, 4, 5}, {4, 5}},
  };
  return cases;
}

TEST(MaxPool, FastMatchesReference) {
  uint64_t seed = 1;
  for (const PoolSpec& s : small_cases()) {
    testing::expect_fast_matches_reference(pool_case(OpKind::kMaxPool, s, seed++));
  }
  for (bool training : {false, true}) {
    OpCase c = pool_case(OpKind::kMaxPool, {"lenet pool1 batch 64", {64, 6, 28, 28}, {2, 2}}, 9);
    c.training = training;
    testing::expect_fast_matches_reference(c);
    c = pool_case(OpKind::kMaxPool, {"3x3 s2 batch 33", {33, 8, 15, 15}, {3, 3}, {2, 2}}, 10);
    c.training = training;
    testing::expect_fast_matches_reference(c);
  }
}

TEST(MaxPool, GradientMatchesFiniteDifferences) {
  uint64_t seed = 100;
  for (const PoolSpec& s : small_cases()) {
    testing::expect_gradient_matches_finite_difference(pool_case(OpKind::kMaxPool, s, seed++));
  }
}

TEST(AvgPool, FastMatchesReference) {
  uint64_t seed = 200;
  for (const PoolSpec& s : small_cases()) {
    testing::expect_fast_matches_reference(pool_case(OpKind::kAvgPool, s, seed++));
  }
  testing::expect_fast_matches_reference(
      pool_case(OpKind::kAvgPool, {"2x2 batch 64", {64, 16, 10, 10}, {2, 2}}, 3));
}

TEST(AvgPool, GradientMatchesFiniteDifferences) {
  uint64_t seed = 300;
  for (const PoolSpec& s : small_cases()) {
    testing::expect_gradient_matches_finite_difference(pool_case(OpKind::kAvgPool, s, seed++));
  }
}

TEST(GlobalAvgPool, FastMatchesReferenceAndGradients) {
  const std::vector<Shape> shapes = {{2, 3, 5, 7}, {1, 4, 1, 1}, {3, 16, 7, 7}, {64, 96, 7, 7}};
  uint64_t seed = 400;
  for (const Shape& s : shapes) {
    Rng rng(seed++);
    OpCase c;
    c.label = "global avg " + shape_str(s);
    c.node.op = OpKind::kGlobalAvgPool;
    c.inputs = {testing::random_tensor(s, rng)};
    testing::expect_fast_matches_reference(c);
    if (s[0] < 64) testing::expect_gradient_matches_finite_difference(c);
  }
}

// oneDNN pooling (measured against the hand loops in the benchmark) must agree too.
TEST(Pool, DnnlPoolingMatchesReference) {
  for (const PoolSpec& s : small_cases()) {
    for (bool max : {true, false}) {
      SCOPED_TRACE(s.label + (max ? " max" : " avg"));
      kernels::PoolGeometry g;
      g.n = s.x[0];
      g.c = s.x[1];
      g.h = s.x[2];
      g.w = s.x[3];
      g.kh = s.kernel[0];
      g.kw = s.kernel[1];
      g.sh = s.strides.empty() ? g.kh : s.strides[0];
      g.sw = s.strides.empty() ? g.kw : s.strides[1];
      if (!s.pads.empty()) g.pt = s.pads[0], g.pl = s.pads[1], g.pb = s.pads[2], g.pr = s.pads[3];
      g.ceil_mode = s.ceil_mode;
      g.count_include_pad = s.include_pad;
      Rng rng(11);
      Tensor x = testing::random_tensor(s.x, rng);
      Tensor dy = testing::random_tensor({g.n, g.c, g.oh(), g.ow()}, rng);
      std::vector<float> y(dy.numel()), y2(dy.numel()), dx(x.numel()), dx2(x.numel());
      if (max) {
        kernels::max_pool_forward_reference<float>(g, x.f32(), y.data());
        kernels::max_pool_backward_reference<float>(g, x.f32(), dy.f32(), dx.data());
      } else {
        kernels::avg_pool_forward_reference<float>(g, x.f32(), y.data());
        kernels::avg_pool_backward_reference<float>(g, dy.f32(), dx.data());
      }
      std::unique_ptr<kernels::PoolDnnl> p;
      try {
        p = std::make_unique<kernels::PoolDnnl>(g, max);
      } catch (const Error&) {
        // Only the documented unsupported combination may be refused.
        EXPECT_TRUE(!max && g.count_include_pad && g.ceil_mode);
        continue;
      }
      p->forward(x.f32(), y2.data());
      p->backward(dy.f32(), dx2.data());
      for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y2[i], y[i], 1e-5) << "y " << i;
      for (size_t i = 0; i < dx.size(); ++i) ASSERT_NEAR(dx2[i], dx[i], 1e-5) << "dx " << i;
    }
  }
}

std::vector<float> run_forward(const Node& n, const Tensor& x, KernelChoice choice,
                               std::vector<float>* dx_for_ones = nullptr) {
  std::vector<ValueInfo> infos = {{"x", x.dtype(), x.shape()}};
  InputInfos in = {&infos[0]};
  std::vector<ValueInfo> out(1);
  op_def(n.op).infer(n, in, out);
  auto k = make_kernel(n, in, out, choice);
  Tensor y(DType::kF32, out[0].shape), xc = x;
  std::vector<Tensor*> ins = {&xc}, outs = {&y};
  RunContext ctx{true, nullptr};
  k->forward(ins, outs, ctx);
  if (dx_for_ones) {
    Tensor dy(DType::kF32, out[0].shape), dx(DType::kF32, x.shape());
    for (int64_t i = 0; i < dy.numel(); ++i) dy.f32()[i] = 1.0f;
    std::vector<Tensor*> gout = {&dy}, gin = {&dx};
    k->backward(ins, outs, gout, gin, ctx);
    dx_for_ones->assign(dx.f32(), dx.f32() + dx.numel());
  }
  return std::vector<float>(y.f32(), y.f32() + y.numel());
}

Tensor iota(Shape shape) {
  Tensor t(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = static_cast<float>(i + 1);
  return t;
}

void expect_values(const std::vector<float>& got, const std::vector<float>& want,
                   const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << what << " " << i;
}

// Expected values: by hand, and checked with PyTorch 1.13 (torch.nn.functional.max_pool2d /
// avg_pool2d on torch.arange(1, n+1).reshape(...)).
TEST(Pool, HandComputedAndPyTorchValues) {
  Tensor x4 = iota({1, 1, 4, 4}), x5 = iota({1, 1, 5, 5}), x6 = iota({1, 1, 6, 6});
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    std::vector<float> dx;
    expect_values(run_forward(pool_node(OpKind::kMaxPool, {"", {}, {2, 2}}), x4, choice, &dx),
                  {6, 8, 14, 16}, "max 2x2");
    expect_values(dx, {0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1}, "max 2x2 dx");
    expect_values(run_forward(pool_node(OpKind::kAvgPool, {"", {}, {2, 2}}), x4, choice, &dx),
                  {3.5f, 5.5f, 11.5f, 13.5f}, "avg 2x2");
    expect_values(dx, std::vector<float>(16, 0.25f), "avg 2x2 dx");
    PoolSpec p3{"", {}, {3, 3}, {2, 2}, {1, 1, 1, 1}};
    expect_values(run_forward(pool_node(OpKind::kAvgPool, p3), x4, choice),
                  {3.5f, 5.0f, 9.5f, 11.0f}, "avg 3x3 s2 p1 exclude pad");
    p3.include_pad = true;
    expect_values(run_forward(pool_node(OpKind::kAvgPool, p3), x4, choice),
                  {14.0f / 9, 30.0f / 9, 57.0f / 9, 11.0f}, "avg 3x3 s2 p1 include pad");
    // Ceil mode: the last window sticks out of the input (and, with padding, of the padding).
    PoolSpec c2{"", {}, {2, 2}, {2, 2}, {}, true, true};
    expect_values(run_forward(pool_node(OpKind::kAvgPool, c2), x5, choice),
                  {4, 6, 7.5f, 14, 16, 17.5f, 21.5f, 23.5f, 25}, "avg 2x2 ceil include pad");
    expect_values(run_forward(pool_node(OpKind::kMaxPool, c2), x5, choice),
                  {7, 9, 10, 17, 19, 20, 22, 24, 25}, "max 2x2 ceil");
    PoolSpec c3{"", {}, {3, 3}, {2, 2}, {1, 1, 1, 1}, true, true};
    expect_values(run_forward(pool_node(OpKind::kAvgPool, c3), x6, choice),
                  {2, 4, 16.0f / 3, 3, 9, 15, 17, 9, 17, 27, 29, 15, 10.5f, 16.5f, 17.5f, 9},
                  "avg 3x3 s2 p1 ceil include pad");
    c3.include_pad = false;
    expect_values(run_forward(pool_node(OpKind::kAvgPool, c3), x6, choice),
                  {4.5f, 6, 8, 9, 13.5f, 15, 17, 18, 25.5f, 27, 29, 30, 31.5f, 33, 35, 36},
                  "avg 3x3 s2 p1 ceil exclude pad");
    expect_values(run_forward(pool_node(OpKind::kMaxPool, c3), x6, choice),
                  {8, 10, 12, 12, 20, 22, 24, 24, 32, 34, 36, 36, 32, 34, 36, 36},
                  "max 3x3 s2 p1 ceil");
    Node g;
    g.op = OpKind::kGlobalAvgPool;
    expect_values(run_forward(g, x4, choice, &dx), {8.5f}, "global avg");
    expect_values(dx, std::vector<float>(16, 1.0f / 16), "global avg dx");
  }
}

// Channels-last GlobalAvgPool: the fast kernel keeps 64 channels' sums in registers and finishes
// the rest one by one; both sum in pixel order and divide by hw, so they equal the generic loop
// bit for bit. Channel counts below, at and past 64, with and without a tail.
TEST(GlobalAvgPool, ChannelsLastFastIsExact) {
  Rng rng(11);
  for (int64_t c : {5, 64, 128, 130, 200}) {
    SCOPED_TRACE(std::to_string(c) + " channels");
    Tensor x(DType::kF32, {3, 7, 5, c});
    for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = rng.uniform(-10.0f, 10.0f);
    Node g;
    g.op = OpKind::kGlobalAvgPool;
    g.attrs.set("channels_last", int64_t{1});
    const std::vector<float> fast = run_forward(g, x, KernelChoice::kFast);
    const std::vector<float> ref = run_forward(g, x, KernelChoice::kReference);
    ASSERT_EQ(fast.size(), static_cast<size_t>(3 * c));
    for (size_t i = 0; i < fast.size(); ++i) {
      ASSERT_EQ(std::bit_cast<uint32_t>(fast[i]), std::bit_cast<uint32_t>(ref[i])) << "at " << i;
    }
    // The mean itself: sample 1, channel c - 1.
    float sum = 0;
    for (int64_t p = 0; p < 35; ++p) sum += x.f32()[(35 + p) * c + c - 1];
    EXPECT_EQ(fast[static_cast<size_t>(2 * c - 1)], sum / 35.0f);
  }
}

TEST(Pool, MaxPoolTiesGoToTheFirstElement) {
  Tensor x(DType::kF32, {1, 1, 2, 4});  // all zeros, as after a ReLU
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    std::vector<float> dx;
    run_forward(pool_node(OpKind::kMaxPool, {"", {}, {2, 2}}), x, choice, &dx);
    expect_values(dx, {1, 0, 1, 0, 0, 0, 0, 0}, "tie dx");
  }
}

std::vector<ValueInfo> infer(const Node& n, const Shape& x, DType dt = DType::kF32) {
  std::vector<ValueInfo> inputs = {{"x", dt, x}};
  InputInfos in = {&inputs[0]};
  std::vector<ValueInfo> out(1);
  op_def(n.op).infer(n, in, out);
  return out;
}

TEST(Pool, InferShapes) {
  EXPECT_EQ(infer(pool_node(OpKind::kMaxPool, {"", {}, {2, 2}}), {kDynamic, 6, 28, 28})[0].shape,
            (Shape{kDynamic, 6, 14, 14}));
  EXPECT_EQ(infer(pool_node(OpKind::kMaxPool, {"", {}, {2, 2}}), {1, 3, 7, 9})[0].shape,
            (Shape{1, 3, 3, 4}));
  EXPECT_EQ(
      infer(pool_node(OpKind::kMaxPool, {"", {}, {2, 2}, {}, {}, true}), {1, 3, 7, 9})[0].shape,
      (Shape{1, 3, 4, 5}));
  // Ceil mode never adds a window that would start in the trailing padding.
  EXPECT_EQ(infer(pool_node(OpKind::kMaxPool, {"", {}, {2, 2}, {2, 2}, {1, 1, 1, 1}, true}),
                  {1, 1, 4, 4})[0]
                .shape,
            (Shape{1, 1, 3, 3}));
  EXPECT_EQ(infer(pool_node(OpKind::kAvgPool, {"", {}, {3, 3}, {2, 2}, {1, 0, 2, 1}}), {2, 3, 7, 6},
                  DType::kF64)[0]
                .shape,
            (Shape{2, 3, 4, 3}));
  Node g;
  g.op = OpKind::kGlobalAvgPool;
  std::vector<ValueInfo> out = infer(g, {kDynamic, 1280, 7, 7}, DType::kF64);
  EXPECT_EQ(out[0].shape, (Shape{kDynamic, 1280, 1, 1}));
  EXPECT_EQ(out[0].dtype, DType::kF64);
}

TEST(Pool, BadInputThrows) {
  for (OpKind op : {OpKind::kMaxPool, OpKind::kAvgPool}) {
    Node no_kernel;
    no_kernel.op = op;
    EXPECT_THROW(infer(no_kernel, {1, 1, 4, 4}), Error) << "missing kernel";
    EXPECT_THROW(infer(pool_node(op, {"", {}, {2, 2}}), {1, 4, 4}), Error) << "rank 3";
    EXPECT_THROW(infer(pool_node(op, {"", {}, {2, 2}}), {1, 1, 4, 4, 1}), Error) << "rank 5";
    EXPECT_THROW(infer(pool_node(op, {"", {}, {5, 5}}), {1, 1, 4, 4}), Error) << "kernel > input";
    EXPECT_THROW(infer(pool_node(op, {"", {}, {2}}), {1, 1, 4, 4}), Error) << "1-d kernel";
    EXPECT_THROW(infer(pool_node(op, {"", {}, {0, 2}}), {1, 1, 4, 4}), Error) << "kernel 0";
    EXPECT_THROW(infer(pool_node(op, {"", {}, {2, 2}, {0, 1}}), {1, 1, 4, 4}), Error) << "stride 0";
    EXPECT_THROW(infer(pool_node(op, {"", {}, {2, 2}, {}, {1, 1}}), {1, 1, 4, 4}), Error)
        << "two pads";
    EXPECT_THROW(infer(pool_node(op, {"", {}, {2, 2}, {}, {2, 0, 0, 0}}), {1, 1, 4, 4}), Error)
        << "pad as large as the kernel";
    EXPECT_THROW(infer(pool_node(op, {"", {}, {2, 2}, {}, {-1, 0, 0, 0}}), {1, 1, 4, 4}), Error)
        << "negative pad";
    EXPECT_THROW(infer(pool_node(op, {"", {}, {2, 2}}), {1, 1, 4, 4}, DType::kI64), Error)
        << "integer input";
    Node bad_flag = pool_node(op, {"", {}, {2, 2}});
    bad_flag.attrs.set("ceil_mode", int64_t{2});
    EXPECT_THROW(infer(bad_flag, {1, 1, 4, 4}), Error) << "ceil_mode 2";
  }
  Node avg = pool_node(OpKind::kAvgPool, {"", {}, {2, 2}});
  avg.attrs.set("count_include_pad", int64_t{-1});
  EXPECT_THROW(infer(avg, {1, 1, 4, 4}), Error);
  Node g;
  g.op = OpKind::kGlobalAvgPool;
  g.name = "gap";
  EXPECT_THROW(infer(g, {1, 8}), Error);
  try {
    infer(g, {2, 3, 4});
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gap"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace minnow
