// Graph pass for inference, run after lower_qdq (passes/lower_qdq.h): activations stay
// channels-last (NHWC) between the ops that can take them that way, int8 and f32 alike.
//
// oneDNN computes int8 convolutions, and its fastest f32 ones on AVX-512 (brgconv), on NHWC
// data. A convolution on NCHW data therefore reorders its input and its output on every call
// (or, in f32, runs minnow's own NCHW kernels), and on memory-bound layers (1x1 and depthwise
// convolutions of MobileNet-style networks) that costs as much as the convolution. This pass
// finds regions of connected channels-last-capable nodes — QLinearConv, QLinearGlobalAvgPool,
// f32 Conv2d and GlobalAvgPool (all given attribute channels_last=1), and the elementwise
// QLinearAdd, QLinearLookup, f32 Add without broadcasting and f32 activations (Relu, Relu6,
// LeakyRelu, HardSwish, HardSigmoid, Sigmoid, Tanh, Gelu: layout-agnostic when their inputs
// share one layout) on rank-4 values — and switches the values inside a region to NHWC shapes
// [N,H,W,C]. At a region's border it inserts Transpose nodes: perm [0,2,3,1] on a value
// entering the region, [0,3,1,2] on one leaving it (a reader outside the region such as MaxPool
// or Flatten, or a graph output).
//
// A region is converted only when it pays: the bytes its border transposes move (per sample) must
// be fewer than the bytes its convolutions reorder in NCHW form. A lone convolution between two
// MaxPools (LeNet) therefore stays NCHW. Every graph input and output keeps its name, dtype and
// layout; values inside a converted region keep their names and change shape. Channels-last
// Conv2d and GlobalAvgPool have no gradient: the pass is for inference sessions only.
#pragma once

#include "minnow/graph.h"

namespace minnow {

struct ChannelsLastResult {
  int regions = 0;     // regions converted
  int nodes = 0;       // nodes now running channels-last
  int transposes = 0;  // Transpose nodes inserted at region borders
};

ChannelsLastResult channels_last(Graph& graph);

}  // namespace minnow
