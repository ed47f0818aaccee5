// Slice with ONNX semantics: attributes starts, ends, axes (default 0..k-1) and steps (default 1);
// negative starts/ends count from the end; out-of-range values clamp (to [0, dim] for positive
// steps, to [-1, dim-1] for negative ones), so INT64_MAX / INT64_MIN mean "to the end". The
// importer turns ONNX's constant starts/ends/axes/steps inputs (opset >= 10) into these
// attributes.
//
// Every output element reads one input element, per-axis: the axis-gather kernel does the
// moving (any dtype) and the backward scatter into zeros.
#include <algorithm>
#include <cstdint>
#include <string>

#include "ops/axis_gather.h"
#include "ops/op_defs.h"
#include "ops/shape_util.h"

namespace minnow::ops {
namespace {

// ONNX exporters write "to the end" as INT64_MAX or INT32_MAX; anything this large ends at the
// dimension, which is what a symbolic batch dimension may be sliced by.
constexpr int64_t kToTheEnd = (int64_t{1} << 31) - 1;

struct AxisSlice {
  int64_t start = 0, step = 1, size = 0;  // size kDynamic: the whole symbolic batch
};

std::vector<AxisSlice> slice_plan(const Node& n, const ValueInfo& x) {
  const size_t r = x.shape.size();
  if (r == 0) fail(n, "input '" + x.name + "' is a scalar; Slice needs rank >= 1");
  if (!n.attrs.has("starts") || !n.attrs.has("ends"))
    fail(n, "attributes starts and ends are required");
  const std::vector<int64_t> starts = n.attrs.get_ints("starts", {});
  const std::vector<int64_t> ends = n.attrs.get_ints("ends", {});
  const size_t k = starts.size();
  std::vector<int64_t> axes(k), steps(k, 1);
  for (size_t i = 0; i < k; ++i) axes[i] = static_cast<int64_t>(i);
  axes = n.attrs.get_ints("axes", axes);
  steps = n.attrs.get_ints("steps", steps);
  if (ends.size() != k || axes.size() != k || steps.size() != k) {
    fail(n, "attributes starts " + ints_str(starts) + ", ends " + ints_str(ends) + ", axes " +
                ints_str(axes) + " and steps " + ints_str(steps) + " must have the same length");
  }
  const std::vector<int> dims = normalize_axes_attr(n, axes, r, "axes");
  std::vector<AxisSlice> plan(r);
  for (size_t d = 0; d < r; ++d) plan[d].size = x.shape[d];
  for (size_t i = 0; i < k; ++i) {
    const int d = dims[i];
    const int64_t step = steps[i];
    if (step == 0) fail(n, "attribute steps " + ints_str(steps) + " has a zero step");
    const int64_t dim = x.shape[d];
    if (dim == kDynamic) {
      if (starts[i] == 0 && ends[i] >= kToTheEnd && step == 1) continue;  // whole batch
      fail(n, "slicing dimension " + std::to_string(d) + " of '" + x.name + "' " +
                  shape_str(x.shape) +
                  " would change the symbolic batch; fix the batch size first");
    }
    // Clamp like ONNX (and Python slicing). INT64_MIN + dim cannot overflow since dim >= 0.
    int64_t start = starts[i] < 0 ? starts[i] + dim : starts[i];
    int64_t end = ends[i] < 0 ? ends[i] + dim : ends[i];
    int64_t size;
    if (dim == 0) {
      start = 0;
      size = 0;
    } else if (step > 0) {
      start = std::clamp<int64_t>(start, 0, dim);
      end = std::clamp<int64_t>(end, 0, dim);
      size = end > start ? (end - start - 1) / step + 1 : 0;
    } else {
      start = std::clamp<int64_t>(start, 0, dim - 1);
      end = std::clamp<int64_t>(end, -1, dim - 1);
      // -INT64_MIN would overflow; INT64_MAX gives the same single element.
      const int64_t mag = step == INT64_MIN ? INT64_MAX : -step;
      size = start > end ? (start - end - 1) / mag + 1 : 0;
    }
    plan[d] = {start, step, size};
  }
  return plan;
}

void infer_slice(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  const std::vector<AxisSlice> plan = slice_plan(n, x);
  out[0].dtype = x.dtype;
  out[0].shape.clear();
  for (const AxisSlice& a : plan) out[0].shape.push_back(a.size);
}

std::unique_ptr<Kernel> make_slice(const Node& n, const InputInfos& in,
                                   const std::vector<ValueInfo>&) {
  const ValueInfo& x = input(n, in, 0);
  const std::vector<AxisSlice> plan = slice_plan(n, x);
  const std::vector<int64_t> st = row_major_strides(x.shape);
  AxisMaps m;
  m.injective = true;
  for (size_t d = 0; d < plan.size(); ++d) {
    m.view.push_back(plan[d].size);
    std::vector<int64_t> off(plan[d].size);
    for (int64_t i = 0; i < plan[d].size; ++i) off[i] = (plan[d].start + i * plan[d].step) * st[d];
    m.offsets.push_back(std::move(off));
  }
  return make_axis_gather_kernel(std::move(m), x.dtype);
}

}  // namespace

const OpDef kSliceDef = {OpKind::kSlice, "Slice",    1,       1,    1,
                         infer_slice,    make_slice, nullptr, true, nullptr};

}  // namespace minnow::ops
