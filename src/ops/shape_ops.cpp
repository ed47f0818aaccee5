// Shape ops that ONNX models need and minnow's own builders do not: Squeeze, Unsqueeze,
// Identity, Expand, DepthToSpace, SpaceToDepth. ONNX semantics (attribute names included), so
// the importer maps nodes one to one.
//
// Squeeze/Unsqueeze/Identity keep the element order: their kernel is a byte copy (the session
// gives each output its own buffer). Expand and the depth/space pair move elements; they
// describe the move per output axis and share the axis-gather kernel with Slice and Pad.
// Symbolic batch (kDynamic) passes through wherever the output keeps it as a dimension of its own.
#include <algorithm>
#include <cstring>
#include <string>

#include "ops/axis_gather.h"
#include "ops/elementwise.h"
#include "ops/op_defs.h"
#include "ops/shape_util.h"

namespace minnow::ops {
namespace {

// ---- Same bytes, new shape: Squeeze, Unsqueeze, Identity (ByteCopyKernel, ops/elementwise.h).

void infer_squeeze(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  const size_t r = x.shape.size();
  std::vector<bool> drop(r, false);
  if (n.attrs.has("axes")) {
    for (int d : normalize_axes_attr(n, n.attrs.get_ints("axes", {}), r, "axes")) {
      if (x.shape[d] == kDynamic) {
        fail(n, "cannot squeeze dimension " + std::to_string(d) + " of '" + x.name + "' " +
                    shape_str(x.shape) + ": it is the symbolic batch; fix the batch size first");
      }
      if (x.shape[d] != 1) {
        fail(n, "cannot squeeze dimension " + std::to_string(d) + " of '" + x.name + "' " +
                    shape_str(x.shape) + ": its size is " + std::to_string(x.shape[d]) +
                    ", expected 1");
      }
      drop[d] = true;
    }
  } else {
    // ONNX: no axes squeezes every size-1 dimension. The symbolic batch is kept (it is only
    // known to be 1 once the batch size is fixed).
    for (size_t d = 0; d < r; ++d) drop[d] = x.shape[d] == 1;
  }
  out[0].dtype = x.dtype;
  out[0].shape.clear();
  for (size_t d = 0; d < r; ++d) {
    if (!drop[d]) out[0].shape.push_back(x.shape[d]);
  }
}

void infer_unsqueeze(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  if (!n.attrs.has("axes")) fail(n, "attribute axes is required");
  const std::vector<int64_t> axes = n.attrs.get_ints("axes", {});
  const size_t r = x.shape.size() + axes.size();  // negative axes count in the output rank
  std::vector<bool> inserted(r, false);
  for (int d : normalize_axes_attr(n, axes, r, "axes")) inserted[d] = true;
  out[0].dtype = x.dtype;
  out[0].shape.assign(r, 1);
  size_t k = 0;
  for (size_t d = 0; d < r; ++d) {
    if (!inserted[d]) out[0].shape[d] = x.shape[k++];
  }
}

void infer_identity(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  out[0].dtype = x.dtype;
  out[0].shape = x.shape;
}

// ---- Expand: numpy broadcasting of the input and the target shape (in both directions, as in
// ONNX: a target dim of 1 keeps the input's dim).

std::vector<int64_t> expand_target(const Node& n) {
  if (!n.attrs.has("shape")) fail(n, "attribute shape is required");
  std::vector<int64_t> t = n.attrs.get_ints("shape", {});
  for (int64_t d : t) {
    if (d < 0) fail(n, "attribute shape " + ints_str(t) + " has a negative dimension");
  }
  return t;
}

void infer_expand(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  const std::vector<int64_t> t = expand_target(n);
  const size_t r = std::max(x.shape.size(), t.size());
  Shape shape(r);
  for (size_t d = 0; d < r; ++d) {
    const int64_t a = d + x.shape.size() >= r ? x.shape[d + x.shape.size() - r] : 1;
    const int64_t b = d + t.size() >= r ? t[d + t.size() - r] : 1;
    if (a == b || b == 1) {
      shape[d] = a;
    } else if (a == 1) {
      shape[d] = b;
    } else if (a == kDynamic) {
      shape[d] = b;  // legal only when the batch equals b; checked again with the real batch
    } else {
      fail(n, "cannot expand '" + x.name + "' " + shape_str(x.shape) + " to " + ints_str(t) +
                  ": dimension " + std::to_string(d) + " is " + std::to_string(a) + " vs " +
                  std::to_string(b));
    }
  }
  out[0].dtype = x.dtype;
  out[0].shape = shape;
}

std::unique_ptr<Kernel> make_expand(const Node& n, const InputInfos& in,
                                    const std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  const Shape& y = out[0].shape;
  const size_t r = y.size(), lead = r - x.shape.size();
  const std::vector<int64_t> st = row_major_strides(x.shape);
  AxisMaps m;
  m.view = y;
  m.injective = true;
  for (size_t d = 0; d < r; ++d) {
    const bool broadcast = d < lead || x.shape[d - lead] != y[d];
    if (broadcast && y[d] > 1) m.injective = false;
    std::vector<int64_t> off(y[d], 0);
    if (!broadcast) {
      for (int64_t i = 0; i < y[d]; ++i) off[i] = i * st[d - lead];
    }
    m.offsets.push_back(std::move(off));
  }
  return make_axis_gather_kernel(std::move(m), x.dtype);
}

// ---- DepthToSpace / SpaceToDepth on NCHW.

struct BlockGeometry {
  int64_t b, n, c, h, w;
};

// Validates rank 4 with concrete C, H, W and a positive blocksize.
BlockGeometry block_geometry(const Node& n, const ValueInfo& x) {
  require_rank(n, x, 4);
  if (!n.attrs.has("blocksize")) fail(n, "attribute blocksize is required");
  const int64_t b = n.attrs.get_int("blocksize", 0);
  if (b < 1) fail(n, "attribute blocksize=" + std::to_string(b) + " must be >= 1");
  for (int d = 1; d < 4; ++d) {
    if (x.shape[d] == kDynamic) {
      fail(n, "input '" + x.name + "' " + shape_str(x.shape) +
                  " has a symbolic channel or spatial dimension");
    }
  }
  return {b, x.shape[0], x.shape[1], x.shape[2], x.shape[3]};
}

bool depth_to_space_crd(const Node& n) {
  const std::string mode = n.attrs.get_string("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") {
    fail(n, "attribute mode='" + mode + "' is not one of DCR, CRD");
  }
  return mode == "CRD";
}

void infer_depth_to_space(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  const BlockGeometry g = block_geometry(n, x);
  depth_to_space_crd(n);
  if (g.c % (g.b * g.b) != 0) {
    fail(n, "channels of '" + x.name + "' " + shape_str(x.shape) + " (" + std::to_string(g.c) +
                ") are not a multiple of blocksize^2 = " + std::to_string(g.b * g.b));
  }
  out[0].dtype = x.dtype;
  out[0].shape = {g.n, g.c / (g.b * g.b), g.h * g.b, g.w * g.b};
}

void infer_space_to_depth(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  const BlockGeometry g = block_geometry(n, x);
  if (g.h % g.b != 0 || g.w % g.b != 0) {
    fail(n, "spatial size of '" + x.name + "' " + shape_str(x.shape) +
                " is not a multiple of blocksize " + std::to_string(g.b));
  }
  out[0].dtype = x.dtype;
  out[0].shape = {g.n, g.c * g.b * g.b, g.h / g.b, g.w / g.b};
}

// Per-axis map of an axis whose index i contributes i * stride.
std::vector<int64_t> strided(int64_t size, int64_t stride) {
  std::vector<int64_t> v(size);
  for (int64_t i = 0; i < size; ++i) v[i] = i * stride;
  return v;
}

// The output [N, C/b^2, H*b, W*b] is viewed as [N, C', H, b, W, b]; element (n, c', h, i, w, j)
// reads input channel (i*b + j)*C' + c' (DCR) or (c'*b + i)*b + j (CRD) at (h, w).
std::unique_ptr<Kernel> make_depth_to_space(const Node& n, const InputInfos& in,
                                            const std::vector<ValueInfo>&) {
  const ValueInfo& x = input(n, in, 0);
  const BlockGeometry g = block_geometry(n, x);
  const int64_t cc = g.c / (g.b * g.b), hw = g.h * g.w;
  const bool crd = depth_to_space_crd(n);
  const int64_t s_c = crd ? g.b * g.b * hw : hw;
  const int64_t s_i = crd ? g.b * hw : g.b * cc * hw;
  const int64_t s_j = crd ? hw : cc * hw;
  AxisMaps m;
  m.view = {g.n, cc, g.h, g.b, g.w, g.b};
  m.offsets = {strided(g.n, g.c * hw), strided(cc, s_c), strided(g.h, g.w),
               strided(g.b, s_i),      strided(g.w, 1),  strided(g.b, s_j)};
  m.injective = true;
  return make_axis_gather_kernel(std::move(m), x.dtype);
}

// The output [N, C*b^2, H/b, W/b] is viewed as [N, b, b, C, H/b, W/b]; element
// (n, i, j, c, h, w) reads input (n, c, h*b + i, w*b + j).
std::unique_ptr<Kernel> make_space_to_depth(const Node& n, const InputInfos& in,
                                            const std::vector<ValueInfo>&) {
  const ValueInfo& x = input(n, in, 0);
  const BlockGeometry g = block_geometry(n, x);
  AxisMaps m;
  m.view = {g.n, g.b, g.b, g.c, g.h / g.b, g.w / g.b};
  m.offsets = {strided(g.n, g.c * g.h * g.w),
               strided(g.b, g.w),
               strided(g.b, 1),
               strided(g.c, g.h * g.w),
               strided(g.h / g.b, g.b * g.w),
               strided(g.w / g.b, g.b)};
  m.injective = true;
  return make_axis_gather_kernel(std::move(m), x.dtype);
}

}  // namespace

const OpDef kSqueezeDef = {OpKind::kSqueeze, "Squeeze",      1,       1,    1,
                           infer_squeeze,    make_byte_copy, nullptr, true, nullptr};
const OpDef kUnsqueezeDef = {OpKind::kUnsqueeze, "Unsqueeze",    1,       1,    1,
                             infer_unsqueeze,    make_byte_copy, nullptr, true, nullptr};
const OpDef kIdentityDef = {OpKind::kIdentity, "Identity",     1,       1,    1,
                            infer_identity,    make_byte_copy, nullptr, true, nullptr};
const OpDef kExpandDef = {OpKind::kExpand, "Expand",    1,       1,    1,
                          infer_expand,    make_expand, nullptr, true, nullptr};
const OpDef kDepthToSpaceDef = {OpKind::kDepthToSpace, "DepthToSpace",      1,       1,    1,
                                infer_depth_to_space,  make_depth_to_space, nullptr, true, nullptr};
const OpDef kSpaceToDepthDef = {OpKind::kSpaceToDepth, "SpaceToDepth",      1,       1,    1,
                                infer_space_to_depth,  make_space_to_depth, nullptr, true, nullptr};

}  // namespace minnow::ops
