// channels_last on quantized zoo networks (random weights, calibrated on random images):
// the same outputs as the lowered graph without the pass, with fast and with reference kernels,
// few Transposes, graph inputs and outputs unchanged. Plus hand-built graphs for the border
// cases: a value read both inside and outside a region, and a region too small to pay.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/rng.h"
#include "graph_test_util.h"
#include "lowered_zoo.h"
#include "passes/channels_last.h"
#include "passes/fuse_qlinear_residual.h"
#include "passes/lower_qdq.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

using testing::count_op;
using testing::lowered_model;
using testing::random_images;

int count_channels_last(const Graph& g) {
  return static_cast<int>(std::count_if(g.nodes.begin(), g.nodes.end(), [](const Node& n) {
    return n.attrs.get_int("channels_last", 0) == 1;
  }));
}

Tensor run(const Graph& g, const Tensor& x, KernelChoice k) {
  InferenceSession s(g, k, /*optimize=*/false);  // runs g as it is, no passes
  return s.run({{g.inputs[0].name, x}})[0].clone();
}

struct Case {
  const char* model;
  int max_transposes;  // bound on the Transposes the pass may add
  bool converts;       // whether any region pays
};

class ChannelsLastZoo : public ::testing::TestWithParam<Case> {};

TEST_P(ChannelsLastZoo, SameOutputsFewTransposes) {
  const Case c = GetParam();
  const Graph before = lowered_model(c.model, 21);
  Graph after = before;
  const ChannelsLastResult r = channels_last(after);
  EXPECT_EQ(count_op(after, OpKind::kTranspose) - count_op(before, OpKind::kTranspose),
            r.transposes);
  EXPECT_LE(r.transposes, c.max_transposes) << c.model;
  EXPECT_EQ(r.regions > 0, c.converts) << c.model;
  // Converted regions hold every QLinearAdd of these networks (QLinearAdd has no attribute).
  EXPECT_EQ(count_channels_last(after) + count_op(after, OpKind::kQLinearAdd) * c.converts,
            r.nodes);
  if (c.converts) {
    // Every convolution of these networks is inside the region.
    EXPECT_EQ(
        count_channels_last(after) - (count_op(after, OpKind::kQLinearGlobalAvgPool) > 0 ? 1 : 0),
        count_op(after, OpKind::kQLinearConv))
        << c.model;
  }
  EXPECT_EQ(after.inputs[0].name, before.inputs[0].name);
  EXPECT_EQ(after.inputs[0].shape, before.inputs[0].shape);
  EXPECT_EQ(after.outputs[0].name, before.outputs[0].name);
  EXPECT_EQ(after.outputs[0].shape, before.outputs[0].shape);
  std::printf("%s: %d regions, %d nodes channels-last, %d transposes\n", c.model, r.regions,
              r.nodes, r.transposes);

  // Same kernels, other layout: the same arithmetic, so the same bits (fast: oneDNN computes NHWC
  // either way, reordering NCHW input first; reference: one oracle for both layouts).
  const Tensor x = random_images(3, {1, 28, 28}, 22);
  for (KernelChoice k : {KernelChoice::kFast, KernelChoice::kReference}) {
    const Tensor a = run(before, x, k), b = run(after, x, k);
    ASSERT_EQ(a.shape(), b.shape());
    for (int64_t i = 0; i < a.numel(); ++i) {
      ASSERT_EQ(a.f32()[i], b.f32()[i]) << c.model << " element " << i;
    }
  }
  // Batch 1 (another plan) and the full inference session, which runs the pass itself (after
  // fusing residual Adds into convolutions, which changes results by design).
  const Tensor x1 = random_images(1, {1, 28, 28}, 23);
  Graph fused = before;
  fuse_qlinear_residual(fused);
  const Tensor a = run(fused, x1, KernelChoice::kFast);
  InferenceSession s(before, KernelChoice::kFast, /*optimize=*/true);
  const Tensor b = s.run({{before.inputs[0].name, x1}})[0];
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.f32()[i], b.f32()[i]) << c.model;

  // Running the pass again changes nothing.
  Graph again = after;
  EXPECT_EQ(channels_last(again).regions, 0);
}

// lenet5: conv -> MaxPool -> conv -> MaxPool: each convolution alone would need two Transposes
// for the two reorders it saves, so it stays NCHW.
INSTANTIATE_TEST_SUITE_P(Zoo, ChannelsLastZoo,
                         ::testing::Values(Case{"lenet5", 0, false}, Case{"resnet8", 4, true},
                                           Case{"mobilenet_v2", 2, true}),
                         [](const auto& info) { return std::string(info.param.model); });

