// An activation fused into the op that produces a value (attribute activation = "relu" or
// "relu6", set by the fusion passes in src/passes): the op clamps its output to [lo, hi], and its
// backward lets dy through only where lo < y < hi, which is where the activation is the
// identity (PyTorch's convention at the kinks: gradient 0).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "minnow/graph.h"

namespace minnow::ops {

struct FusedActivation {
  bool on = false;
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();

  // Reads the node's attribute; throws minnow::Error naming the node for an unknown value.
  static FusedActivation of(const Node& n);

  template <class T>
  void apply(T* y, int64_t n) const {
    if (!on) return;
    for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(y[i], T(lo)), T(hi));
  }
  // Whether an output value passed the activation's gradient.
  bool passes(double y) const { return !on || (y > lo && y < hi); }
  // out = dy where passes(y), else 0.
  template <class T>
  void mask(const T* dy, const T* y, T* out, int64_t n) const {
    for (int64_t i = 0; i < n; ++i) out[i] = passes(y[i]) ? dy[i] : T(0);
  }
};

}  // namespace minnow::ops
