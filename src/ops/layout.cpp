// Tensor layout ops: Concat, Split, Reshape, Flatten, Transpose.
//
// None of them computes anything, so the kernels move bytes and work for every dtype (integer
// tensors such as labels pass through Reshape/Concat too). Reshape and Flatten copy: the session
// gives each output its own buffer. Symbolic batch (kDynamic) propagates where the output still
// has a dimension equal to the batch; shapes that would need "2N" or "N*C" are rejected with a
// message, since one symbolic dimension cannot express them.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>

#include "ops/elementwise.h"
#include "ops/op_defs.h"
#include "ops/op_util.h"

namespace minnow::ops {
namespace {

std::string ints_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

// Axis in [-rank, rank) normalized to [0, rank).
int normalize_axis(const Node& n, int64_t axis, size_t rank, const std::string& what) {
  const int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r) {
    fail(n, "attribute axis=" + std::to_string(axis) + " is out of range for " + what +
                " of rank " + std::to_string(r));
  }
  return static_cast<int>(axis < 0 ? axis + r : axis);
}

int64_t prod(const Shape& s, size_t lo, size_t hi) {
  int64_t p = 1;
  for (size_t i = lo; i < hi; ++i) p *= s[i];
  return p;
}

// ---- Concat / Split share one copier: [outer, sum(parts), inner] <-> parts [outer, part, inner].

// Byte-level slicing along one axis. `whole` is the concatenation of the parts along the axis.
class AxisSlicer {
 public:
  AxisSlicer(const Shape& whole, int axis, const std::vector<int64_t>& parts, size_t elem_size)
      : outer_(prod(whole, 0, axis)) {
    const int64_t inner = prod(whole, axis + 1, whole.size()) * static_cast<int64_t>(elem_size);
    int64_t off = 0;
    for (int64_t p : parts) {
      bytes_.push_back(p * inner);
      offsets_.push_back(off);
      off += p * inner;
    }
    row_bytes_ = off;
  }

  // to_whole: parts -> whole (Concat forward, Split backward); else whole -> parts.
  // A null part reads as zeros (an absent gradient) or is skipped when it is a destination.
  void copy(std::byte* whole, std::vector<std::byte*>& parts, bool to_whole) const {
    const int64_t np = static_cast<int64_t>(parts.size());
    const int64_t items = outer_ * np;
    const bool big = outer_ * row_bytes_ >= kParallelMin * 4;
#pragma omp parallel for if (big) schedule(static)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t o = it / np, i = it % np;
      const size_t b = static_cast<size_t>(bytes_[i]);
      std::byte* w = whole + o * row_bytes_ + offsets_[i];
      std::byte* p = parts[i] ? parts[i] + o * bytes_[i] : nullptr;
      if (to_whole) {
        if (p) {
          std::memcpy(w, p, b);
        } else {
          std::memset(w, 0, b);
        }
      } else if (p) {
        std::memcpy(p, w, b);
      }
    }
  }

 private:
  int64_t outer_, row_bytes_ = 0;
  std::vector<int64_t> bytes_, offsets_;
};

std::byte* bytes_of(Tensor* t) { return t ? static_cast<std::byte*>(t->raw()) : nullptr; }

