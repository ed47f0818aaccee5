// Unstructured magnitude pruning: the in-place kernels, the Graph -> Graph pass, prunable-layer
// selection, masks that training respects, and the per-layer sparsity report.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "compress/prune_masks.h"
#include "compress/prune_report.h"
#include "minnow/error.h"
#include "minnow/zoo.h"
#include "passes/prune_weights.h"
#include "prune_test_util.h"
#include "train/trainer.h"

namespace minnow {
namespace {

using prune_test::zeros;

Tensor vec(const std::vector<float>& v) {
  Tensor t(DType::kF32, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.f32()[i] = v[i];
  return t;
}

std::vector<float> values(const Tensor& t) { return {t.f32(), t.f32() + t.numel()}; }

TEST(PruneSmallest, ZeroesExactlyTheSmallestMagnitudes) {
  Tensor t = vec({0.5f, -0.1f, 0.3f, -0.9f, 0.2f, 0.05f, -0.7f, 0.4f});
  EXPECT_EQ(passes::prune_smallest(t, 0.5), 4);
  EXPECT_EQ(values(t), (std::vector<float>{0.5f, 0, 0, -0.9f, 0, 0, -0.7f, 0.4f}));
}

TEST(PruneSmallest, TiesBrokenByIndexAndCountRounded) {
  Tensor t = vec({1, 1, 1, 1, 1, 1, 1});
  // round(0.5 * 7) = 4 (llround rounds half away from zero): the first four go.
  EXPECT_EQ(passes::prune_smallest(t, 0.5), 4);
  EXPECT_EQ(values(t), (std::vector<float>{0, 0, 0, 0, 1, 1, 1}));
}

TEST(PruneSmallest, ExistingZerosCountAndSparsityOnlyGrows) {
  Tensor t = vec({0, 0.2f, 0, 0.4f, 0.5f, -0.6f, 0.7f, 0.8f, 0.9f, 1.0f});
  EXPECT_EQ(passes::prune_smallest(t, 0.3), 3);  // the two zeros + 0.2
  EXPECT_EQ(t.f32()[1], 0.0f);
  EXPECT_EQ(t.f32()[3], 0.4f);
  EXPECT_EQ(passes::prune_smallest(t, 0.1), 3);  // lower target: nothing comes back
  EXPECT_EQ(passes::prune_smallest(t, 1.0), 10);
  EXPECT_EQ(passes::prune_smallest(t, 0.0), 10);
}

TEST(PruneSmallest, BadSparsityThrows) {
  Tensor t = vec({1, 2});
  EXPECT_THROW(passes::prune_smallest(t, -0.1), Error);
  EXPECT_THROW(passes::prune_smallest(t, 1.5), Error);
  EXPECT_THROW(passes::prune_smallest(t, std::nan("")), Error);
  Tensor d(DType::kF64, {2});
  EXPECT_THROW(passes::prune_smallest(d, 0.5), Error);
}

TEST(PruneSmallestGlobal, OneThresholdAcrossTensors) {
  // b is ten times smaller than a: a global 50% removes all of b and nothing of a, where
  // per-layer pruning would remove half of each.
  Tensor a = vec({1, -2, 3, 4}), b = vec({0.1f, -0.2f, 0.3f, 0.4f});
  passes::prune_smallest_global({&a, &b}, 0.5);
  EXPECT_EQ(zeros(a), 0);
  EXPECT_EQ(zeros(b), 4);
  passes::prune_smallest_global({&a, &b}, 0.75);
  EXPECT_EQ(values(a), (std::vector<float>{0, 0, 3, 4}));
}

TEST(PruneMagnitudePass, PrunesPlannedWeightsOnlyAndLeavesInputUntouched) {
  Graph g = prune_test::conv_mlp();
  const std::vector<float> fc1_before = values(g.initializers.at("fc1.weight").value);
  passes::MagnitudePlan plan;
  plan.per_layer = {{"conv1.weight", 0.5}, {"fc1.weight", 0.9}};
  passes::MagnitudePruneResult r = passes::prune_magnitude(g, plan);
  // The input graph's tensors are not the result's (copies of a Graph share storage).
  EXPECT_EQ(values(g.initializers.at("fc1.weight").value), fc1_before);
  EXPECT_EQ(zeros(g.initializers.at("fc1.weight").value), 0);
  const Tensor& fc1 = r.graph.initializers.at("fc1.weight").value;
  EXPECT_EQ(zeros(fc1), std::llround(0.9 * static_cast<double>(fc1.numel())));
  EXPECT_EQ(zeros(r.graph.initializers.at("conv1.weight").value), 18);  // 36 weights
  EXPECT_EQ(zeros(r.graph.initializers.at("logits.weight").value), 0);
  EXPECT_EQ(zeros(r.graph.initializers.at("fc1.bias").value), 0);
  ASSERT_EQ(r.changed.size(), 2u);
  EXPECT_EQ(r.changed[1].weight, "fc1.weight");
  EXPECT_EQ(r.changed[1].zeros_before, 0);
  EXPECT_EQ(r.changed[1].zeros_after, zeros(fc1));
  // The kept weights are the largest ones, unchanged.
  float min_kept = 1e9f, max_pruned = 0;
  for (int64_t i = 0; i < fc1.numel(); ++i) {
    if (fc1.f32()[i] != 0.0f) {
      EXPECT_EQ(fc1.f32()[i], fc1_before[static_cast<size_t>(i)]);
      min_kept = std::min(min_kept, std::fabs(fc1.f32()[i]));
    } else {
      max_pruned = std::max(max_pruned, std::fabs(fc1_before[static_cast<size_t>(i)]));
    }
  }
  EXPECT_GE(min_kept, max_pruned);
  r.graph.validate();
}

TEST(PruneMagnitudePass, GlobalGroupReachesOverallSparsity) {
  Graph g = prune_test::conv_mlp();
  passes::MagnitudePlan plan;
  plan.global = {"conv1.weight", "fc1.weight", "logits.weight"};
  plan.global_sparsity = 0.8;
  passes::MagnitudePruneResult r = passes::prune_magnitude(g, plan);
  int64_t z = 0, n = 0;
  for (const auto& c : r.changed) {
    z += c.zeros_after;
    n += c.params;
  }
  EXPECT_EQ(z, std::llround(0.8 * static_cast<double>(n)));
}

TEST(PruneMagnitudePass, BadPlansThrow) {
  Graph g = prune_test::conv_mlp();
  passes::MagnitudePlan unknown;
  unknown.per_layer = {{"fc9.weight", 0.5}};
  EXPECT_THROW(passes::prune_magnitude(g, unknown), Error);
  passes::MagnitudePlan both;
  both.per_layer = {{"fc1.weight", 0.5}};
  both.global = {"fc1.weight"};
  EXPECT_THROW(passes::prune_magnitude(g, both), Error);
  passes::MagnitudePlan twice;
  twice.global = {"fc1.weight", "fc1.weight"};
  EXPECT_THROW(passes::prune_magnitude(g, twice), Error);
  passes::MagnitudePlan bad;
  bad.per_layer = {{"fc1.weight", 1.2}};
  EXPECT_THROW(passes::prune_magnitude(g, bad), Error);
}

TEST(PrunableLayers, ConvAndLinearWeightsInGraphOrder) {
  zoo::ZooOptions o;
  o.input_shape = {1, 28, 28};
  o.classes = 10;
  Graph g = zoo::build("lenet5", o);
  auto layers = compress::prunable_layers(g);
  std::vector<std::string> names;
  for (const auto& l : layers) names.push_back(l.node);
  EXPECT_EQ(names, (std::vector<std::string>{"conv1", "conv2", "fc1", "fc2", "logits"}));
  EXPECT_EQ(layers[0].weight, "conv1.weight");
  EXPECT_EQ(layers[0].params, 6 * 1 * 5 * 5);

  auto kept = compress::prunable_layers(g, {"conv1", "logits*"});
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept.front().node, "conv2");
  EXPECT_EQ(compress::prunable_layers(g, {"fc*.weight"}).size(), 3u);
  EXPECT_THROW(compress::prunable_layers(g, {"conv9"}), Error);
  EXPECT_NE(compress::find_layer(layers, "fc2.weight"), nullptr);
  EXPECT_EQ(compress::find_layer(layers, "fc2.bias"), nullptr);
}

TEST(PruneMasks, FromZerosAndApply) {
  Graph g = prune_test::conv_mlp();
  auto layers = compress::prunable_layers(g);
  EXPECT_TRUE(compress::PruneMasks::from_zeros(g, layers).empty());  // dense: no masks
  Tensor& w = g.initializers.at("fc1.weight").value;
  w.f32()[3] = 0.0f;
  w.f32()[7] = 0.0f;
  compress::PruneMasks m = compress::PruneMasks::from_zeros(g, layers);
  EXPECT_EQ(m.masks().size(), 1u);
  EXPECT_EQ(m.pruned_count("fc1.weight"), 2);
  w.f32()[3] = 5.0f;
  m.apply(g);
  EXPECT_EQ(w.f32()[3], 0.0f);
}

// Fine-tunes `g` with momentum SGD and weight decay (both would revive zeroed weights) and
// returns how many fc1 weights are zero afterwards.
int64_t zeros_left_after_training(Graph& g, bool with_masks) {
  passes::MagnitudePlan plan;
  plan.per_layer = {{"conv1.weight", 0.5}, {"fc1.weight", 0.8}};
  g = passes::prune_magnitude(g, plan).graph;
  const int64_t pruned = zeros(g.initializers.at("fc1.weight").value);
  EXPECT_GT(pruned, 0);
  TrainConfig c;
  c.epochs = 2;
  c.batch = 16;
  c.lr = 0.05;
  c.optimizer.kind = "sgd";
  c.optimizer.momentum = 0.9;
  c.optimizer.weight_decay = 1e-3;
  int64_t steps_seen = 0;
  c.after_step = [&](int64_t, std::vector<ParamRef>&) { ++steps_seen; };
  if (with_masks) {
    auto masks = std::make_shared<compress::PruneMasks>(
        compress::PruneMasks::from_zeros(g, compress::prunable_layers(g)));
    compress::PruneMasks::install(masks, c);
  }
  train_model(g, prune_test::lines_dataset(96, 1), prune_test::unit_norm(), c);
  EXPECT_EQ(steps_seen, 12);  // hooks chained, the earlier one still runs
  return zeros(g.initializers.at("fc1.weight").value);
}

TEST(PruneMasks, TrainingKeepsPrunedWeightsAtZero) {
  Graph masked = prune_test::conv_mlp(), free = prune_test::conv_mlp();
  const int64_t expected = std::llround(0.8 * 16 * 4 * 8 * 8);
  EXPECT_EQ(zeros_left_after_training(masked, true), expected);
  EXPECT_EQ(zeros(masked.initializers.at("conv1.weight").value), 18);
  // Control: without masks the optimizer revives them (so the check above can fail).
  EXPECT_LT(zeros_left_after_training(free, false), expected / 2);
}

TEST(PruneReport, LayerSparsityCounts) {
  Graph g = prune_test::conv_mlp();
  passes::MagnitudePlan plan;
  plan.per_layer = {{"fc1.weight", 0.75}};
  g = passes::prune_magnitude(g, plan).graph;
  auto rows = compress::layer_sparsity(g, compress::prunable_layers(g));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].name, "fc1");
  EXPECT_EQ(rows[1].params, 16 * 256);
  EXPECT_EQ(rows[1].nonzero, 16 * 256 / 4);
  EXPECT_DOUBLE_EQ(rows[1].sparsity(), 0.75);
  EXPECT_DOUBLE_EQ(rows[0].sparsity(), 0.0);
  EXPECT_NEAR(compress::overall_sparsity(rows), 0.75 * 4096 / (36 + 4096 + 48), 1e-12);
  nlohmann::json j = compress::to_json(rows);
  EXPECT_EQ(j[1]["name"], "fc1");
  EXPECT_EQ(j[1]["nonzero"], 1024);
  EXPECT_DOUBLE_EQ(j[1]["sparsity"].get<double>(), 0.75);
}

}  // namespace
}  // namespace minnow
