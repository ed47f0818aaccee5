// Small models and data for the pruning tests: a conv + linear classifier of 8x8 "images"
// (a bright row, column or diagonal plus noise, three classes) that trains in well under a
// second.
#pragma once

#include <cstdint>

#include "core/rng.h"
#include "data/dataset.h"
#include "data/normalize.h"
#include "minnow/builder.h"
#include "minnow/graph.h"
#include "synthetic_data.h"

namespace minnow::prune_test {

using testing::lines_dataset;

// conv1 (3x3, 4 channels) -> relu -> flatten -> fc1 (16) -> relu -> logits (3).
inline Graph conv_mlp(uint64_t seed = 5) {
  GraphBuilder b("conv_mlp", seed);
  std::string x = b.input("input", {kDynamic, 1, 8, 8});
  ConvOptions pad1;
  pad1.pad = 1;
  x = b.relu(b.conv2d(x, 4, 3, pad1, "conv1"));
  x = b.flatten(x, 1, "flatten");
  x = b.relu(b.linear(x, 16, true, "fc1"));
  x = b.linear(x, 3, true, "logits");
  b.output(x);
  return b.build();
}

inline data::Normalization unit_norm() { return {{0.0f}, {1.0f}}; }

inline int64_t zeros(const Tensor& t) {
  int64_t z = 0;
  for (int64_t i = 0; i < t.numel(); ++i) z += t.f32()[i] == 0.0f;
  return z;
}

}  // namespace minnow::prune_test
