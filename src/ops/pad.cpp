// Pad with ONNX semantics: attribute pads = [x1_begin, x2_begin, ..., x1_end, x2_end, ...] over
// all dimensions, mode "constant" (attribute value, default 0), "reflect" (mirror without
// repeating the edge, numpy's "reflect") or "edge" (repeat the edge). Negative pads crop.
//
// Each output index maps per axis to an input index (or to the constant), so the axis-gather
// kernel does the work; its backward accumulates where edge/reflect read one input element
// several times. Reflection folds with period 2*(dim-1), which matches numpy for pads wider than
// the input too, and is taken about the edges of the uncropped input when pads are mixed.
#include <algorithm>
#include <string>

#include "ops/axis_gather.h"
#include "ops/op_defs.h"
#include "ops/shape_util.h"

namespace minnow::ops {
namespace {

enum class PadMode { kConstant, kReflect, kEdge };

PadMode pad_mode(const Node& n) {
  const std::string mode = n.attrs.get_string("mode", "constant");
  if (mode == "constant") return PadMode::kConstant;
  if (mode == "reflect") return PadMode::kReflect;
  if (mode == "edge") return PadMode::kEdge;
  fail(n, "attribute mode='" + mode + "' is not one of constant, reflect, edge");
}

std::vector<int64_t> pad_amounts(const Node& n, const ValueInfo& x) {
  if (!n.attrs.has("pads")) fail(n, "attribute pads is required");
  std::vector<int64_t> pads = n.attrs.get_ints("pads", {});
  if (pads.size() != 2 * x.shape.size()) {
    fail(n, "attribute pads " + ints_str(pads) + " has " + std::to_string(pads.size()) +
                " entries, expected 2 * rank = " + std::to_string(2 * x.shape.size()) +
                " for input '" + x.name + "' " + shape_str(x.shape));
  }
  return pads;
}

void infer_pad(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  const PadMode mode = pad_mode(n);
  const std::vector<int64_t> pads = pad_amounts(n, x);
  n.attrs.get_float("value", 0.0);  // type-checks the attribute
  const size_t r = x.shape.size();
  out[0].dtype = x.dtype;
  out[0].shape = x.shape;
  for (size_t d = 0; d < r; ++d) {
    const int64_t b = pads[d], e = pads[d + r], dim = x.shape[d];
    if (dim == kDynamic) {
      if (b != 0 || e != 0) {
        fail(n, "attribute pads " + ints_str(pads) + " pads dimension " + std::to_string(d) +
                    " of '" + x.name + "' " + shape_str(x.shape) +
                    ", the symbolic batch; fix the batch size first");
      }
      continue;
    }
    const int64_t size = dim + b + e;
    if (size < 0) {
      fail(n, "attribute pads " + ints_str(pads) + " crops dimension " + std::to_string(d) +
                  " of '" + x.name + "' " + shape_str(x.shape) + " to a negative size");
    }
    if (mode != PadMode::kConstant && dim == 0 && size > 0) {
      fail(n, "cannot pad the empty dimension " + std::to_string(d) + " of '" + x.name +
                  "' in mode " + n.attrs.get_string("mode", ""));
    }
    out[0].shape[d] = size;
  }
}

// Input index read by output index o of an axis of size dim padded by `begin` in front.
int64_t source_index(PadMode mode, int64_t o, int64_t begin, int64_t dim) {
  const int64_t i = o - begin;
  if (i >= 0 && i < dim) return i;
  switch (mode) {
    case PadMode::kConstant:
      return kOutside;
    case PadMode::kEdge:
      return std::clamp<int64_t>(i, 0, dim - 1);
    case PadMode::kReflect: {
      if (dim == 1) return 0;
      const int64_t period = 2 * (dim - 1);
      const int64_t m = ((i % period) + period) % period;
      return m < dim ? m : period - m;
    }
  }
  return kOutside;
}

std::unique_ptr<Kernel> make_pad(const Node& n, const InputInfos& in,
                                 const std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  const PadMode mode = pad_mode(n);
  const std::vector<int64_t> pads = pad_amounts(n, x);
  const size_t r = x.shape.size();
  const std::vector<int64_t> st = row_major_strides(x.shape);
  AxisMaps m;
  m.view = out[0].shape;
  // Only edge/reflect with a positive pad read an input element twice.
  m.injective = true;
  for (size_t d = 0; d < r; ++d) {
    if (mode != PadMode::kConstant && (pads[d] > 0 || pads[d + r] > 0)) m.injective = false;
    std::vector<int64_t> off(m.view[d]);
    for (int64_t o = 0; o < m.view[d]; ++o) {
      const int64_t i = source_index(mode, o, pads[d], x.shape[d]);
      off[o] = i == kOutside ? kOutside : i * st[d];
    }
    m.offsets.push_back(std::move(off));
  }
  return make_axis_gather_kernel(std::move(m), x.dtype, n.attrs.get_float("value", 0.0));
}

}  // namespace

const OpDef kPadDef = {OpKind::kPad, "Pad", 1, 1, 1, infer_pad, make_pad, nullptr, true, nullptr};

}  // namespace minnow::ops
