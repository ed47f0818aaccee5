// Graph pass for inference: a Conv2d whose output only an Add reads, adding a tensor of the same
// shape that is ready before the convolution runs (a residual connection), becomes one Conv2d
// with that tensor as its `sum` input (ops/conv.cpp: y = act(conv(x) + b + sum)); a ReLU or
// ReLU6 that is the Add's only reader becomes the convolution's fused activation.
//
// A residual Add reads two full activations and writes a third; in the convolution's epilogue
// (a oneDNN post-op on channels-last data) it costs one extra read of data the convolution is
// writing anyway. MobileNetV2's projection convolutions and ResNet's second convolutions of a
// block match. The fused Conv2d takes the output name of the last node it absorbs, so every
// value name the rest of the graph reads survives.
#pragma once

#include "minnow/graph.h"

namespace minnow {

// Returns the number of Adds fused.
int fuse_residual_add(Graph& graph);

}  // namespace minnow
