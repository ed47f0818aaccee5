// Network slimming (Liu et al. 2017): an L1 penalty lambda * sum |gamma| on the BatchNorm scales
// while training, so that unimportant channels' scales shrink towards zero and bn-scale channel
// pruning (compress/channel_prune.h) can remove them with little loss.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "minnow/graph.h"
#include "train/training_session.h"

namespace minnow::compress {

// Names of the BatchNorm scale (gamma) initializers of `g`, in node order.
std::vector<std::string> batchnorm_scale_names(const Graph& g);

// A TrainConfig::before_step hook adding lambda * sign(gamma) (the L1 subgradient) to the
// gradient of every BatchNorm scale of `g`. Throws minnow::Error naming --slimming-l1 when lambda
// is negative or not finite, or when the graph has no trainable BatchNorm scale.
std::function<void(int64_t, std::vector<ParamRef>&)> slimming_hook(const Graph& g, double lambda);

}  // namespace minnow::compress