void infer_concat(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& first = input(n, in, 0);
  const size_t r = first.shape.size();
  if (r == 0) fail(n, "input '" + first.name + "' is a scalar; Concat needs rank >= 1");
  const int axis = normalize_axis(n, n.attrs.get_int("axis", 0), r, "input '" + first.name + "'");
  Shape shape = first.shape;
  int64_t known = 0;
  int dynamic = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const ValueInfo& v = input(n, in, i);
    if (v.dtype != first.dtype) fail(n, "input '" + v.name + "' has a different dtype");
    if (v.shape.size() != r) {
      fail(n, "input '" + v.name + "' has shape " + shape_str(v.shape) + ", expected rank " +
                  std::to_string(r) + " like '" + first.name + "'");
    }
    for (size_t d = 0; d < r; ++d) {
      if (static_cast<int>(d) == axis) continue;
      if (v.shape[d] != shape[d] && v.shape[d] != kDynamic && shape[d] != kDynamic) {
        fail(n, "input '" + v.name + "' has shape " + shape_str(v.shape) + ", which differs from " +
                    shape_str(first.shape) + " in dimension " + std::to_string(d) +
                    " (only the concat axis " + std::to_string(axis) + " may differ)");
      }
      if (v.shape[d] == kDynamic) shape[d] = kDynamic;
    }
    if (v.shape[axis] == kDynamic) {
      ++dynamic;
    } else {
      known += v.shape[axis];
    }
  }
  if (dynamic > 1 || (dynamic == 1 && known != 0)) {
    fail(n,
         "concatenating along the symbolic batch axis gives a multiple of the batch, which "
         "cannot be expressed; fix the batch size first");
  }
  shape[axis] = dynamic ? kDynamic : known;
  out[0].dtype = first.dtype;
  out[0].shape = shape;
}

std::vector<int64_t> split_sizes(const Node& n, const ValueInfo& x, int axis, size_t outputs) {
  const int64_t dim = x.shape[axis];
  if (dim == kDynamic) fail(n, "cannot split along the symbolic batch dimension");
  if (n.attrs.has("split")) {
    std::vector<int64_t> sizes = n.attrs.get_ints("split", {});
    if (sizes.size() != outputs) {
      fail(n, "attribute split " + ints_str(sizes) + " has " + std::to_string(sizes.size()) +
                  " entries but the node has " + std::to_string(outputs) + " outputs");
    }
    int64_t total = 0;
    for (int64_t s : sizes) {
      if (s < 0) fail(n, "attribute split " + ints_str(sizes) + " has a negative size");
      total += s;
    }
    if (total != dim) {
      fail(n, "attribute split " + ints_str(sizes) + " sums to " + std::to_string(total) +
                  " but dimension " + std::to_string(axis) + " of '" + x.name + "' is " +
                  std::to_string(dim));
    }
    return sizes;
  }
  if (outputs == 0 || dim % static_cast<int64_t>(outputs) != 0) {
    fail(n, "dimension " + std::to_string(axis) + " of '" + x.name + "' (" + std::to_string(dim) +
                ") does not split into " + std::to_string(outputs) + " equal parts");
  }
  return std::vector<int64_t>(outputs, dim / static_cast<int64_t>(outputs));
}

int split_axis(const Node& n, const ValueInfo& x) {
  if (x.shape.empty()) fail(n, "input '" + x.name + "' is a scalar; Split needs rank >= 1");
  return normalize_axis(n, n.attrs.get_int("axis", 0), x.shape.size(), "input '" + x.name + "'");
}

void infer_split(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  const int axis = split_axis(n, x);
  std::vector<int64_t> sizes = split_sizes(n, x, axis, out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].dtype = x.dtype;
    out[i].shape = x.shape;
    out[i].shape[axis] = sizes[i];
  }
}

class ConcatKernel final : public Kernel {
 public:
  ConcatKernel(const Shape& whole, int axis, const std::vector<int64_t>& parts, size_t elem)
      : slicer_(whole, axis, parts, elem), ptrs_(parts.size()) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    for (size_t i = 0; i < ptrs_.size(); ++i) ptrs_[i] = bytes_of(in[i]);
    slicer_.copy(bytes_of(out[0]), ptrs_, true);
  }
  void backward(Tensors, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    for (size_t i = 0; i < ptrs_.size(); ++i) ptrs_[i] = bytes_of(grad_in[i]);
    if (!grad_out[0]) {
      for (Tensor* g : grad_in) {
        if (g) g->fill_zero();
      }
      return;
    }
    slicer_.copy(bytes_of(grad_out[0]), ptrs_, false);
  }

 private:
  AxisSlicer slicer_;
  std::vector<std::byte*> ptrs_;  // reused across calls: no allocation per step
};

