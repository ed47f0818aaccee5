// Import-time evaluation of nodes whose inputs are all constants. This is what turns PyTorch's
// shape arithmetic (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) into a plain Reshape with
// a known target, and Constant/ConstantOfShape into tensors. Layout ops work on raw elements so
// they serve every dtype; arithmetic works on i64 and float. The symbolic batch dimension enters
// as kBatchDim from Shape and survives only layout ops: arithmetic on it is not foldable (the
// node then goes to its ordinary converter, which usually reports it unsupported).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "onnx/import_ops.h"
#include "onnx/onnx_tensor.h"

namespace minnow::onnx {
namespace {

// Row-major strides. Dims can only multiply past int64 when another dim is 0 (the tensor
// exists, so its element count fits): then no element is ever addressed and 0 is as good.
Shape strides_of(const Shape& s) {
  Shape st(s.size(), 1);
  for (int i = static_cast<int>(s.size()) - 2; i >= 0; --i) {
    if (__builtin_mul_overflow(st[i + 1], s[i + 1], &st[i])) st[i] = 0;
  }
  return st;
}

double get_num(const Tensor& t, int64_t i) { return element_as_double(t, i); }

// A double as an int64 without undefined behaviour: truncated, saturated at +-2^62 (far beyond
// any size or index a check downstream would accept), NaN as 0.
int64_t saturate_to_int(double v) {
  constexpr double kLimit = 4611686018427387904.0;  // 2^62
  if (!(v == v)) return 0;
  return static_cast<int64_t>(std::clamp(v, -kLimit, kLimit));
}

int64_t get_int(const Tensor& t, int64_t i) {
  if (t.dtype() == DType::kI64) return static_cast<const int64_t*>(t.raw())[i];
  return saturate_to_int(get_num(t, i));
}

void set_num(Tensor& t, int64_t i, double v, int64_t iv, bool from_int) {
  switch (t.dtype()) {
    case DType::kF32:
      static_cast<float*>(t.raw())[i] = static_cast<float>(v);
      break;
    case DType::kF64:
      static_cast<double*>(t.raw())[i] = v;
      break;
    case DType::kI64:
      static_cast<int64_t*>(t.raw())[i] = from_int ? iv : saturate_to_int(v);
      break;
    case DType::kI32:  // integer narrowing wraps (defined), like numpy's astype
      static_cast<int32_t*>(t.raw())[i] = static_cast<int32_t>(from_int ? iv : saturate_to_int(v));
      break;
    case DType::kI8:
      static_cast<int8_t*>(t.raw())[i] = static_cast<int8_t>(from_int ? iv : saturate_to_int(v));
      break;
    case DType::kU8:
      static_cast<uint8_t*>(t.raw())[i] = static_cast<uint8_t>(from_int ? iv : saturate_to_int(v));
      break;
  }
}

bool has_batch_marker(const Tensor& t) {
  if (t.dtype() != DType::kI64) return false;
  const int64_t* p = static_cast<const int64_t*>(t.raw());
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (p[i] == kBatchDim) return true;
  }
  return false;
}

Tensor ints_tensor(const std::vector<int64_t>& v) {
  Tensor t(DType::kI64, {static_cast<int64_t>(v.size())});
  if (!v.empty()) std::memcpy(t.raw(), v.data(), v.size() * 8);
  return t;
}

// Elements of `src` at the index map: out flat index -> src flat index.
Tensor gather_elems(const Tensor& src, const Shape& out_shape,
                    const std::function<int64_t(const Shape& idx)>& src_index) {
  Tensor out(src.dtype(), out_shape);
  const size_t es = dtype_size(src.dtype());
  Shape idx(out_shape.size(), 0);
  const char* s = static_cast<const char*>(src.raw());
  char* d = static_cast<char*>(out.raw());
  for (int64_t i = 0; i < out.numel(); ++i) {
    std::memcpy(d + i * es, s + src_index(idx) * es, es);
    for (int k = static_cast<int>(idx.size()) - 1; k >= 0; --k) {
      if (++idx[k] < out_shape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

// ---- the foldable ops ----

std::optional<Tensor> fold_shape(ImportContext& cx) {
  const ValueInfo v = cx.info(cx.in(0));
  const int64_t r = static_cast<int64_t>(v.shape.size());
  int64_t start = cx.attr_int("start", 0), end = cx.attr_int("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, start, r);
  std::vector<int64_t> dims;
  for (int64_t i = start; i < end; ++i) {
    if (v.shape[i] == kDynamic && i != 0) return std::nullopt;
    dims.push_back(v.shape[i] == kDynamic ? kBatchDim : v.shape[i]);
  }
  return ints_tensor(dims);
}

Tensor fold_constant(ImportContext& cx) {
  const auto& n = cx.node();
  for (const auto& a : n.attribute()) {
    if (a.name() == "value") return tensor_from_proto(a.t(), cx.node_label() + " value");
    if (a.name() == "value_float") {
      Tensor t(DType::kF32, {});
      t.f32()[0] = a.f();
      return t;
    }
    if (a.name() == "value_floats") {
      Tensor t(DType::kF32, {a.floats_size()});
      for (int i = 0; i < a.floats_size(); ++i) t.f32()[i] = a.floats(i);
      return t;
    }
    if (a.name() == "value_int") {
      Tensor t(DType::kI64, {});
      static_cast<int64_t*>(t.raw())[0] = a.i();
      return t;
    }
    if (a.name() == "value_ints") return ints_tensor({a.ints().begin(), a.ints().end()});
  }
  cx.unsupported("Constant without a tensor, float or int value");
}

Tensor fold_constant_of_shape(ImportContext& cx, const Tensor& shape_t) {
  Shape shape;
  for (int64_t i = 0; i < shape_t.numel(); ++i) {
    int64_t d = get_int(shape_t, i);
    if (d < 0) cx.fail("negative dimension " + std::to_string(d));
    shape.push_back(d);
  }
  Tensor fill(DType::kF32, {1});
  if (const auto* a = cx.attr("value")) fill = tensor_from_proto(a->t(), cx.node_label());
  if (fill.numel() != 1) cx.fail("attribute value must hold one element");
  Tensor out(fill.dtype(), shape);
  const size_t es = dtype_size(fill.dtype());
  char* d = static_cast<char*>(out.raw());
  for (int64_t i = 0; i < out.numel(); ++i) std::memcpy(d + i * es, fill.raw(), es);
  return out;
}

Tensor fold_gather(ImportContext& cx, const Tensor& data, const Tensor& idx) {
  const int64_t r = data.rank();
  const int64_t axis = onnx_axis(cx, cx.attr_int("axis", 0), r);
  Shape out;
  for (int64_t i = 0; i < axis; ++i) out.push_back(data.dim(static_cast<int>(i)));
  for (int64_t d : idx.shape()) out.push_back(d);
  for (int64_t i = axis + 1; i < r; ++i) out.push_back(data.dim(static_cast<int>(i)));
  const Shape ds = strides_of(data.shape());
  const int64_t q = idx.rank(), len = data.dim(static_cast<int>(axis));
  Shape is = strides_of(idx.shape());
  return gather_elems(data, out, [&](const Shape& o) {
    int64_t flat = 0;
    for (int64_t i = 0; i < axis; ++i) flat += o[i] * ds[i];
    int64_t ii = 0;
    for (int64_t k = 0; k < q; ++k) ii += o[axis + k] * is[k];
    int64_t g = get_int(idx, ii);
    if (g < 0) g += len;
    if (g < 0 || g >= len) cx.fail("index " + std::to_string(g) + " out of range");
    flat += g * ds[axis];
    for (int64_t i = axis + 1; i < r; ++i) flat += o[q + i - 1] * ds[i];
    return flat;
  });
}

Tensor fold_concat(ImportContext& cx, const std::vector<const Tensor*>& ins) {
  const int64_t r = ins[0]->rank();
  const int64_t axis = onnx_axis(cx, cx.attr_int("axis", 0), r);
  Shape out = ins[0]->shape();
  out[axis] = 0;
  for (const Tensor* t : ins) {
    if (t->rank() != r || t->dtype() != ins[0]->dtype()) cx.fail("inputs differ in rank or type");
    out[axis] += t->dim(static_cast<int>(axis));
  }
  Tensor res(ins[0]->dtype(), out);
  const size_t es = dtype_size(res.dtype());
  int64_t outer = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= out[i];
  char* d = static_cast<char*>(res.raw());
  for (int64_t o = 0; o < outer; ++o) {
    for (const Tensor* t : ins) {
      const int64_t chunk = outer ? t->numel() / std::max<int64_t>(outer, 1) : 0;
      std::memcpy(d, static_cast<const char*>(t->raw()) + o * chunk * es, chunk * es);
      d += chunk * es;
    }
  }
  return res;
}

Tensor fold_slice(ImportContext& cx, const Tensor& x, const std::vector<int64_t>& starts,
                  const std::vector<int64_t>& ends, std::vector<int64_t> axes,
                  std::vector<int64_t> steps) {
  const int64_t r = x.rank();
  if (axes.empty()) {
    axes.resize(starts.size());
    std::iota(axes.begin(), axes.end(), 0);
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    cx.fail("starts, ends, axes and steps differ in length");
  Shape begin(r, 0), step(r, 1), out = x.shape();
  for (size_t k = 0; k < starts.size(); ++k) {
    const int64_t a = onnx_axis(cx, axes[k], r, "axes");
    const int64_t dim = x.dim(static_cast<int>(a));
    const int64_t s = steps[k];
    if (s == 0) cx.fail("step 0");
    int64_t b = starts[k], e = ends[k];
    if (b < 0) b += dim;
    if (e < 0 && e > std::numeric_limits<int64_t>::min() / 2) e += dim;
    if (s > 0) {
      b = std::clamp<int64_t>(b, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      out[a] = e > b ? (e - b + s - 1) / s : 0;
    } else {
      b = std::clamp<int64_t>(b, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      out[a] = b > e ? (b - e - s - 1) / (-s) : 0;
    }
    begin[a] = b;
    step[a] = s;
  }
  const Shape xs = strides_of(x.shape());
  return gather_elems(x, out, [&](const Shape& o) {
    int64_t flat = 0;
    for (int64_t i = 0; i < r; ++i) flat += (begin[i] + o[i] * step[i]) * xs[i];
    return flat;
  });
}

Tensor fold_transpose(ImportContext& cx, const Tensor& x) {
  const int64_t r = x.rank();
  std::vector<int64_t> perm(r);
  for (int64_t i = 0; i < r; ++i) perm[i] = r - 1 - i;
  perm = cx.attr_ints("perm", perm);
  if (static_cast<int64_t>(perm.size()) != r) cx.fail("perm has the wrong length");
  Shape out(r);
  for (int64_t i = 0; i < r; ++i) out[i] = x.dim(static_cast<int>(onnx_axis(cx, perm[i], r)));
  const Shape xs = strides_of(x.shape());
  return gather_elems(x, out, [&](const Shape& o) {
    int64_t flat = 0;
    for (int64_t i = 0; i < r; ++i) flat += o[i] * xs[perm[i]];
    return flat;
  });
}

Tensor fold_cast(ImportContext& cx, const Tensor& x) {
  const int64_t to = cx.attr_int("to", 0);
  std::optional<DType> dt = dtype_from_onnx(static_cast<int>(to));
  if (!dt) cx.unsupported("Cast to " + onnx_type_name(static_cast<int>(to)));
  Tensor out(*dt, x.shape());
  const bool int_src = !dtype_is_float(x.dtype());
  const bool to_bool = to == ::onnx::TensorProto::BOOL;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double v = get_num(x, i);
    if (to_bool) {
      set_num(out, i, v != 0, v != 0, true);
    } else {
      set_num(out, i, v, int_src ? get_int(x, i) : 0, int_src);
    }
  }
  return out;
}

// Numpy-broadcast binary arithmetic on constants (i64 exactly, floats in double).
std::optional<Tensor> fold_arith(ImportContext& cx, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype()) return std::nullopt;
  if (has_batch_marker(a) || has_batch_marker(b)) return std::nullopt;
  const std::string& op = cx.node().op_type();
  const size_t r = std::max(a.rank(), b.rank());
  Shape out(r);
  auto dim = [r](const Tensor& t, size_t d) {
    return d + t.rank() >= r ? t.dim(static_cast<int>(d + t.rank() - r)) : int64_t{1};
  };
  for (size_t d = 0; d < r; ++d) {
    const int64_t x = dim(a, d), y = dim(b, d);
    if (x != y && x != 1 && y != 1) cx.fail("cannot broadcast constant operands");
    out[d] = x == 1 ? y : x;
  }
  Tensor res(a.dtype(), out);
  const Shape as = strides_of(a.shape()), bs = strides_of(b.shape());
  Shape idx(r, 0);
  const bool is_int = !dtype_is_float(a.dtype());
  for (int64_t i = 0; i < res.numel(); ++i) {
    int64_t ia = 0, ib = 0;
    for (size_t d = 0; d < r; ++d) {
      const size_t da = d + a.rank() - r, db = d + b.rank() - r;
      if (d + a.rank() >= r && a.dim(static_cast<int>(da)) != 1) ia += idx[d] * as[da];
      if (d + b.rank() >= r && b.dim(static_cast<int>(db)) != 1) ib += idx[d] * bs[db];
    }
    if (is_int) {
      const int64_t x = get_int(a, ia), y = get_int(b, ib);
      int64_t v = 0;
      if (op == "Add") v = x + y;
      if (op == "Sub") v = x - y;
      if (op == "Mul") v = x * y;
      if (op == "Div") {
        if (y == 0) cx.fail("integer division by zero");
        v = x / y;
      }
      set_num(res, i, 0, v, true);
    } else {
      const double x = get_num(a, ia), y = get_num(b, ib);
      double v = op == "Add" ? x + y : op == "Sub" ? x - y : op == "Mul" ? x * y : x / y;
      set_num(res, i, v, 0, false);
    }
    for (int k = static_cast<int>(r) - 1; k >= 0; --k) {
      if (++idx[k] < out[k]) break;
      idx[k] = 0;
    }
  }
  return res;
}

Tensor reshaped_const(ImportContext& cx, const Tensor& x, Shape shape) {
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0 && i < static_cast<size_t>(x.rank())) shape[i] = x.dim(static_cast<int>(i));
    if (shape[i] == -1 && infer < 0) {
      infer = static_cast<int>(i);
    } else if (shape[i] < 0 || __builtin_mul_overflow(known, shape[i], &known)) {
      cx.fail("cannot reshape constant to " + shape_str(shape));
    }
  }
  if (infer >= 0) shape[infer] = known ? x.numel() / known : 0;
  if (shape_numel(shape) != x.numel()) cx.fail("cannot reshape constant to " + shape_str(shape));
  return x.clone().reshaped(shape);
}

}  // namespace

bool try_fold(ImportContext& cx) {
  const std::string& op = cx.node().op_type();
  if (op == "Constant") {
    cx.set_const(cx.out(0), fold_constant(cx));
    return true;
  }
  if (op == "Shape") {
    std::optional<Tensor> t = fold_shape(cx);
    if (!t) return false;
    cx.set_const(cx.out(0), *t);
    return true;
  }
  if (op == "Size") {
    const int64_t n = shape_numel(cx.info(cx.in(0)).shape);
    if (n < 0) return false;
    Tensor t(DType::kI64, {});
    static_cast<int64_t*>(t.raw())[0] = n;
    cx.set_const(cx.out(0), t);
    return true;
  }
  std::vector<const Tensor*> ins;
  // Layout ops on batch-sized zeros (the initial states of a multi-layer RNN, sliced per layer)
  // fold on a stand-in whose batch is an unusual size, recognised again in the result.
  constexpr int64_t kStandInBatch = 9973;
  const bool layout_op = op == "Slice" || op == "Gather" || op == "Squeeze" || op == "Unsqueeze" ||
                         op == "Concat" || op == "Transpose" || op == "Identity";
  bool symbolic = false;
  std::vector<Tensor> stand_ins;
  stand_ins.reserve(cx.node().input_size());
  for (int i = 0; i < cx.node().input_size(); ++i) {
    if (cx.in(i).empty()) {
      ins.push_back(nullptr);
      continue;
    }
    const Tensor* t = cx.find_const(cx.in(i));
    if (!t && layout_op && cx.is_symbolic_zeros(cx.in(i))) {
      Shape s = cx.info(cx.in(i)).shape;
      for (int64_t& d : s) d = d == kDynamic ? kStandInBatch : d;
      if (shape_numel(s) > (int64_t{1} << 24)) return false;
      stand_ins.emplace_back(cx.info(cx.in(i)).dtype, s);
      t = &stand_ins.back();
      symbolic = true;
    }
    if (!t) return false;
    ins.push_back(t);
  }
  if (ins.empty() || !ins[0] || cx.node().output_size() != 1) return false;
  const Tensor& x = *ins[0];
  auto ints_in = [&](size_t i) {
    std::vector<int64_t> v;
    if (i < ins.size() && ins[i])
      for (int64_t k = 0; k < ins[i]->numel(); ++k) v.push_back(get_int(*ins[i], k));
    return v;
  };
  std::optional<Tensor> res;
  if (op == "ConstantOfShape" && has_batch_marker(x)) {
    Tensor fill(DType::kF32, {1});
    if (const auto* a = cx.attr("value")) fill = tensor_from_proto(a->t(), cx.node_label());
    if (fill.numel() != 1 || get_num(fill, 0) != 0) return false;
    ValueInfo v{cx.out(0), fill.dtype(), {}};
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t d = get_int(x, i);
      v.shape.push_back(d == kBatchDim ? kDynamic : d);
    }
    cx.set_symbolic_zeros(cx.out(0), v);
    return true;
  } else if (op == "ConstantOfShape") {
    res = fold_constant_of_shape(cx, x);
  } else if (op == "Identity") {
    res = x;
  } else if (op == "Gather" && ins.size() == 2) {
    res = fold_gather(cx, x, *ins[1]);
  } else if (op == "Concat") {
    res = fold_concat(cx, ins);
  } else if (op == "Unsqueeze") {
    std::vector<int64_t> axes = cx.opset() >= 13 ? ints_in(1) : cx.attr_ints("axes", {});
    const int64_t r = x.rank() + static_cast<int64_t>(axes.size());
    Shape s;
    std::vector<bool> is_new(r, false);
    for (int64_t a : axes) is_new[onnx_axis(cx, a, r, "axes")] = true;
    int64_t k = 0;
    for (int64_t i = 0; i < r; ++i) s.push_back(is_new[i] ? 1 : x.dim(static_cast<int>(k++)));
    res = x.clone().reshaped(s);
  } else if (op == "Squeeze") {
    std::vector<int64_t> axes = cx.opset() >= 13 ? ints_in(1) : cx.attr_ints("axes", {});
    std::vector<bool> drop(x.rank(), axes.empty());
    for (int64_t a : axes) drop[onnx_axis(cx, a, x.rank(), "axes")] = true;
    Shape s;
    for (int64_t i = 0; i < x.rank(); ++i) {
      const int64_t d = x.dim(static_cast<int>(i));
      if (drop[i] && d != 1 && !axes.empty())
        cx.fail("cannot squeeze a dimension of size " + std::to_string(d));
      if (!(drop[i] && d == 1)) s.push_back(d);
    }
    res = x.clone().reshaped(s);
  } else if (op == "Reshape" && ins.size() == 2) {
    res = reshaped_const(cx, x, ints_in(1));
  } else if (op == "Flatten") {
    int64_t axis = cx.attr_int("axis", 1);
    if (axis < 0) axis += x.rank();
    axis = onnx_axis(cx, axis, x.rank() + 1);
    int64_t rows = 1;
    for (int64_t i = 0; i < axis; ++i) rows *= x.dim(static_cast<int>(i));
    res = x.clone().reshaped({rows, rows ? x.numel() / rows : 0});
  } else if (op == "Slice") {
    if (cx.opset() >= 10) {
      res = fold_slice(cx, x, ints_in(1), ints_in(2), ints_in(3), ints_in(4));
    } else {
      res = fold_slice(cx, x, cx.attr_ints("starts", {}), cx.attr_ints("ends", {}),
                       cx.attr_ints("axes", {}), {});
    }
  } else if (op == "Transpose") {
    res = fold_transpose(cx, x);
  } else if (op == "Cast") {
    if (has_batch_marker(x)) return false;
    res = fold_cast(cx, x);
  } else if ((op == "Add" || op == "Sub" || op == "Mul" || op == "Div") && ins.size() == 2) {
    res = fold_arith(cx, x, *ins[1]);
  }
  if (!res) return false;
  if (symbolic) {
    ValueInfo v{cx.out(0), res->dtype(), res->shape()};
    for (int64_t& d : v.shape) d = d == kStandInBatch ? kDynamic : d;
    cx.set_symbolic_zeros(cx.out(0), v);
    return true;
  }
  cx.set_const(cx.out(0), *res);
  return true;
}

}  // namespace minnow::onnx
