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
  // Rate of a Dropout right before the final classifier (mlp: after every hidden layer);
  // 0 means none. The CNNs default to none so that short runs are deterministic.
  double dropout = 0.0;
  // Channel multiplier of the CNNs (mobilenets, squeezenet, shufflenet_v2, resnet8, ds_cnn);
  // scaled channel counts are rounded to a multiple of 8 like torchvision's _make_divisible.
  // The LeNets and the mlp ignore it.
  double width = 1.0;
  // Text models (lstm_classifier, gru_classifier, transformer_classifier): token vocabulary
  // size incl. PAD (0) and OOV (1); input_shape is then {max_len}.
  int64_t vocab_size = 20000;
  uint64_t seed = 0;
};

struct ZooEntry {
  std::string name;
  std::string description;
};

const std::vector<ZooEntry>& entries();
bool has(const std::string& name);
// Graph with input "input" [N, ...input_shape] and output "logits" [N, classes]. Text models
// take "input" i64 token ids [N, max_len] and a second input "lengths" i64 [N].
// Throws minnow::Error for unknown names (listing the known ones), unsuitable input shapes
// (too small, wrong rank) or a non-positive width.
Graph build(const std::string& name, const ZooOptions& opt);

}  // namespace minnow::zoo