class SplitKernel final : public Kernel {
 public:
  SplitKernel(const Shape& whole, int axis, const std::vector<int64_t>& parts, size_t elem)
      : slicer_(whole, axis, parts, elem), ptrs_(parts.size()) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    for (size_t i = 0; i < ptrs_.size(); ++i) ptrs_[i] = bytes_of(out[i]);
    slicer_.copy(bytes_of(in[0]), ptrs_, false);
  }
  void backward(Tensors, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!grad_in[0]) return;
    for (size_t i = 0; i < ptrs_.size(); ++i) ptrs_[i] = bytes_of(grad_out[i]);
    slicer_.copy(bytes_of(grad_in[0]), ptrs_, true);
  }

 private:
  AxisSlicer slicer_;
  std::vector<std::byte*> ptrs_;
};

std::unique_ptr<Kernel> make_concat(const Node& n, const InputInfos& in,
                                    const std::vector<ValueInfo>& out) {
  const int axis = normalize_axis(n, n.attrs.get_int("axis", 0), out[0].shape.size(), "output");
  std::vector<int64_t> parts;
  for (size_t i = 0; i < in.size(); ++i) parts.push_back(input(n, in, i).shape[axis]);
  return std::make_unique<ConcatKernel>(out[0].shape, axis, parts, dtype_size(out[0].dtype));
}

std::unique_ptr<Kernel> make_split(const Node& n, const InputInfos& in,
                                   const std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  const int axis = split_axis(n, x);
  return std::make_unique<SplitKernel>(x.shape, axis, split_sizes(n, x, axis, out.size()),
                                       dtype_size(x.dtype));
}

// ---- Reshape / Flatten: same bytes, new shape (ByteCopyKernel, ops/elementwise.h).

void infer_reshape(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  if (!n.attrs.has("shape")) fail(n, "attribute shape is required");
  const std::vector<int64_t> target = n.attrs.get_ints("shape", {});
  const std::string what =
      "cannot reshape '" + x.name + "' " + shape_str(x.shape) + " to " + ints_str(target) + ": ";
  Shape shape(target.size());
  int infer_at = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == 0) {
      if (i >= x.shape.size())
        fail(n, what + "0 at position " + std::to_string(i) +
                    " copies a dimension the input does not have");
      shape[i] = x.shape[i];
    } else if (target[i] == -1) {
      if (infer_at >= 0) fail(n, what + "more than one -1");
      infer_at = static_cast<int>(i);
    } else if (target[i] < -1) {
      fail(n, what + "negative size " + std::to_string(target[i]));
    } else {
      shape[i] = target[i];
    }
  }
  auto known = [&](const Shape& s, int skip, int* dynamic) {
    int64_t p = 1;
    for (size_t i = 0; i < s.size(); ++i) {
      if (static_cast<int>(i) == skip) continue;
      if (s[i] == kDynamic) {
        ++*dynamic;
      } else if (__builtin_mul_overflow(p, s[i], &p)) {
        fail(n, what + "the sizes overflow");
      }
    }
    return p;
  };
  int in_dyn = 0, out_dyn = 0;
  const int64_t in_known = known(x.shape, -1, &in_dyn);
  const int64_t out_known = known(shape, infer_at, &out_dyn);
  const std::string batch_msg =
      "the symbolic batch must stay one dimension of its own (copy it "
      "with 0 or leave it to the -1)";
  if (infer_at >= 0) {
    if (in_dyn == out_dyn + 1) {
      // The -1 absorbs the batch: only expressible if it absorbs nothing else.
      if (in_known != out_known) fail(n, what + batch_msg);
      shape[infer_at] = kDynamic;
    } else if (in_dyn == out_dyn) {
      if (out_known == 0 || in_known % out_known != 0) {
        fail(n, what + std::to_string(in_known) + " elements do not divide into " +
                    std::to_string(out_known));
      }
      shape[infer_at] = in_known / out_known;
    } else {
      fail(n, what + batch_msg);
    }
  } else if (in_dyn != out_dyn) {
    fail(n, what + batch_msg);
  } else if (in_known != out_known) {
    fail(n, what + "element count " + std::to_string(in_known) + " vs " +
                std::to_string(out_known) + (in_dyn ? " per sample" : ""));
  }
  out[0].dtype = x.dtype;
  out[0].shape = shape;
}

