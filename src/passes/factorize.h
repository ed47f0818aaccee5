// Graph pass: low-rank factorization. A Linear (y = x W^T + b, W [out, in]) or 1x1 Conv2d
// (group 1) whose weight is a constant initializer is replaced by two layers of the same op,
// from the truncated SVD W ~= U_r S_r V_r^T:
//   <node>.v : in -> r, weight S_r^1/2 V_r^T, no bias (a 1x1 conv keeps the original's strides
//              and pads: padded positions give 0 either way, so the result is unchanged)
//   <node>.u : r -> out, weight U_r S_r^1/2, the original bias and fused activation, writes the
//              original output
// The singular values are split evenly so that both factors have the same scale, which keeps
// fine-tuning well conditioned. A layer is factorized only when the two weights hold fewer
// parameters than the original (r * (in + out) < in * out).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "minnow/graph.h"

namespace minnow {

struct FactorizeOptions {
  // Node-name glob patterns (fnmatch: *, ?, [..]); empty: every eligible layer. A pattern that
  // matches no Linear or 1x1 Conv2d node is an error (a typo should not pass silently).
  std::vector<std::string> layers;
  int64_t rank = 0;   // > 0: keep this many singular values (at most min(in, out))
  double energy = 0;  // in (0, 1]: the smallest rank keeping this fraction of sum(s^2)
};

struct FactorizedLayer {
  std::string node;
  int64_t in = 0, out = 0, rank = 0;
  double energy = 0;                            // fraction of sum(s^2) kept
  int64_t params_before = 0, params_after = 0;  // weights only (the bias is unchanged)
};

struct FactorizeResult {
  std::vector<FactorizedLayer> factorized;
  std::vector<std::string> skipped;  // "fc3: rank 10 of 100x10 would not reduce parameters"
};

// Throws minnow::Error for bad options (neither or both of rank and energy, energy outside
// (0, 1]) or a pattern that matches no eligible node.
FactorizeResult factorize(Graph& graph, const FactorizeOptions& options);

}  // namespace minnow
