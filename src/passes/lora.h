// Graph passes for LoRA (low-rank adaptation, Hu et al. 2021) on Linear and 1x1 Conv2d nodes.
//
// add_lora rewrites a target node `n` computing y = W x (+ b) into
//     n            : y0 = W x (+ b)                      (W, b frozen)
//     n.lora_a     : a  = A x          A [r, in]  (1x1 conv with n's strides/pads for Conv2d)
//     n.lora_b     : u  = B a          B [out, r], zeros: the model is unchanged at the start
//     n.lora_scale : v  = (alpha / r) u
//     n.lora_add   : y  = y0 + v        (takes n's old output name, so readers are unchanged)
// with A ~ U(+-1/sqrt(in)) (kaiming-uniform, as PyTorch's nn.Linear) and only A and B trainable.
// The adapters are ordinary nodes and initializers, so a LoRA model trains, saves and loads as a
// normal .mnw; merge_lora folds them back (W += scale * B A) into the plain architecture.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "minnow/graph.h"

namespace minnow {

struct LoraOptions {
  int64_t rank = 4;
  double alpha = 8.0;                // scale = alpha / rank
  std::vector<std::string> targets;  // node-name globs (fnmatch); empty: every eligible node
  std::vector<std::string> exclude;  // node names never adapted (e.g. a new classifier head)
  uint64_t seed = 0;
};

struct LoraResult {
  std::vector<std::string> adapted;  // node names that got an adapter
  std::vector<std::string> skipped;  // matched a target but not eligible, with the reason
  int64_t adapter_params = 0;
};

// Adds adapters to every Linear / 1x1 group-1 Conv2d whose name matches a target and freezes
// their base weights. Throws minnow::Error for a bad rank/alpha, a node that already has an
// adapter, or when no node matches.
LoraResult add_lora(Graph& graph, const LoraOptions& options);

// Folds every adapter into its base weight and removes the adapter nodes and initializers; the
// merged weights (and biases) become trainable again. Returns the number of adapters merged.
// Throws minnow::Error naming the node when an adapter's structure is not the one add_lora
// builds.
int merge_lora(Graph& graph);

// Node-name glob (fnmatch: *, ?, [..]).
bool name_matches(const std::string& pattern, const std::string& name);
bool name_matches_any(const std::vector<std::string>& patterns, const std::string& name);

}  // namespace minnow
