// Weight clustering: k-means with linear initialization, at most 2^bits values per layer, fixed
// zeros in pruned layers, shared gradients and snapping during fine-tuning.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "compress/cluster.h"
#include "core/rng.h"
#include "minnow/builder.h"
#include "minnow/error.h"
#include "minnow/zoo.h"
#include "train/trainer.h"

namespace minnow::compress {
namespace {

// x [N, 12] -> fc1 (12 -> 16) -> relu -> fc2 (16 -> 3), random weights.
Graph mlp(uint64_t seed = 1) {
  GraphBuilder b("mlp", seed);
  std::string x = b.input("x", {kDynamic, 12});
  std::string h = b.relu(b.linear(x, 16, true, "fc1"));
  b.output(b.linear(h, 3, true, "fc2"));
  return b.build();
}

std::set<float> values_of(const Tensor& t) { return std::set<float>(t.f32(), t.f32() + t.numel()); }

TEST(Cluster, TwoGroupsGiveTheirMeans) {
  Graph g = mlp();
  Tensor& w = g.initializers.at("fc1.weight").value;
  Rng rng(3);
  double sum_lo = 0, sum_hi = 0;
  int n_lo = 0, n_hi = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    const bool hi = i % 3 == 0;
    w.f32()[i] = (hi ? 2.0f : -1.0f) + rng.uniform(-0.1f, 0.1f);
    (hi ? sum_hi : sum_lo) += w.f32()[i];
    ++(hi ? n_hi : n_lo);
  }
  ClusterOptions o;
  o.bits = 1;
  o.layers = {"fc1"};
  WeightClusters wc = cluster_weights(g, o);
  ASSERT_EQ(wc.layers.size(), 1u);
  EXPECT_EQ(wc.layers[0].param, "fc1.weight");
  EXPECT_FALSE(wc.layers[0].zero_fixed);
  std::set<float> v = values_of(g.initializers.at("fc1.weight").value);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_NEAR(*v.begin(), sum_lo / n_lo, 1e-5);
  EXPECT_NEAR(*v.rbegin(), sum_hi / n_hi, 1e-5);
  // fc2 was not selected.
  EXPECT_GT(values_of(g.initializers.at("fc2.weight").value).size(), 2u);
}

TEST(Cluster, AtMostTwoToTheBitsValuesAndErrorFallsWithBits) {
  double last_mse = 1e9;
  for (int bits = 1; bits <= 6; ++bits) {
    Graph g = mlp(7);
    ClusterOptions o;
    o.bits = bits;
    WeightClusters wc = cluster_weights(g, o);
    ASSERT_EQ(wc.layers.size(), 2u);
    for (const LayerClusters& l : wc.layers) {
      EXPECT_LE(count_distinct(g.initializers.at(l.param).value), int64_t{1} << bits);
      EXPECT_GE(l.iterations, 1);
    }
    EXPECT_LT(wc.layers[0].mse, last_mse) << bits;
    last_mse = wc.layers[0].mse;
    // Biases are left alone.
    EXPECT_EQ(count_distinct(g.initializers.at("fc1.bias").value), 16);
  }
}

TEST(Cluster, PrunedZerosStayAFixedValue) {
  Graph g = mlp();
  Tensor& w = g.initializers.at("fc1.weight").value;
  for (int64_t i = 0; i < w.numel(); i += 2) w.f32()[i] = 0;
  ClusterOptions o;
  o.bits = 2;
  o.layers = {"fc1"};
  WeightClusters wc = cluster_weights(g, o);
  ASSERT_TRUE(wc.layers[0].zero_fixed);
  EXPECT_EQ(wc.layers[0].centroids.size(), 3u);
  const Tensor& c = g.initializers.at("fc1.weight").value;
  for (int64_t i = 0; i < c.numel(); ++i) {
    if (i % 2 == 0) {
      EXPECT_EQ(c.f32()[i], 0.0f);
      EXPECT_EQ(wc.layers[0].assignment[i], -1);
    } else {
      EXPECT_GE(wc.layers[0].assignment[i], 0);
    }
  }
  EXPECT_LE(count_distinct(c), 4);
}

TEST(Cluster, GradientsAreSharedPerCluster) {
  WeightClusters wc;
  LayerClusters l;
  l.param = "w";
  l.centroids = {-1.0, 1.0};
  l.assignment = {0, 1, 0, -1, 1};
  wc.layers = {l};
  ParamRef p{"w", Tensor(DType::kF32, {5}), Tensor(DType::kF32, {5})};
  const float g0[] = {1, 10, 3, 7, 20};
  std::copy(g0, g0 + 5, p.grad.f32());
  std::vector<ParamRef> params = {p};
  wc.share_gradients(params);
  const float mean[] = {2, 15, 2, 0, 15};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(p.grad.f32()[i], mean[i]) << i;
  std::copy(g0, g0 + 5, p.grad.f32());
  wc.sum_gradients = true;
  wc.share_gradients(params);
  const float sum[] = {4, 30, 4, 0, 30};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(p.grad.f32()[i], sum[i]) << i;
  // snap: members take their cluster's mean value, fixed zeros go back to 0.
  const float v0[] = {0.5f, 2, 1.5f, 0.25f, 4};
  std::copy(v0, v0 + 5, p.value.f32());
  wc.snap(params);
  const float snapped[] = {1, 3, 1, 0, 3};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(p.value.f32()[i], snapped[i]) << i;
  EXPECT_EQ(wc.layers[0].centroids[1], 3.0);
  // A parameter the session does not train (frozen) is left alone.
  std::vector<ParamRef> none;
  wc.share_gradients(none);
  wc.snap(none);
}

// Three separable classes of 12 features.
data::Dataset blobs(int64_t n, uint64_t seed) {
  data::Dataset d;
  d.x = Tensor(DType::kF32, {n, 12});
  d.y = Tensor(DType::kI64, {n});
  d.num_classes = 3;
  Rng rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = static_cast<int64_t>(rng.below(3));
    for (int j = 0; j < 12; ++j) {
      d.x.f32()[i * 12 + j] = rng.uniform(-0.5f, 0.5f) + (j % 3 == c ? 1.0f : 0.0f);
    }
    d.y.data<int64_t>()[i] = c;
  }
  return d;
}

