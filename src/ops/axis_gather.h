// The shared kernel of the index-moving shape ops (Slice, Pad, Expand, DepthToSpace,
// SpaceToDepth): every output element reads at most one input element, and the input offset is a
// sum of one term per output axis. Each op only describes that per-axis table; the kernel does
// the walking, in forward and backward, for every dtype.
//
// Per-axis tables are tiny (sum of the output dims) where a per-element index map would cost
// 8 bytes per output element. DepthToSpace/SpaceToDepth are per-axis in a rank-6 view of their
// output, so they fit too.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/kernel.h"
#include "minnow/dtype.h"

namespace minnow::ops {

// Marks an output position that reads no input (Pad's constant border).
inline constexpr int64_t kOutside = -1;

struct AxisMaps {
  // The output viewed with this shape (same element count and order as the real output).
  std::vector<int64_t> view;
  // offsets[d][i]: element offset contributed by index i of view axis d, or kOutside.
  std::vector<std::vector<int64_t>> offsets;
  // True when no two output elements read the same input element (Slice, DepthToSpace): the
  // backward pass may then run in parallel.
  bool injective = false;
};

// y[o] = x[sum_d offsets[d][o_d]], or `fill` where any term is kOutside. Backward: dx = 0, then
// dx[offset(o)] += dy[o] (accumulates where several outputs read one input: Expand, edge and
// reflect padding). Forward works for every dtype (fill is converted to it); backward for f32
// and f64.
std::unique_ptr<Kernel> make_axis_gather_kernel(AxisMaps maps, DType dtype, double fill = 0.0);

// Row-major element strides of a shape.
std::vector<int64_t> row_major_strides(const std::vector<int64_t>& shape);

}  // namespace minnow::ops