void infer_flatten(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  const int64_t r = static_cast<int64_t>(x.shape.size());
  const int64_t axis = n.attrs.get_int("axis", 1);
  if (axis < -r || axis > r) {
    fail(n, "attribute axis=" + std::to_string(axis) + " is out of range for input '" + x.name +
                "' of rank " + std::to_string(r) + " (expected -rank..rank)");
  }
  const size_t a = static_cast<size_t>(axis < 0 ? axis + r : axis);
  // Each side is either fully concrete, or exactly the batch (kDynamic times 1).
  auto side = [&](size_t lo, size_t hi) {
    int64_t p = 1;
    bool dynamic = false;
    for (size_t i = lo; i < hi; ++i) {
      if (x.shape[i] == kDynamic) {
        dynamic = true;
      } else {
        p *= x.shape[i];
      }
    }
    if (!dynamic) return p;
    if (p != 1) {
      fail(n, "flattening '" + x.name + "' " + shape_str(x.shape) + " at axis " +
                  std::to_string(axis) +
                  " merges the symbolic batch with other dimensions; fix the batch size first");
    }
    return kDynamic;
  };
  out[0].dtype = x.dtype;
  out[0].shape = {side(0, a), side(a, x.shape.size())};
}

// ---- Transpose.

std::vector<int64_t> transpose_perm(const Node& n, const ValueInfo& x) {
  const size_t r = x.shape.size();
  std::vector<int64_t> perm(r);
  std::iota(perm.rbegin(), perm.rend(), 0);  // ONNX default: reverse the dimensions
  perm = n.attrs.get_ints("perm", perm);
  std::vector<bool> seen(r, false);
  bool ok = perm.size() == r;
  for (size_t i = 0; ok && i < r; ++i) {
    ok = perm[i] >= 0 && perm[i] < static_cast<int64_t>(r) && !seen[perm[i]];
    if (ok) seen[perm[i]] = true;
  }
  if (!ok) {
    fail(n, "attribute perm " + ints_str(perm) + " is not a permutation of 0.." +
                std::to_string(static_cast<int64_t>(r) - 1) + " for input '" + x.name + "' " +
                shape_str(x.shape));
  }
  return perm;
}

void infer_transpose(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  std::vector<int64_t> perm = transpose_perm(n, x);
  out[0].dtype = x.dtype;
  out[0].shape.resize(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) out[0].shape[i] = x.shape[perm[i]];
}

// Gather y[i0..ik] = x[sum i_d * stride_d] with output dims collapsed where the source is also
// contiguous. The innermost output dim then either reads contiguously (a memcpy per row) or
// with one fixed stride.
struct TransposePlan {
  std::vector<int64_t> ext, src_stride;
  int64_t rows = 1, inner = 1;

  TransposePlan(const Shape& in, const std::vector<int64_t>& perm) {
    const size_t r = in.size();
    std::vector<int64_t> in_stride(r, 1);
    for (size_t d = r; d-- > 1;) in_stride[d - 1] = in_stride[d] * in[d];
    for (size_t d = 0; d < r; ++d) {
      const int64_t e = in[perm[d]], s = in_stride[perm[d]];
      if (e == 1) continue;
      // Merge with the previous output dim when it sits right outside this one in the input.
      if (!ext.empty() && src_stride.back() == s * e) {
        ext.back() *= e;
        src_stride.back() = s;
      } else {
        ext.push_back(e);
        src_stride.push_back(s);
      }
    }
    if (ext.empty()) {
      ext = {1};
      src_stride = {1};
    }
    inner = ext.back();
    for (size_t d = 0; d + 1 < ext.size(); ++d) rows *= ext[d];
  }

