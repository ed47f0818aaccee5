// Channel pruning (passes/prune_channels.h, compress/channel_prune.h): removing channels whose
// producers were zeroed first must leave the outputs unchanged (so every consumer, BN, depthwise
// group, concat offset, split size and residual tie was rewritten consistently); the driver
// reaches the MAC target; frozen groups and options are respected.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "compress/channel_prune.h"
#include "compress/channel_slimming.h"
#include "compress/model_report.h"
#include "core/rng.h"
#include "minnow/builder.h"
#include "minnow/error.h"
#include "minnow/zoo.h"
#include "passes/prune_channels.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

// Non-trivial BN statistics and parameters, and non-zero biases, as after training.
void randomize(Graph& g, uint64_t seed) {
  Rng rng(seed);
  for (const Node& n : g.nodes) {
    if (n.op == OpKind::kBatchNorm) {
      for (size_t i = 1; i <= 4; ++i) {
        Tensor& t = g.initializers.at(n.inputs[i]).value;
        for (int64_t k = 0; k < t.numel(); ++k) {
          t.f32()[k] = i == 4 ? rng.uniform(0.2f, 2.0f) : rng.uniform(-1.0f, 1.0f);
        }
      }
    } else if ((n.op == OpKind::kConv2d || n.op == OpKind::kLinear) && n.inputs.size() > 2) {
      Tensor& t = g.initializers.at(n.inputs[2]).value;
      for (int64_t k = 0; k < t.numel(); ++k) t.f32()[k] = rng.uniform(-0.5f, 0.5f);
    }
  }
}

// Every prunable group loses about a third of its channels (never all).
std::vector<std::vector<char>> every_third(const ChannelAnalysis& a) {
  std::vector<std::vector<char>> keep(a.groups.size());
  for (size_t i = 0; i < a.groups.size(); ++i) {
    if (!a.groups[i].prunable) continue;
    keep[i].assign(a.groups[i].size, 1);
    for (int64_t c = 0; c < a.groups[i].size; ++c) {
      if ((c + static_cast<int64_t>(i)) % 3 == 0) keep[i][c] = 0;
    }
    if (std::count(keep[i].begin(), keep[i].end(), 1) == 0) keep[i][0] = 1;
  }
  return keep;
}

// Zeroes what produces the channels `keep` removes (source rows and biases, BN scale and shift,
// depthwise rows): those channels then carry exact zeros into every consumer. Tensors are cloned
// first so that graphs sharing storage are not touched.
void zero_removed(Graph& g, const ChannelAnalysis& a, const std::vector<std::vector<char>>& keep) {
  for (size_t i = 0; i < a.groups.size(); ++i) {
    if (keep[i].empty()) continue;
    for (const ChannelParamUse& u : a.groups[i].uses) {
      if (u.role == ChannelParamRole::kConsumerWeight || u.role == ChannelParamRole::kBnStat) {
        continue;
      }
      Initializer& init = g.initializers.at(u.initializer);
      init.value = init.value.clone();
      Tensor& t = init.value;
      int64_t outer = 1, inner = 1;
      for (int d = 0; d < u.axis; ++d) outer *= t.dim(d);
      for (int d = u.axis + 1; d < t.rank(); ++d) inner *= t.dim(d);
      for (int64_t c = 0; c < a.groups[i].size; ++c) {
        if (keep[i][c]) continue;
        for (int64_t o = 0; o < outer; ++o) {
          for (int64_t j = 0; j < u.inner; ++j) {
            const int64_t k = u.offset + c * u.inner + j;
            for (int64_t e = 0; e < inner; ++e) t.f32()[(o * t.dim(u.axis) + k) * inner + e] = 0;
          }
        }
      }
    }
  }
}

