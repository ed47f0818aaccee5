// Unstructured pruning masks: which entries of a Conv2d/Linear weight are kept.
//
// A mask is not stored as a separate tensor: a pruned weight is exactly zero in the model file,
// so the mask of a loaded pruned model is "weight != 0" (from_zeros). That keeps .mnw files,
// ONNX export and the compact sparse storage unaware of masks, and any later fine-tuning that
// installs the masks (install()) keeps pruned weights at zero: their gradients are zeroed before
// the optimizer step and the weights re-zeroed after it, so neither momentum nor weight decay
// revives them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "minnow/graph.h"
#include "train/trainer.h"

namespace minnow::compress {

// A weight that unstructured pruning may sparsify: input 1 of a Conv2d or Linear node, an f32
// initializer. Biases, BatchNorm and all other tensors are never pruned.
struct PrunableLayer {
  std::string node;    // the (first) node reading the weight
  std::string weight;  // initializer name
  int64_t params = 0;
};

// Prunable layers in graph order (a weight shared by several nodes is listed once), leaving
// out those whose node or weight name matches one of `exclude` (shell globs: "conv1",
// "logits*", "*.weight"). Throws minnow::Error when a pattern matches no prunable layer (a
// typo would otherwise silently prune everything).
std::vector<PrunableLayer> prunable_layers(const Graph& g,
                                           const std::vector<std::string>& exclude = {});

// The layer named `name` (node or weight name) among `layers`, or nullptr.
const PrunableLayer* find_layer(const std::vector<PrunableLayer>& layers, const std::string& name);

// Glob match (fnmatch) of `name` against `pattern`.
bool name_matches(const std::string& pattern, const std::string& name);

class PruneMasks {
 public:
  // keep = (weight != 0) for every listed layer that has at least one zero.
  static PruneMasks from_zeros(const Graph& g, const std::vector<PrunableLayer>& layers);

  // Recomputes the mask of `weight` from the zeros of `value` (dropped when it has none).
  void update_from_zeros(const std::string& weight, const Tensor& value);
  bool empty() const { return keep_.empty(); }
  // weight name -> keep flags (1 keep, 0 pruned), one per element.
  const std::map<std::string, std::vector<uint8_t>>& masks() const { return keep_; }
  int64_t pruned_count(const std::string& weight) const;

  // Zeroes the masked entries of the gradients / values of the matching parameters.
  void mask_grads(std::vector<ParamRef>& params) const;
  void mask_values(std::vector<ParamRef>& params) const;
  // Zeroes the masked entries of the graph's weights in place.
  void apply(Graph& g) const;

  // Chains mask_grads onto config.before_step and mask_values onto config.after_step (after
  // any hooks already there), sharing `masks` so that a caller may keep updating it.
  static void install(const std::shared_ptr<PruneMasks>& masks, TrainConfig& config);

 private:
  void mask(const std::string& name, Tensor& t) const;
  std::map<std::string, std::vector<uint8_t>> keep_;
};

}  // namespace minnow::compress
