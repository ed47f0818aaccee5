// Transfer learning (issue 5, deliverable 6): a new classification head for a new task, and
// freezing parts of a model by node-name patterns. LoRA adapters are a graph pass
// (passes/lora.h); `minnow finetune` combines the three.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "minnow/graph.h"

namespace minnow::compress {

// The classification head: the last Linear node feeding the graph's single output, reached
// backwards through single-input nodes without parameters (Identity, Dropout, Reshape, ...).
// Throws minnow::Error when there is none.
std::string find_head(const Graph& g);

// Replaces the head's weight [K, in] and bias [K] by freshly initialized ones for `classes`
// classes (PyTorch's nn.Linear default init) and updates the output's shape. Returns the head's
// node name.
std::string replace_head(Graph& g, int64_t classes, uint64_t seed);

// Sets trainable = false on every float initializer read by a node whose name matches one of the
// globs. Returns the frozen initializer names. Throws minnow::Error for a pattern that matches no
// node (a typo would otherwise silently train everything).
std::vector<std::string> freeze_nodes(Graph& g, const std::vector<std::string>& patterns);

// Marks every initializer trainable = false (LoRA: only adapters and the head train).
void freeze_all(Graph& g);
// Marks the named initializers trainable again (names no longer in `g` are ignored).
void restore_trainable(Graph& g, const std::set<std::string>& names);

// Metadata key of a saved, unmerged LoRA model: the initializers that were trainable before
// fine-tuning froze them, so that merge-lora gives back a normally trainable model.
inline constexpr const char* kLoraFrozenMetadata = "lora_frozen";

}  // namespace minnow::compress
