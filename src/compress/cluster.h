// Weight sharing (Deep Compression, Han et al. 2016): each selected layer's weights are
// clustered by 1-D k-means into at most 2^bits values, and fine-tuning trains the shared values
// rather than the individual weights.
//
// k-means starts from centroids spread linearly between the layer's minimum and maximum weight
// (the initialization Han et al. found best: it keeps the rare large weights represented) and
// runs Lloyd iterations until no weight changes cluster. A layer that already has exact zeros
// (pruned) keeps 0 as a fixed extra value: its zero weights stay zero and the others share
// 2^bits - 1 trained centroids, so the layer still has at most 2^bits distinct values.
//
// During fine-tuning, share_gradients() (TrainConfig::before_step) gives every member of a
// cluster the cluster's mean gradient (or the summed one, the gradient of the centroid itself)
// and pruned weights a zero gradient; members then receive identical optimizer updates, and
// snap() (after_step) sets them to their cluster's mean value, which keeps them exactly shared.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "minnow/graph.h"
#include "train/training_session.h"

namespace minnow::compress {

struct ClusterOptions {
  int bits = 5;  // at most 2^bits distinct values per layer, 1..8
  // Node-name glob patterns (fnmatch); empty: the weights of every Linear and Conv2d node.
  std::vector<std::string> layers;
  int max_iterations = 300;    // Lloyd iterations per layer (stops earlier when stable)
  bool sum_gradients = false;  // false: members get the mean gradient of their cluster
};

struct LayerClusters {
  std::string node;         // the first node reading the weight
  std::string param;        // the weight's initializer name
  bool zero_fixed = false;  // the layer had zeros: 0 is a fixed value outside the centroids
  std::vector<double> centroids;
  std::vector<int32_t> assignment;  // per element: its centroid, or -1 for a fixed zero
  int iterations = 0;               // Lloyd iterations run
  double mse = 0;                   // mean squared change of the weights by the clustering
};

class WeightClusters {
 public:
  std::vector<LayerClusters> layers;
  bool sum_gradients = false;

  // TrainConfig::before_step: shares each cluster's gradient among its members.
  void share_gradients(std::vector<ParamRef>& params) const;
  // TrainConfig::after_step: every member takes its cluster's mean value (the new centroid),
  // fixed zeros are reset to 0.
  void snap(std::vector<ParamRef>& params);
  // Writes the current centroids into the graph's weights (the same as snap on the graph).
  void apply(Graph& g) const;
};

// Clusters the selected weights in place (each weight replaced by its centroid). Throws
// minnow::Error for bits outside 1..8 or a pattern that matches no Linear/Conv2d node.
WeightClusters cluster_weights(Graph& g, const ClusterOptions& options);

// Distinct values of a float tensor (for reports and tests).
int64_t count_distinct(const Tensor& t);

}  // namespace minnow::compress
