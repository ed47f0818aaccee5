// Graph pass for inference: a node whose inputs are all constant initializers is run once, now,
// with its reference kernel in eval mode, and its outputs become initializers. Graphs imported
// from other tools carry such subgraphs (shape arithmetic, reshaped or transposed weights).
// Dropout is left alone (simplify_for_inference removes it), and so are nodes whose outputs are
// graph outputs (a graph output must stay computed by a node).
#pragma once

#include "minnow/graph.h"

namespace minnow {

// Returns the number of nodes folded. With `keep_dequantize`, DequantizeLinear of a constant
// stays a node: before the quantized patterns are lowered (passes/lower_qdq.h), int8 weights
// must not turn back into float constants.
int fold_constants(Graph& graph, bool keep_dequantize = false);

// Runs node `n` once on `inputs` (one per input of `n`, undefined for an absent optional one)
// with its reference kernel in eval mode and returns its outputs.
std::vector<Tensor> evaluate_node(const Node& n, std::vector<Tensor> inputs);

}  // namespace minnow
