// Graph pass for inference: drops what an inference run does not need.
//  - Dropout nodes (the identity outside training): their consumers read the input directly.
//    A Dropout whose output is a graph output stays (the output name must survive).
//  - Dead nodes: nodes none of whose outputs reach a graph output.
//  - Initializers that no remaining node reads.
#pragma once

#include "minnow/graph.h"

namespace minnow {

// Returns the number of nodes removed.
int simplify_for_inference(Graph& graph);

}  // namespace minnow
