// BatchNorm folding simulated during quantization-aware training (Jacob et al. 2018, section
// 3.2; the scheme of PyTorch's ConvBn2d): until BatchNorm is frozen, a Conv2d -> BatchNorm pair
// trains as
//
//   s  = gamma / sqrt(running_var + eps)                       [C]       Add, Sqrt, Div
//   w' = w * s[c]                                              the folded weight, fake-quantized
//   y  = Conv2d(x, fq(w')) / s[c]  (+ b[c])                    Reshape, Mul, Conv2d, Div, Add
//   out = BatchNorm(y, gamma, beta, running_mean, running_var) batch statistics in training
//
// so the weights see exactly the quantization grid they will have once BatchNorm is folded
// (with the running statistics), while BatchNorm still normalizes with batch statistics and
// keeps its running statistics moving. In eval mode the block computes the folded, quantized
// convolution itself. Freezing = folding: with running statistics, BatchNorm(Conv(x, fq(w'))/s)
// is Conv2d(x, fq(w')) + (b - mean) * s + beta, which is what fold_batchnorm produces.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "minnow/graph.h"

namespace minnow::compress {

struct SimulatedBatchNorm {
  std::string conv;           // the Conv2d node (its name is kept)
  std::string batchnorm;      // the BatchNorm node (its name is kept)
  std::string folded_weight;  // the value w' = w * s that the conv's weight quantizer reads
};

// Rewrites every Conv2d in `convs` whose output feeds only a BatchNorm (weights and BatchNorm
// parameters initializers) as above, leaving other nodes alone. The Conv2d keeps reading
// `folded_weight` through input 1, so a weight FakeQuantize goes between them. Initializer
// names and tensors are unchanged (the new nodes read them), so trained values can be copied
// back to the original graph by name.
std::vector<SimulatedBatchNorm> simulate_batchnorm_folding(Graph& g,
                                                           const std::set<std::string>& convs);

}  // namespace minnow::compress
