// The model zoo: named architectures built as Graphs with PyTorch-default initialization.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "minnow/graph.h"

namespace minnow::zoo {

struct ZooOptions {
  Shape input_shape = {1, 28, 28};  // one sample, without the batch dimension
  int64_t classes = 10;
  std::vector<int64_t> hidden = {256, 128};  // mlp only
  double dropout = 0.0;                      // mlp only
  uint64_t seed = 0;
};

struct ZooEntry {
  std::string name;
  std::string description;
};

const std::vector<ZooEntry>& entries();
bool has(const std::string& name);
// Graph with input "input" [N, ...input_shape] and output "logits" [N, classes].
// Throws minnow::Error for unknown names (listing the known ones) or unsuitable input shapes.
Graph build(const std::string& name, const ZooOptions& opt);

}  // namespace minnow::zoo
