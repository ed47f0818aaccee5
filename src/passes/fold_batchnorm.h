// Graph pass for inference: BatchNorm (running statistics) folded into the Conv2d or Linear
// that feeds it. With s = scale / sqrt(running_var + eps), per output channel c:
//   w'[c] = w[c] * s[c],   b'[c] = (b[c] - running_mean[c]) * s[c] + bias[c]   (b = 0 if absent)
// The BatchNorm node disappears and the producer takes its output name. Only pairs where the
// producer's output feeds nothing but the BatchNorm, and all weights are constant initializers,
// are folded. Folded weights are new tensors: the caller's initializers (which a training graph
// may share) are never modified. Valid only where BatchNorm runs in eval mode.
#pragma once

#include "minnow/graph.h"

namespace minnow {

// Returns the number of BatchNorm nodes folded.
int fold_batchnorm(Graph& graph);

}  // namespace minnow
