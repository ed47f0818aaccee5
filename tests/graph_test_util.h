// Small graph helpers shared by the test binaries of several areas (tests/ is on their include
// path): counting ops, copies that share no storage, trained-looking BatchNorm statistics,
// scalar tensors and nodes for hand-built graphs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/rng.h"
#include "minnow/graph.h"

namespace minnow::testing {

// A scalar ([]) tensor of dtype f32, u8 or i8 holding v.
inline Tensor scalar_tensor(DType t, double v) {
  Tensor s(t, {});
  if (t == DType::kF32) s.f32()[0] = static_cast<float>(v);
  if (t == DType::kU8) s.data<uint8_t>()[0] = static_cast<uint8_t>(v);
  if (t == DType::kI8) s.data<int8_t>()[0] = static_cast<int8_t>(v);
  return s;
}

// A node with one output.
inline Node make_node(const std::string& name, OpKind op, std::vector<std::string> in,
                      std::string out) {
  Node n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(in);
  n.outputs = {std::move(out)};
  return n;
}

inline int count_op(const Graph& g, OpKind kind) {
  return static_cast<int>(
      std::count_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.op == kind; }));
}

// A graph copy that shares no tensor storage with the original.
inline Graph deep_copy(const Graph& g) {
  Graph c = g;
  for (auto& [name, init] : c.initializers) init.value = init.value.clone();
  return c;
}

// BatchNorm parameters and running statistics as after training: scale, shift and mean uniform
// in [-spread, spread], running variance in [var_lo, 2].
inline void randomize_batchnorm(Graph& g, uint64_t seed, float spread = 1.0f, float var_lo = 0.2f) {
  Rng rng(seed);
  for (const Node& n : g.nodes) {
    if (n.op != OpKind::kBatchNorm) continue;
    for (size_t i = 1; i <= 4; ++i) {
      Tensor& t = g.initializers.at(n.inputs[i]).value;
      for (int64_t k = 0; k < t.numel(); ++k) {
        t.f32()[k] = i == 4 ? rng.uniform(var_lo, 2.0f) : rng.uniform(-spread, spread);
      }
    }
  }
}

}  // namespace minnow::testing
