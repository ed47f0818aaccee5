// Re-initialization of a graph's trainable parameters (minnow train --reinit): an imported or
// saved model trained from scratch with the architecture kept. Each parameter gets PyTorch's
// default for the role it plays in the node that reads it, so a re-initialized import starts
// where the same network built in PyTorch (or minnow's zoo) would.
#pragma once

#include <cstdint>

#include "minnow/graph.h"

namespace minnow {

// Returns how many initializers were re-initialized. Running statistics of BatchNorm (frozen
// initializers) are reset to mean 0, variance 1.
int reinitialize_parameters(Graph& g, uint64_t seed);

}  // namespace minnow