// Hand-built: q(x) -> conv1 -> conv2 -> conv3 (f32 out), where conv1's output is also a graph
// output and conv2's output is also read by a MaxPool whose result is a graph output.
Graph chain() {
  Graph g;
  g.name = "chain";
  g.inputs = {{"x", DType::kF32, {kDynamic, 3, 9, 8}}};
  auto add_init = [&](const std::string& name, Tensor t) {
    g.initializers[name] = Initializer{std::move(t), false};
  };
  auto scalar_f32 = [](float v) {
    Tensor t(DType::kF32, {});
    t.f32()[0] = v;
    return t;
  };
  Rng rng(4);
  add_init("s", scalar_f32(0.02f));
  add_init("ys", scalar_f32(0.3f));
  Tensor zp(DType::kU8, {});
  static_cast<uint8_t*>(zp.raw())[0] = 120;
  add_init("zp", zp);
  auto weights = [&](const std::string& name, Shape s) {
    Tensor w(DType::kI8, s);
    for (int64_t i = 0; i < w.numel(); ++i) {
      static_cast<int8_t*>(w.raw())[i] = static_cast<int8_t>(rng.uniform(-100.0f, 100.0f));
    }
    add_init(name, w);
    Tensor ws(DType::kF32, {s[0]});
    for (int64_t i = 0; i < s[0]; ++i) ws.f32()[i] = rng.uniform(0.002f, 0.01f);
    add_init(name + "_s", ws);
  };
  weights("w1", {6, 3, 3, 3});
  weights("w2", {6, 1, 3, 3});
  weights("w3", {4, 6, 1, 1});
  Node q{"q", OpKind::kQuantizeLinear, {"x", "s", "zp"}, {"xq"}, {}};
  g.nodes.push_back(q);
  auto conv = [&](const std::string& name, const std::string& x, const std::string& w,
                  const std::string& y, bool f32_out, int64_t group, int64_t pad) {
    Node n{name, OpKind::kQLinearConv, {x, "s", "zp", w, w + "_s", "", "", "", ""}, {y}, {}};
    if (!f32_out) {
      n.inputs[6] = "ys";
      n.inputs[7] = "zp";
    }
    n.attrs.set("group", group);
    n.attrs.set("pads", std::vector<int64_t>{pad, pad, pad, pad});
    g.nodes.push_back(n);
  };
  conv("conv1", "xq", "w1", "a", false, 1, 1);
  conv("conv2", "a", "w2", "b", false, 6, 1);
  conv("conv3", "b", "w3", "logits", true, 1, 0);
  Node mp{"mp", OpKind::kMaxPool, {"b"}, {"pooled"}, {}};
  mp.attrs.set("kernel", std::vector<int64_t>{2, 2});
  mp.attrs.set("strides", std::vector<int64_t>{2, 2});
  g.nodes.push_back(mp);
  g.outputs = {{"logits", DType::kF32, {kDynamic, 4, 9, 8}},
               {"a", DType::kU8, {kDynamic, 6, 9, 8}},
               {"pooled", DType::kU8, {kDynamic, 6, 4, 4}}};
  g.validate();
  return g;
}

TEST(ChannelsLast, BorderValuesKeepNamesAndLayouts) {
  const Graph before = chain();
  Graph after = before;
  const ChannelsLastResult r = channels_last(after);
  EXPECT_EQ(r.regions, 1);
  EXPECT_EQ(r.nodes, 3);
  // In: x's quantized form. Out: a (graph output), b (MaxPool), logits (graph output, f32).
  EXPECT_EQ(r.transposes, 4);
  const auto info = after.infer_shapes(2);
  EXPECT_EQ(info.at("a").shape, (Shape{2, 6, 9, 8}));
  EXPECT_EQ(info.at("b").shape, (Shape{2, 6, 9, 8}));
  EXPECT_EQ(info.at("logits").shape, (Shape{2, 4, 9, 8}));
  EXPECT_EQ(info.at("logits").dtype, DType::kF32);
  EXPECT_EQ(info.at(after.find_node("conv2")->inputs[0]).shape, (Shape{2, 9, 8, 6}));
  const Tensor x = random_images(2, {3, 9, 8}, 5);
  for (KernelChoice k : {KernelChoice::kFast, KernelChoice::kReference}) {
    InferenceSession sa(before, k, false), sb(after, k, false);
    const std::vector<Tensor> ya = sa.run({{"x", x}});
    const std::vector<Tensor> yb = sb.run({{"x", x}});
    ASSERT_EQ(ya.size(), yb.size());
    for (size_t o = 0; o < ya.size(); ++o) {
      ASSERT_EQ(ya[o].shape(), yb[o].shape());
      ASSERT_EQ(ya[o].dtype(), yb[o].dtype());
      const size_t bytes = static_cast<size_t>(ya[o].numel()) * dtype_size(ya[o].dtype());
      EXPECT_EQ(std::memcmp(ya[o].raw(), yb[o].raw(), bytes), 0) << "output " << o;
    }
  }
}

