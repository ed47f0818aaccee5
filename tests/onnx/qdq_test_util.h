// Shared by the QDQ interchange tests (test_qdq_golden.cpp, test_qdq_roundtrip.cpp).
#pragma once

#include <map>
#include <string>

#include "core/op_registry.h"
#include "minnow/graph.h"
#include "passes/fold_batchnorm.h"
#include "passes/fold_constants.h"
#include "passes/fuse_activation.h"
#include "passes/lower_qdq.h"
#include "passes/simplify_for_inference.h"

namespace minnow::qdq_test {

// Node counts per op name after the rewrites InferenceSession makes before running a graph
// (runtime/inference_session.cpp), ending with lower_qdq: what actually runs in int8.
inline std::map<std::string, int> lowered_op_counts(Graph g) {
  simplify_for_inference(g);
  fold_constants(g, /*keep_dequantize=*/true);
  fold_batchnorm(g);
  fuse_activation(g, {OpKind::kConv2d, OpKind::kLinear, OpKind::kBatchNorm});
  lower_qdq(g);
  std::map<std::string, int> counts;
  for (const Node& n : g.nodes) ++counts[op_def(n.op).name];
  return counts;
}

inline int count_of(const std::map<std::string, int>& counts, const std::string& op) {
  auto it = counts.find(op);
  return it == counts.end() ? 0 : it->second;
}

// The index of the largest of row `row`'s logits (f32 [N, C]); the first on ties.
inline int64_t argmax_row(const Tensor& logits, int64_t row) {
  const int64_t c = logits.dim(1);
  const float* p = logits.f32() + row * c;
  int64_t best = 0;
  for (int64_t k = 1; k < c; ++k) {
    if (p[k] > p[best]) best = k;
  }
  return best;
}

}  // namespace minnow::qdq_test
