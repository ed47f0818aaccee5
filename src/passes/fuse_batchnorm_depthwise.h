// Training-time graph pass: a BatchNorm (with or without its fused ReLU/ReLU6) whose only reader
// is a depthwise Conv2d becomes one BatchNormDepthwiseConv node with both ops' inputs and
// attributes (ops/bn_depthwise_conv.cpp), so the normalized activation between them is never
// written to memory. MobileNet-style expansion -> depthwise pairs match. A BatchNorm that is the
// convolution's only reader joins the node too (its inputs after the convolution's, its
// attributes as post_*), so the convolution's output gradient stays in cache as well.
//
// The fused node takes the last op's output name; the BatchNorm's output disappears. The
// parameters (and the running statistics, which the fused node still moves) keep their names,
// so optimizers and checkpoints see the same tensors. Convolutions with a residual sum, a fused
// activation or channels-last data are left alone.
#pragma once

#include "minnow/graph.h"

namespace minnow {

// Returns the number of pairs fused.
int fuse_batchnorm_depthwise(Graph& graph);

}  // namespace minnow