TEST(ChannelsLast, LoneConvolutionStaysNchw) {
  Graph g = chain();
  // Only conv1 remains, between the quantized input and a MaxPool.
  g.nodes.erase(g.nodes.begin() + 2, g.nodes.begin() + 4);
  g.nodes.back().inputs[0] = "a";
  g.outputs = {{"pooled", DType::kU8, {kDynamic, 6, 4, 4}}};
  g.validate();
  Graph after = g;
  const ChannelsLastResult r = channels_last(after);
  EXPECT_EQ(r.regions, 0);
  EXPECT_EQ(r.transposes, 0);
  EXPECT_EQ(after.nodes.size(), g.nodes.size());
}

}  // namespace
}  // namespace minnow

namespace minnow {
namespace {

// Float networks: f32 Conv2d, Add and GlobalAvgPool run channels-last (oneDNN NHWC kernels)
// when a region pays; the reference kernels give the same bits in either layout, the fast ones
// the same values to rounding.
class ChannelsLastFloat : public ::testing::TestWithParam<Case> {};

TEST_P(ChannelsLastFloat, SameOutputs) {
  const Case c = GetParam();
  zoo::ZooOptions o;
  o.input_shape = {1, 28, 28};
  o.classes = 10;
  o.seed = 31;
  Graph before = zoo::build(c.model, o);
  testing::randomize_batchnorm(before, 34, 0.5f, 0.5f);
  simplify_for_inference(before);
  fold_batchnorm(before);
  fuse_activation(before, {OpKind::kConv2d, OpKind::kLinear, OpKind::kBatchNorm});
  Graph after = before;
  const ChannelsLastResult r = channels_last(after);
  EXPECT_EQ(r.regions > 0, c.converts) << c.model;
  EXPECT_LE(r.transposes, c.max_transposes) << c.model;
  if (c.converts) {
    EXPECT_EQ(count_channels_last(after) - count_op(after, OpKind::kGlobalAvgPool),
              count_op(after, OpKind::kConv2d))
        << "every convolution of " << c.model << " runs channels-last";
  }
  const Tensor x = random_images(3, {1, 28, 28}, 32);
  const Tensor a = run(before, x, KernelChoice::kReference),
               b = run(after, x, KernelChoice::kReference);
  for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.f32()[i], b.f32()[i]) << c.model << " " << i;
  const Tensor f = run(after, x, KernelChoice::kFast);
  for (int64_t i = 0; i < a.numel(); ++i) {
    EXPECT_NEAR(f.f32()[i], a.f32()[i], 1e-4 * (1 + std::fabs(a.f32()[i]))) << c.model << " " << i;
  }
  // The session runs the pass itself, at batch 1 too.
  const Tensor x1 = random_images(1, {1, 28, 28}, 33);
  const Tensor want = run(before, x1, KernelChoice::kReference);
  InferenceSession s(before, KernelChoice::kFast, /*optimize=*/true);
  const Tensor got = s.run({{before.inputs[0].name, x1}})[0];
  for (int64_t i = 0; i < want.numel(); ++i) {
    EXPECT_NEAR(got.f32()[i], want.f32()[i], 1e-4 * (1 + std::fabs(want.f32()[i]))) << c.model;
  }
}

INSTANTIATE_TEST_SUITE_P(Zoo, ChannelsLastFloat,
                         ::testing::Values(Case{"mobilenet_v2", 2, true}, Case{"resnet8", 2, true},
                                           Case{"lenet5", 0, false}),
                         [](const auto& info) { return std::string(info.param.model); });

}  // namespace
}  // namespace minnow
