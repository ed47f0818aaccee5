// Unstructured magnitude pruning (Han et al. 2015): the smallest-|w| entries of chosen weight
// tensors are set to exactly zero, either with a threshold per tensor or with one threshold
// shared by a group of tensors ("global"). The graph's structure does not change; only values.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "minnow/graph.h"

namespace minnow::passes {

// What to prune. A weight in `per_layer` gets its own threshold (its fraction of zeros becomes
// the given sparsity); the weights in `global` share one threshold such that
// `global_sparsity` of all their entries together are zero. A weight may not be in both.
struct MagnitudePlan {
  std::map<std::string, double> per_layer;  // weight initializer name -> sparsity in [0, 1]
  std::vector<std::string> global;
  double global_sparsity = 0;
};

// Sets the round(sparsity * numel) smallest-magnitude entries of the f32 tensor `w` to zero
// (ties broken by index, so the result is deterministic). Entries already zero count towards
// the target, so raising the sparsity step by step only ever adds zeros. Returns the number of
// zeros afterwards.
int64_t prune_smallest(Tensor& w, double sparsity);
// Same with one threshold over all `ws` together (round(sparsity * total) smallest zeroed).
void prune_smallest_global(const std::vector<Tensor*>& ws, double sparsity);

// Applies `plan` in place to `weights` (name -> tensor sharing storage with wherever the
// caller keeps them). Throws minnow::Error for a name missing from `weights`, a sparsity
// outside [0, 1] or a non-f32 tensor.
void apply_magnitude_plan(std::map<std::string, Tensor>& weights, const MagnitudePlan& plan);

struct PrunedWeight {
  std::string weight;
  int64_t params = 0;
  int64_t zeros_before = 0, zeros_after = 0;
};
struct MagnitudePruneResult {
  Graph graph;
  std::vector<PrunedWeight> changed;  // one entry per weight of the plan, in name order
};
// The pass: returns a copy of `g` whose planned weights are pruned (new tensors: `g`'s own
// storage is left untouched) and what changed. Throws minnow::Error naming a planned weight
// that is not an f32 initializer of `g`.
MagnitudePruneResult prune_magnitude(const Graph& g, const MagnitudePlan& plan);

}  // namespace minnow::passes