TEST(Cluster, FineTuningTrainsTheSharedValuesOnly) {
  Graph g = mlp(5);
  data::Dataset train = blobs(300, 1);
  TrainConfig dense;
  dense.epochs = 5;
  dense.lr = 0.01;
  train_model(g, train, data::Normalization{}, dense);
  Tensor& w = g.initializers.at("fc1.weight").value;
  for (int64_t i = 0; i < w.numel(); i += 3) w.f32()[i] = 0;  // "pruned"
  ClusterOptions o;
  o.bits = 2;
  WeightClusters wc = cluster_weights(g, o);
  const std::vector<double> before = wc.layers[0].centroids;
  TrainConfig c;
  c.epochs = 3;
  c.batch = 32;
  c.lr = 0.02;
  c.optimizer.kind = "sgd";
  c.optimizer.momentum = 0.9;
  c.before_step = [&](int64_t, std::vector<ParamRef>& p) { wc.share_gradients(p); };
  c.after_step = [&](int64_t, std::vector<ParamRef>& p) { wc.snap(p); };
  train_model(g, train, data::Normalization{}, c);
  const Tensor& after = g.initializers.at("fc1.weight").value;
  EXPECT_LE(count_distinct(after), 4);
  for (int64_t i = 0; i < after.numel(); i += 3) EXPECT_EQ(after.f32()[i], 0.0f) << i;
  EXPECT_LE(count_distinct(g.initializers.at("fc2.weight").value), 4);
  double moved = 0;
  for (size_t k = 0; k < before.size(); ++k)
    moved += std::fabs(wc.layers[0].centroids[k] - before[k]);
  EXPECT_GT(moved, 1e-4);
  // The centroids are what the weights hold.
  for (int64_t i = 0; i < after.numel(); ++i) {
    const int32_t a = wc.layers[0].assignment[i];
    EXPECT_EQ(after.f32()[i], a < 0 ? 0.0f : static_cast<float>(wc.layers[0].centroids[a]));
  }
  EXPECT_GT(evaluate_model(g, blobs(200, 2), data::Normalization{}).accuracy, 0.8);
}

TEST(Cluster, BadOptions) {
  Graph g = mlp();
  ClusterOptions o;
  o.bits = 0;
  EXPECT_THROW(cluster_weights(g, o), Error);
  o.bits = 9;
  EXPECT_THROW(cluster_weights(g, o), Error);
  o.bits = 3;
  o.layers = {"conv*"};
  try {
    cluster_weights(g, o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'conv*' matches no"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace minnow::compress
