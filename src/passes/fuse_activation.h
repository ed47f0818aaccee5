// Graph pass: a producer (BatchNorm, Conv2d, Linear) followed by its only consumer ReLU or ReLU6
// becomes one producer node with attribute activation = "relu" | "relu6"
// (ops/fused_activation.h).
//
// The fused node takes the activation's output name, so every value the rest of the graph (or a
// caller asking for a named value) sees keeps its name; only the producer's intermediate output
// disappears. Parameters are untouched. The training session fuses BatchNorm -> activation (in
// MobileNet-style networks those pairs are a third of a training step's memory traffic); the
// inference session, after folding BatchNorm away, fuses Conv2d/Linear -> activation.
#pragma once

#include <vector>

#include "minnow/graph.h"

namespace minnow {

// Fuses pairs whose producer's op is in `producers`; returns the number of pairs fused.
int fuse_activation(Graph& graph, const std::vector<OpKind>& producers);

inline int fuse_batchnorm_activation(Graph& graph) {
  return fuse_activation(graph, {OpKind::kBatchNorm});
}

}  // namespace minnow
