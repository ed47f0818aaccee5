// Channel pruning driver: ranks the channels of every prunable group (passes/prune_channels.h)
// and removes the least important ones until the graph's MACs drop by the requested fraction.
//
// Ranking is global across layers: channels are removed one at a time, least important first,
// each layer keeping at least max(min_keep_channels, min_keep_fraction of its channels).
// Criteria:
//   l1       — L1 norm of each channel's filter (the rows of the convs/linears creating the
//              group), divided by the layer's mean filter norm so that layers of different
//              scale compare; tied groups average their members' normalized scores.
//   bn-scale — |gamma| of the BatchNorms on the group (network slimming, Liu et al. 2017),
//              compared across layers as is (slimming training makes them comparable); a group
//              with no BatchNorm falls back to its normalized L1 score.
// Then every pruned layer's channel count is rounded to a multiple of `channel_multiple` (the
// vector width of the convolution kernels: a layer of 11 channels computes as slowly as one of
// 16), removing further multiples from the least important layers until the MACs target holds.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "minnow/graph.h"
#include "passes/prune_channels.h"

namespace minnow::compress {

struct ChannelPruneOptions {
  double macs_reduction = 0.5;       // fraction of the MACs to remove, in (0, 1)
  std::string criterion = "l1";      // l1 | bn-scale
  std::vector<std::string> exclude;  // glob patterns of node names whose channels stay
  double min_keep_fraction = 0.25;   // per-layer floor ...
  int64_t min_keep_channels = 4;     // ... and its absolute part (capped by the layer's size)
  int64_t channel_multiple = 8;      // pruned layers keep a multiple of this many channels (1: any)
};

struct ChannelPruneResult {
  int64_t macs_before = 0, macs_after = 0;      // per sample, from graph_stats
  int64_t params_before = 0, params_after = 0;  // trainable parameters
  int groups = 0, prunable_groups = 0, pruned_groups = 0;
  std::vector<PrunedLayer> layers;  // per source conv/linear: channels before, after, removed
  // Groups that could not be pruned and why (one line per reason, with how many groups).
  std::vector<std::string> frozen;
};

// Prunes `graph` in place. Throws minnow::Error naming the option when macs_reduction or
// criterion is invalid, or when the floors make the reduction unreachable.
ChannelPruneResult channel_prune(Graph& graph, const ChannelPruneOptions& options);

nlohmann::json to_json(const ChannelPruneResult& r);

// Per-channel importance of each group under `criterion` (empty for frozen groups).
std::vector<std::vector<double>> channel_importance(const Graph& graph,
                                                    const ChannelAnalysis& analysis,
                                                    const std::string& criterion);

}  // namespace minnow::compress
