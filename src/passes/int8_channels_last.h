// Graph pass for inference, run after lower_qdq (passes/lower_qdq.h): int8 activations stay
// channels-last (NHWC) between the integer ops that can take them that way.
//
// oneDNN computes int8 convolutions on NHWC data. A QLinearConv on NCHW data therefore reorders
// its input and its output on every call, and on memory-bound layers (1x1 and depthwise
// convolutions of MobileNet-style networks) those two reorders cost as much as the convolution.
// This pass finds regions of connected channels-last-capable nodes — QLinearConv,
// QLinearGlobalAvgPool (both given attribute channels_last=1) and QLinearAdd (elementwise, so
// layout-agnostic when both inputs share one layout) on rank-4 values — and switches the values
// inside a region to NHWC shapes [N,H,W,C]. At a region's border it inserts Transpose nodes:
// perm [0,2,3,1] on a value entering the region, [0,3,1,2] on one leaving it (a reader outside
// the region such as MaxPool or Flatten, or a graph output). Transposes move the int8 bytes (or
// the f32 result of a QLinearConv with float output).
//
// A region is converted only when it pays: the bytes its border transposes move (per sample) must
// be fewer than the bytes its convolutions reorder in NCHW form. A lone convolution between two
// MaxPools (LeNet) therefore stays NCHW. Every graph input and output keeps its name, dtype and
// layout; values inside a converted region keep their names and change shape.
#pragma once

#include "minnow/graph.h"

namespace minnow {

struct ChannelsLastResult {
  int regions = 0;     // regions converted
  int nodes = 0;       // nodes now running channels-last
  int transposes = 0;  // Transpose nodes inserted at region borders
};

ChannelsLastResult int8_channels_last(Graph& graph);

}  // namespace minnow
