// Evaluation through the inference runtime, for graphs the training session does not run as
// deployed: a quantized graph's accuracy is the accuracy of its integer kernels
// (passes/lower_qdq.h), not of a float simulation of them.
#pragma once

#include "data/dataset.h"
#include "data/normalize.h"
#include "minnow/graph.h"
#include "train/trainer.h"

namespace minnow {

// Loss is the mean softmax cross-entropy of the graph's first output (the logits).
EvalResult evaluate_with_runtime(const Graph& graph, const data::Dataset& data,
                                 const data::Normalization& norm, int64_t batch);

}  // namespace minnow