Tensor random_input(const Graph& g, int64_t batch, uint64_t seed) {
  Shape s = g.inputs[0].shape;
  s[0] = batch;
  Rng rng(seed);
  Tensor t(DType::kF32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = rng.uniform(-1.0f, 1.0f);
  return t;
}

Tensor run(const Graph& g, const Tensor& x) {
  InferenceSession s(g, KernelChoice::kReference, /*optimize=*/false);
  return s.run({{g.inputs[0].name, x}})[0].clone();
}

int64_t total_macs(const Graph& g) {
  int64_t m = 0;
  for (const NodeStats& s : graph_stats(g)) m += s.macs;
  return m;
}

struct Exactness {
  int prunable_groups = 0, tied_groups = 0;
  size_t depthwise = 0, splits = 0;
};

// Zero channels, prune them, compare against the zeroed (unpruned) graph.
Exactness expect_exact_pruning(Graph g) {
  randomize(g, 3);
  const ChannelAnalysis a = analyze_channels(g);
  const auto keep = every_third(a);
  zero_removed(g, a, keep);
  Graph pruned = g;
  const std::vector<PrunedLayer> layers = prune_channels(pruned, a, keep);
  pruned.validate();
  EXPECT_NO_THROW(pruned.infer_shapes());
  EXPECT_LT(compress::count_params(pruned), compress::count_params(g));
  EXPECT_LT(total_macs(pruned), total_macs(g));
  const Tensor x = random_input(g, 2, 11);
  const Tensor want = run(g, x), got = run(pruned, x);
  EXPECT_EQ(got.shape(), want.shape());
  if (got.shape() == want.shape()) {
    for (int64_t i = 0; i < want.numel(); ++i) {
      EXPECT_NEAR(got.f32()[i], want.f32()[i], 1e-4 + 1e-4 * std::abs(want.f32()[i])) << i;
    }
  }
  Exactness e;
  for (const ChannelGroup& grp : a.groups) {
    e.prunable_groups += grp.prunable ? 1 : 0;
    e.tied_groups += grp.prunable && grp.sources.size() > 1 ? 1 : 0;
  }
  e.depthwise = a.depthwise_nodes.size();
  e.splits = a.split_nodes.size();
  return e;
}

Graph zoo_model(const std::string& name) {
  zoo::ZooOptions opt;
  opt.input_shape = {1, 28, 28};
  if (name == "resnet8") opt.input_shape = {3, 32, 32};
  return zoo::build(name, opt);
}

TEST(PruneChannels, MobilenetV2ResidualAndDepthwiseExact) {
  const Exactness e = expect_exact_pruning(zoo_model("mobilenet_v2"));
  EXPECT_GT(e.prunable_groups, 5);
  EXPECT_GT(e.tied_groups, 0);  // the residual adds
  EXPECT_GT(e.depthwise, 5u);
}

TEST(PruneChannels, SqueezenetConcatExact) {
  const Exactness e = expect_exact_pruning(zoo_model("squeezenet"));
  EXPECT_GT(e.prunable_groups, 10);
}

TEST(PruneChannels, Resnet8TiedShortcutExact) {
  const Exactness e = expect_exact_pruning(zoo_model("resnet8"));
  EXPECT_GT(e.tied_groups, 1);  // stack outputs tied with the shortcut convs
}

TEST(PruneChannels, OtherZooModelsExact) {
  // Squeeze-excite (Mul), channel shuffle (frozen), linear layers, plain CNNs.
  for (const char* name : {"mobilenet_v3_small", "shufflenet_v2", "lenet5", "lenet300"}) {
    SCOPED_TRACE(name);
    expect_exact_pruning(zoo_model(name));
  }
}

// conv a (6) and conv b (10) concatenated, split back into 6 and 10 for two more convs.
Graph concat_split_graph() {
  GraphBuilder b("concat_split", 5);
  const std::string x = b.input("input", {kDynamic, 3, 9, 9});
  ConvOptions c;
  c.pad = 1;
  const std::string a = b.relu(b.conv2d(x, 6, 3, c, "a"));
  const std::string bb = b.conv2d(x, 10, 3, c, "b");
  Attrs cat;
  cat.set("axis", int64_t{1});
  const std::string joined = b.op(OpKind::kConcat, {a, bb}, cat, "cat");
  Attrs sp;
  sp.set("axis", int64_t{1});
  sp.set("split", std::vector<int64_t>{6, 10});
  const auto parts = b.op_multi(OpKind::kSplit, {joined}, 2, sp, "split");
  const std::string p = b.conv2d(parts[0], 4, 1, {}, "p");
  const std::string q = b.conv2d(parts[1], 4, 1, {}, "q");
  const std::string sum = b.op(OpKind::kAdd, {p, q}, {}, "sum");
  b.output(b.linear(b.flatten(sum, 1, "flat"), 5, true, "fc"));
  return b.build();
}

TEST(PruneChannels, SplitSizesFollowTheGroups) {
  const Exactness e = expect_exact_pruning(concat_split_graph());
  EXPECT_EQ(e.splits, 1u);
  Graph g = concat_split_graph();
  const ChannelAnalysis a = analyze_channels(g);
  prune_channels(g, a, every_third(a));
  const std::vector<int64_t> sizes = g.find_node("split")->attrs.get_ints("split", {});
  ASSERT_EQ(sizes.size(), 2u);
  EXPECT_LT(sizes[0], 6);
  EXPECT_LT(sizes[1], 10);
}

TEST(PruneChannels, SplitInsideAGroupFreezesIt) {
  GraphBuilder b("split_inside", 5);
  const std::string x = b.input("input", {kDynamic, 3, 5, 5});
  const std::string y = b.conv2d(x, 8, 1, {}, "y");
  Attrs sp;
  sp.set("axis", int64_t{1});
  const auto parts = b.op_multi(OpKind::kSplit, {y}, 2, sp, "split");
  b.output(b.op(OpKind::kAdd,
                {b.conv2d(parts[0], 2, 1, {}, "p"), b.conv2d(parts[1], 2, 1, {}, "q")}, {}, "sum"));
  const Graph g = b.build();
  const ChannelAnalysis a = analyze_channels(g);
  for (const ChannelGroup& grp : a.groups) {
    if (std::find(grp.sources.begin(), grp.sources.end(), "y") != grp.sources.end()) {
      EXPECT_FALSE(grp.prunable);
      EXPECT_NE(grp.frozen_reason.find("split"), std::string::npos) << grp.frozen_reason;
    }
  }
}

TEST(PruneChannels, FrozenGroupsRefuseToShrink) {
  Graph g = zoo_model("mobilenet_v2");
  const ChannelAnalysis a = analyze_channels(g);
  std::vector<std::vector<char>> keep(a.groups.size());
  for (size_t i = 0; i < a.groups.size(); ++i) {
    if (a.groups[i].prunable) continue;
    keep[i].assign(a.groups[i].size, 1);
    keep[i][0] = 0;
    EXPECT_THROW(prune_channels(g, a, keep), Error);
    keep[i].clear();
  }
  // Removing every channel of a group is refused too.
  for (size_t i = 0; i < a.groups.size(); ++i) {
    if (!a.groups[i].prunable) continue;
    keep[i].assign(a.groups[i].size, 0);
    EXPECT_THROW(prune_channels(g, a, keep), Error);
    break;
  }
}

TEST(ChannelPrune, ReachesTheMacTarget) {
  Graph g = zoo_model("mobilenet_v2");
  randomize(g, 4);
  compress::ChannelPruneOptions opt;
  opt.macs_reduction = 0.5;
  const compress::ChannelPruneResult r = compress::channel_prune(g, opt);
  EXPECT_EQ(r.macs_before, 6904400);
  EXPECT_EQ(r.macs_after, total_macs(g));
  EXPECT_LE(r.macs_after, r.macs_before / 2);
  EXPECT_GT(r.macs_after, r.macs_before * 4 / 10);  // stops near the target
  EXPECT_LT(r.params_after, r.params_before);
  EXPECT_GT(r.pruned_groups, 3);
  for (const PrunedLayer& l : r.layers) {
    // The floor: at least 25% (and 4) of every layer stays.
    EXPECT_GE(
        l.channels_after,
        std::min<int64_t>(l.channels_before, std::max<int64_t>(4, (l.channels_before + 3) / 4)))
        << l.node;
  }
  EXPECT_NO_THROW(run(g, random_input(g, 1, 2)));
  const nlohmann::json j = compress::to_json(r);
  EXPECT_EQ(j["macs_after"], r.macs_after);
}

// Pruned layers keep a multiple of channel_multiple channels (the kernels' vector width), and
// the MAC target still holds; with 1 the counts are whatever the ranking leaves.
TEST(ChannelPrune, ChannelMultipleRoundsPrunedLayers) {
  for (int64_t m : {int64_t{1}, int64_t{8}}) {
    Graph g = zoo_model("mobilenet_v2");
    randomize(g, 4);
    compress::ChannelPruneOptions opt;
    opt.macs_reduction = 0.5;
    opt.channel_multiple = m;
    const compress::ChannelPruneResult r = compress::channel_prune(g, opt);
    EXPECT_LE(r.macs_after, r.macs_before / 2);
    int odd = 0;
    for (const PrunedLayer& l : r.layers) {
      if (l.channels_after == l.channels_before) continue;
      odd += l.channels_after % 8 != 0;
    }
    if (m == 8) {
      EXPECT_EQ(odd, 0);
    } else {
      EXPECT_GT(odd, 0) << "the unrounded ranking leaves counts that are not multiples of 8";
    }
    EXPECT_NO_THROW(run(g, random_input(g, 1, 2)));
  }
}

TEST(ChannelPrune, BnScaleRemovesTheSmallestScales) {
  Graph g = zoo_model("mobilenet_v2");
  randomize(g, 5);
  for (const Node& n : g.nodes) {
    if (n.op != OpKind::kBatchNorm) continue;
    Tensor& gamma = g.initializers.at(n.inputs[1]).value;
    for (int64_t c = 0; c < gamma.numel(); ++c) {
      gamma.f32()[c] = (n.name == "head.bn" && c < 20) ? 1e-3f : 0.5f + 0.01f * (c % 7);
    }
  }
  compress::ChannelPruneOptions opt;
  opt.criterion = "bn-scale";
  opt.macs_reduction = 0.005;
  const compress::ChannelPruneResult r = compress::channel_prune(g, opt);
  int removed = 0;
  for (const PrunedLayer& l : r.layers) {
    for (int64_t c : l.removed) {
      EXPECT_EQ(l.node, "head.conv");
      EXPECT_LT(c, 20);
      ++removed;
    }
  }
  EXPECT_GT(removed, 0);
}

TEST(ChannelPrune, L1RemovesTheSmallestFilters) {
  Graph g = zoo_model("resnet8");
  // stack3.a's filters 0..9 get a hundredth of their norm: relative to the layer's mean they
  // are the least important channels of the whole network.
  Tensor& w = g.initializers.at(g.find_node("stack3.a.conv")->inputs[1]).value;
  const int64_t per_filter = w.numel() / w.dim(0);
  for (int64_t i = 0; i < 10 * per_filter; ++i) w.f32()[i] *= 0.01f;
  compress::ChannelPruneOptions opt;
  opt.macs_reduction = 0.02;
  const compress::ChannelPruneResult r = compress::channel_prune(g, opt);
  int removed = 0;
  for (const PrunedLayer& l : r.layers) {
    for (int64_t c : l.removed) {
      EXPECT_EQ(l.node, "stack3.a.conv");
      EXPECT_LT(c, 10);
      ++removed;
    }
  }
  EXPECT_GT(removed, 0);
}

TEST(ChannelPrune, ExcludedLayersKeepTheirChannels) {
  Graph g = zoo_model("mobilenet_v2");
  compress::ChannelPruneOptions opt;
  opt.exclude = {"block2.*", "head.*"};
  opt.macs_reduction = 0.3;
  const compress::ChannelPruneResult r = compress::channel_prune(g, opt);
  for (const PrunedLayer& l : r.layers) {
    if (l.node.rfind("block2.", 0) == 0 || l.node.rfind("head.", 0) == 0) {
      EXPECT_EQ(l.channels_after, l.channels_before) << l.node;
    }
  }
  EXPECT_LE(r.macs_after, r.macs_before * 7 / 10);
}

TEST(ChannelPrune, BadOptionsThrow) {
  Graph g = zoo_model("resnet8");
  compress::ChannelPruneOptions opt;
  for (double bad : {0.0, 1.0, -0.2, 1.5, std::nan("")}) {
    opt.macs_reduction = bad;
    EXPECT_THROW(compress::channel_prune(g, opt), Error) << bad;
  }
  opt.macs_reduction = 0.3;
  opt.criterion = "l2";
  EXPECT_THROW(compress::channel_prune(g, opt), Error);
  opt.criterion = "l1";
  opt.macs_reduction = 0.99;  // beyond what the 25% floor allows
  try {
    compress::channel_prune(g, opt);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--macs-reduction"), std::string::npos) << e.what();
  }
}

TEST(ChannelSlimming, AddsTheL1SubgradientToBnScales) {
  const Graph g = zoo_model("resnet8");
  const std::vector<std::string> names = compress::batchnorm_scale_names(g);
  ASSERT_FALSE(names.empty());
  auto hook = compress::slimming_hook(g, 0.25);
  Tensor gamma(DType::kF32, {3}), grad(DType::kF32, {3}), w(DType::kF32, {2}), wg(DType::kF32, {2});
  gamma.f32()[0] = 2.0f;
  gamma.f32()[1] = -1.0f;
  gamma.f32()[2] = 0.0f;
  grad.f32()[0] = 1.0f;
  w.f32()[0] = 3.0f;
  std::vector<ParamRef> params = {{names[0], gamma, grad}, {"stem.conv.weight", w, wg}};
  hook(0, params);
  EXPECT_FLOAT_EQ(grad.f32()[0], 1.25f);
  EXPECT_FLOAT_EQ(grad.f32()[1], -0.25f);
  EXPECT_FLOAT_EQ(grad.f32()[2], 0.0f);
  EXPECT_FLOAT_EQ(wg.f32()[0], 0.0f);  // not a BN scale
  EXPECT_THROW(compress::slimming_hook(g, -1.0), Error);
  EXPECT_THROW(compress::slimming_hook(zoo_model("lenet300"), 0.1), Error);  // no BatchNorm
}

}  // namespace
}  // namespace minnow
