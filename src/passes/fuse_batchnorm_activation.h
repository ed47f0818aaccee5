// Graph pass: BatchNorm followed by its only consumer ReLU or ReLU6 becomes one BatchNorm node
// with attribute activation = "relu" | "relu6" (see src/ops/norm.cpp).
//
// The fused node takes the activation's output name, so every value the rest of the graph (or a
// caller asking for a named value) sees keeps its name; only the BatchNorm's intermediate output
// disappears. Parameters are untouched. The training session runs this on its private copy of
// the graph: in MobileNet-style networks the BN -> ReLU6 pairs are a third of a training step's
// memory traffic.
#pragma once

#include "minnow/graph.h"

namespace minnow {

// Returns the number of pairs fused.
int fuse_batchnorm_activation(Graph& graph);

}  // namespace minnow
