// Attribute and axis helpers shared by the shape ops (shape_ops.cpp, slice.cpp, pad.cpp,
// gather.cpp, cast.cpp). Errors name the node through ops::fail.
#pragma once

#include <string>
#include <vector>

#include "ops/op_util.h"

namespace minnow::ops {

inline std::string ints_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

// Whether transposing `in` by `perm` leaves every element where it is in memory: the dims larger
// than 1 keep their order (e.g. [N,1,H,W] -> [N,H,W,1]). Such a transpose only relabels its
// input, like a Reshape. `perm` must be a permutation of in's axes.
inline bool transpose_keeps_layout(const Shape& in, const std::vector<int64_t>& perm) {
  int64_t last = -1;
  for (int64_t axis : perm) {
    if (in[static_cast<size_t>(axis)] == 1) continue;
    if (axis < last) return false;
    last = axis;
  }
  return true;
}

// Axis in [-rank, rank) normalized to [0, rank); `what` names the attribute for the message.
inline int normalize_axis_attr(const Node& n, int64_t axis, size_t rank, const std::string& what) {
  const int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r) {
    fail(n, "attribute " + what + " has axis " + std::to_string(axis) + ", out of range for rank " +
                std::to_string(r) + " (expected " + std::to_string(-r) + ".." +
                std::to_string(r - 1) + ")");
  }
  return static_cast<int>(axis < 0 ? axis + r : axis);
}

// Normalized, duplicate-free axes of attribute `key`.
inline std::vector<int> normalize_axes_attr(const Node& n, const std::vector<int64_t>& axes,
                                            size_t rank, const std::string& key) {
  std::vector<int> out;
  std::vector<bool> seen(rank, false);
  for (int64_t a : axes) {
    const int d = normalize_axis_attr(n, a, rank, key + " " + ints_str(axes));
    if (seen[d])
      fail(n, "attribute " + key + " " + ints_str(axes) + " repeats axis " + std::to_string(d));
    seen[d] = true;
    out.push_back(d);
  }
  return out;
}

}  // namespace minnow::ops
