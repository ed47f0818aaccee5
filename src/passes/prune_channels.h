// Structured channel pruning that physically shrinks the graph (issue 5, deliverable 2).
//
// analyze_channels() finds the channel groups of a graph: sets of channels that must be removed
// together. A group starts at the output channels of a Conv2d (group 1) or a rank-2 Linear and
// follows them through everything that keeps the channel axis (BatchNorm, activations, pools,
// depthwise convs, Flatten into a Linear, Concat offsets, Split), up to the consumers that
// contract it (the input channels of the next convs, the input features of a Linear). Groups
// joined by an elementwise Add/Mul/... (residual connections, squeeze-and-excitation) are merged:
// the same indices are removed on every tensor the op joins. Every initializer slice indexed by
// a group is recorded as a ChannelParamUse, so one mask per group rewrites them all.
//
// A group is frozen (not prunable) when it reaches something whose channel semantics the pass
// does not model: a graph output, a Reshape/Transpose (channel shuffle), a grouped conv, a
// reduction, a shared or non-constant weight, a Split across a concat boundary, ... Freezing is
// always safe: the channels keep their count and nothing indexed by them changes.
//
// prune_channels() then removes the channels a mask marks, slicing every recorded initializer
// and updating depthwise `group` and Split `split` attributes. Initializers are replaced by new
// tensors (storage shared with a training graph is never written).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "minnow/graph.h"

namespace minnow {

// One run of channels along axis 1 of a value: channel c of group `group` occupies positions
// [offset + c * inner, offset + (c + 1) * inner) of the axis (inner > 1 after a Flatten of
// [N, C, H, W]: each channel becomes H*W features).
struct ChannelSegment {
  int group = -1;
  int64_t length = 0;  // channels of the group (the group's size)
  int64_t inner = 1;
};
using ChannelLayout = std::vector<ChannelSegment>;

// How an initializer is indexed by a group's channels.
enum class ChannelParamRole {
  kSourceWeight,      // output rows of the conv/linear that creates the channels
  kSourceBias,        // its bias
  kBnScale,           // BatchNorm gamma
  kBnShift,           // BatchNorm beta
  kBnStat,            // BatchNorm running mean / variance
  kDepthwiseWeight,   // a depthwise conv's rows (its channels are the input's)
  kDepthwiseBias,     // its bias
  kElementwiseConst,  // a per-channel constant operand of Add/Mul/...
  kConsumerWeight,    // input channels of a conv / input features of a Linear
};

struct ChannelParamUse {
  int group = -1;
  std::string node;         // the node reading the initializer
  std::string initializer;  // its name
  int axis = 0;             // the axis of the initializer the channels index
  int64_t offset = 0;       // first position of channel 0 along that axis
  int64_t inner = 1;        // positions per channel
  ChannelParamRole role = ChannelParamRole::kSourceWeight;
};

struct ChannelGroup {
  int64_t size = 0;
  std::vector<std::string> sources;  // nodes whose output channels are this group
  bool prunable = true;
  std::string frozen_reason;  // why not, naming the node or value
  std::vector<ChannelParamUse> uses;
};

struct ChannelAnalysis {
  std::vector<ChannelGroup> groups;
  std::vector<std::pair<std::string, ChannelLayout>> layouts;  // value -> its axis-1 layout
  std::vector<std::string> depthwise_nodes;                    // group attr follows channels
  std::vector<std::string> split_nodes;                        // split attr follows channels
  const ChannelLayout* layout(const std::string& value) const;
};

// `exclude`: glob patterns (fnmatch, e.g. "block1.*") of source node names whose output channels
// must be kept. Throws minnow::Error when the graph's shapes cannot be inferred.
ChannelAnalysis analyze_channels(const Graph& g, const std::vector<std::string>& exclude = {});

// What prune_channels changed: per source node, the channel count before and after and the
// removed indices.
struct PrunedLayer {
  std::string node;
  int64_t channels_before = 0, channels_after = 0;
  std::vector<int64_t> removed;
};

// Removes, for every group, the channels whose keep[group][c] is 0. keep has one entry per
// group, each of the group's size (an empty entry keeps the whole group). Frozen groups must be
// kept whole and every group must keep at least one channel; throws minnow::Error otherwise.
// `analysis` must come from analyze_channels(g) on the graph as it is now.
std::vector<PrunedLayer> prune_channels(Graph& g, const ChannelAnalysis& analysis,
                                        const std::vector<std::vector<char>>& keep);

}  // namespace minnow