  // N is the element size in bytes; fixed-size memcpy compiles to one load and store and, unlike
  // a typed access, is valid for any dtype.
  template <size_t N>
  void run(std::byte* __restrict y, const std::byte* __restrict x) const {
    const int64_t s = src_stride.back();
    const int m = static_cast<int>(ext.size());
#pragma omp parallel for if (rows * inner >= kParallelMin) schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      int64_t src = 0;
      for (int64_t d = m - 2, rem = row; d >= 0; --d) {
        src += (rem % ext[d]) * src_stride[d];
        rem /= ext[d];
      }
      const std::byte* xs = x + src * N;
      std::byte* yr = y + row * inner * N;
      if (s == 1) {
        std::memcpy(yr, xs, static_cast<size_t>(inner) * N);
      } else {
        for (int64_t j = 0; j < inner; ++j) std::memcpy(yr + j * N, xs + j * s * N, N);
      }
    }
  }
};

class TransposeKernel final : public Kernel {
 public:
  TransposeKernel(const Shape& in, const Shape& out, const std::vector<int64_t>& perm, DType dt)
      : fwd_(in, perm), bwd_(out, inverse(perm)), size_(dtype_size(dt)) {}

  void forward(Tensors in, Tensors out, RunContext&) override { run(fwd_, *out[0], *in[0]); }
  void backward(Tensors, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!grad_in[0]) return;
    if (!grad_out[0]) {
      grad_in[0]->fill_zero();
      return;
    }
    run(bwd_, *grad_in[0], *grad_out[0]);
  }

 private:
  static std::vector<int64_t> inverse(const std::vector<int64_t>& perm) {
    std::vector<int64_t> inv(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) inv[perm[i]] = static_cast<int64_t>(i);
    return inv;
  }
  void run(const TransposePlan& p, Tensor& dst, const Tensor& src) const {
    if (src.numel() == 0) return;
    auto* y = static_cast<std::byte*>(dst.raw());
    const auto* x = static_cast<const std::byte*>(src.raw());
    if (p.rows == 1 && p.src_stride.back() == 1) {
      // The order of the elements does not change (ops/shape_util.h transpose_keeps_layout): a
      // copy, or nothing when an inference session let the output take the input's buffer.
      if (y != x) std::memcpy(y, x, static_cast<size_t>(p.inner) * size_);
      return;
    }
    switch (size_) {
      case 1:
        return p.run<1>(y, x);
      case 2:
        return p.run<2>(y, x);
      case 4:
        return p.run<4>(y, x);
      default:
        return p.run<8>(y, x);  // dtypes are at most 8 bytes wide
    }
  }

  TransposePlan fwd_, bwd_;
  size_t size_;
};

std::unique_ptr<Kernel> make_transpose(const Node& n, const InputInfos& in,
                                       const std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  return std::make_unique<TransposeKernel>(x.shape, out[0].shape, transpose_perm(n, x), x.dtype);
}

}  // namespace

const OpDef kConcatDef = {OpKind::kConcat, "Concat",    1,       64,   1,
                          infer_concat,    make_concat, nullptr, true, nullptr};
const OpDef kSplitDef = {OpKind::kSplit, "Split",    1,       1,    -1,
                         infer_split,    make_split, nullptr, true, nullptr};
const OpDef kReshapeDef = {OpKind::kReshape, "Reshape",      1,       1,    1,
                           infer_reshape,    make_byte_copy, nullptr, true, nullptr};
const OpDef kFlattenDef = {OpKind::kFlatten, "Flatten",      1,       1,    1,
                           infer_flatten,    make_byte_copy, nullptr, true, nullptr};
const OpDef kTransposeDef = {OpKind::kTranspose, "Transpose",    1,       1,    1,
                             infer_transpose,    make_transpose, nullptr, true, nullptr};

}  // namespace minnow::ops
