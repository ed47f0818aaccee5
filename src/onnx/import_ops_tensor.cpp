// Converters for elementwise ops, activations, reductions and layout ops.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/op_registry.h"
#include "onnx/import_ops.h"

namespace minnow::onnx {
namespace {

// An op minnow has under the ONNX name (the math and shape families use ONNX's names).
OpKind kind_of(ImportContext& cx, const std::string& name) {
  try {
    return op_kind_from_name(name);
  } catch (const Error&) {
    cx.unsupported("minnow has no op " + name);
  }
}

// Checks the first `count` inputs (all when -1) for floating-point dtypes.
void require_float_inputs(ImportContext& cx, int count = -1) {
  const int n = count < 0 ? cx.node().input_size() : std::min(count, cx.node().input_size());
  for (int i = 0; i < n; ++i) {
    if (cx.in(i).empty()) continue;
    const DType t = cx.info(cx.in(i)).dtype;
    if (!dtype_is_float(t)) {
      cx.unsupported("input '" + cx.in(i) + "' has dtype " + std::string(dtype_name(t)) +
                     "; this op runs on floating-point tensors only");
    }
  }
}

// A Reshape to a fully known target shape in which the symbolic batch appears at most once
// (written as -1, which minnow resolves to the batch).
std::string reshape_to(ImportContext& cx, const std::string& x, const Shape& target,
                       const std::string& out) {
  std::vector<int64_t> s = target;
  int dyn = 0;
  for (int64_t& d : s) {
    if (d == kDynamic) ++dyn;
  }
  if (dyn > 1) cx.unsupported("a reshape that would need the symbolic batch twice");
  Attrs a;
  a.set("shape", s);
  return cx.emit1(OpKind::kReshape, {x}, a, out);
}

void convert_unary(ImportContext& cx) {
  require_float_inputs(cx);
  const std::string& op = cx.node().op_type();
  Attrs a;
  if (op == "LeakyRelu") {
    a.set("alpha", cx.attr_float("alpha", 0.01));
  } else if (op == "HardSigmoid") {
    a.set("alpha", cx.attr_float("alpha", 0.2));
    a.set("beta", cx.attr_float("beta", 0.5));
  } else if (op == "Elu" || op == "Celu" || op == "ThresholdedRelu") {
    a.set("alpha", cx.attr_float("alpha", 1.0));
  } else if (op == "Selu") {
    a.set("alpha", cx.attr_float("alpha", 1.67326319217681884765625));
    a.set("gamma", cx.attr_float("gamma", 1.05070102214813232421875));
  } else {
    cx.allow_attrs({});
  }
  cx.emit1(kind_of(cx, op), {cx.value(cx.in(0))}, a, cx.out(0));
}

void convert_clip(ImportContext& cx) {
  require_float_inputs(cx, 1);
  double lo = -std::numeric_limits<double>::infinity(), hi = -lo;
  if (cx.opset() < 11) {
    lo = cx.attr_float("min", lo);
    hi = cx.attr_float("max", hi);
  } else {
    if (!cx.in(1).empty()) lo = const_scalar(cx, cx.in(1), "min");
    if (!cx.in(2).empty()) hi = const_scalar(cx, cx.in(2), "max");
  }
  const std::string x = cx.value(cx.in(0));
  if (lo == 0 && hi == 6) {
    cx.emit1(OpKind::kRelu6, {x}, {}, cx.out(0));
  } else if (lo == 0 && std::isinf(hi) && hi > 0) {
    cx.emit1(OpKind::kRelu, {x}, {}, cx.out(0));
  } else {
    Attrs a;
    a.set("min", lo);
    a.set("max", hi);
    cx.emit1(kind_of(cx, "Clip"), {x}, a, cx.out(0));
  }
}

void convert_binary(ImportContext& cx) {
  require_float_inputs(cx);
  const std::string& op = cx.node().op_type();
  OpKind k = op == "Add"   ? OpKind::kAdd
             : op == "Sub" ? OpKind::kSub
             : op == "Mul" ? OpKind::kMul
                           : kind_of(cx, op);
  if (cx.node().input_size() != 2) cx.fail("expected 2 inputs");
  cx.emit1(k, {cx.value(cx.in(0)), cx.value(cx.in(1))}, {}, cx.out(0));
}

// Max, Min, Sum, Mean: variadic, chained pairwise.
void convert_variadic(ImportContext& cx) {
  require_float_inputs(cx);
  const std::string& op = cx.node().op_type();
  const int n = cx.node().input_size();
  if (n < 1) cx.fail("needs at least one input");
  OpKind k = op == "Sum" || op == "Mean" ? OpKind::kAdd : kind_of(cx, op);
  std::string acc = cx.value(cx.in(0));
  if (n == 1 && op != "Mean") {
    cx.alias(cx.out(0), acc);
    return;
  }
  for (int i = 1; i < n; ++i) {
    const bool last = i == n - 1 && op != "Mean";
    acc = cx.emit1(k, {acc, cx.value(cx.in(i))}, {}, last ? cx.out(0) : "");
  }
  if (op == "Mean") {
    const DType t = cx.info(cx.in(0)).dtype;
    Tensor s(t, {});
    if (t == DType::kF64) {
      s.data<double>()[0] = 1.0 / n;
    } else {
      s.f32()[0] = 1.0f / static_cast<float>(n);
    }
    cx.emit1(OpKind::kMul, {acc, cx.add_initializer("mean_scale", s, false)}, {}, cx.out(0));
  }
}

void convert_softmax(ImportContext& cx) {
  require_float_inputs(cx);
  const std::string& op = cx.node().op_type();
  const OpKind k = op == "Softmax" ? OpKind::kSoftmax : OpKind::kLogSoftmax;
  const ValueInfo x = cx.info(cx.in(0));
  const int64_t r = static_cast<int64_t>(x.shape.size());
  const int64_t axis = onnx_axis(cx, cx.attr_int("axis", cx.opset() >= 13 ? -1 : 1), r);
  Attrs a;
  if (cx.opset() >= 13 || axis == r - 1) {
    a.set("axis", axis);
    cx.emit1(k, {cx.value(cx.in(0))}, a, cx.out(0));
    return;
  }
  // Before opset 13 the input is flattened to 2-D at `axis` and normalized per row.
  Shape flat{1, 1};
  for (int64_t i = 0; i < r; ++i) {
    int64_t& f = flat[i < axis ? 0 : 1];
    if (x.shape[i] == kDynamic) {
      f = kDynamic;
    } else if (f != kDynamic) {
      f *= x.shape[i];
    }
  }
  if (flat[1] == kDynamic) cx.unsupported("softmax over the symbolic batch");
  if (flat[0] == kDynamic && axis != 1)
    cx.unsupported("softmax with this axis and a symbolic batch");
  std::string y = reshape_to(cx, cx.value(cx.in(0)), flat, "");
  a.set("axis", int64_t{1});
  y = cx.emit1(k, {y}, a);
  reshape_to(cx, y, x.shape, cx.out(0));
}

void convert_concat(ImportContext& cx) {
  std::vector<std::string> ins;
  for (int i = 0; i < cx.node().input_size(); ++i) ins.push_back(cx.value(cx.in(i)));
  const int64_t r = static_cast<int64_t>(cx.info(cx.in(0)).shape.size());
  Attrs a;
  a.set("axis", onnx_axis(cx, cx.attr_int("axis", 0), r));
  cx.emit1(OpKind::kConcat, ins, a, cx.out(0));
}

void convert_split(ImportContext& cx) {
  const ValueInfo x = cx.info(cx.in(0));
  const int64_t r = static_cast<int64_t>(x.shape.size());
  Attrs a;
  a.set("axis", onnx_axis(cx, cx.attr_int("axis", 0), r));
  std::vector<int64_t> split = cx.attr_ints("split", {});
  if (cx.opset() >= 13 && !cx.in(1).empty()) split = const_ints(cx, cx.in(1), "split");
  if (!split.empty()) a.set("split", split);
  std::vector<std::string> outs;
  for (int i = 0; i < cx.node().output_size(); ++i) outs.push_back(cx.out(i));
  cx.emit(OpKind::kSplit, {cx.value(cx.in(0))}, a, outs);
}

void convert_reshape(ImportContext& cx) {
  std::vector<int64_t> target = const_ints(cx, cx.in(1), "shape");
  const ValueInfo x = cx.info(cx.in(0));
  const bool allowzero = cx.attr_int("allowzero", 0) != 0;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == 0 && allowzero) cx.unsupported("allowzero with a zero-sized dimension");
    if (target[i] == kBatchDim) {
      // The batch read by Shape: keep it where it was, else let -1 carry it.
      target[i] = i == 0 && !x.shape.empty() && x.shape[0] == kDynamic ? 0 : -1;
    }
  }
  Attrs a;
  a.set("shape", target);
  cx.emit1(OpKind::kReshape, {cx.value(cx.in(0))}, a, cx.out(0));
}

void convert_flatten(ImportContext& cx) {
  const ValueInfo x = cx.info(cx.in(0));
  Attrs a;
  // Flatten's axis is in [-r, r]; a negative one counts from r (not r + 1).
  const int64_t r = static_cast<int64_t>(x.shape.size());
  int64_t axis = cx.attr_int("axis", 1);
  if (axis < 0) axis += r;
  a.set("axis", onnx_axis(cx, axis, r + 1));
  cx.emit1(OpKind::kFlatten, {cx.value(cx.in(0))}, a, cx.out(0));
}

void convert_transpose(ImportContext& cx) {
  const ValueInfo x = cx.info(cx.in(0));
  Attrs a;
  if (cx.attr("perm")) a.set("perm", cx.attr_ints("perm", {}));
  cx.emit1(OpKind::kTranspose, {cx.value(cx.in(0))}, a, cx.out(0));
}

// Squeeze and Unsqueeze are reshapes to a shape known at import.
void convert_squeeze(ImportContext& cx) {
  const bool un = cx.node().op_type() == "Unsqueeze";
  const ValueInfo x = cx.info(cx.in(0));
  std::vector<int64_t> axes = cx.attr_ints("axes", {});
  if (cx.opset() >= 13 && !cx.in(1).empty()) axes = const_ints(cx, cx.in(1), "axes");
  Shape s;
  if (un) {
    const int64_t r = static_cast<int64_t>(x.shape.size() + axes.size());
    std::vector<bool> is_new(r, false);
    for (int64_t a : axes) is_new[onnx_axis(cx, a, r, "axes")] = true;
    size_t k = 0;
    for (int64_t i = 0; i < r; ++i) s.push_back(is_new[i] ? 1 : x.shape[k++]);
  } else {
    const int64_t r = static_cast<int64_t>(x.shape.size());
    std::vector<bool> drop(r, false);
    for (int64_t a : axes) drop[onnx_axis(cx, a, r, "axes")] = true;
    for (int64_t i = 0; i < r; ++i) {
      if (axes.empty()) drop[i] = x.shape[i] == 1;
      if (drop[i] && x.shape[i] != 1)
        cx.fail("cannot squeeze dimension " + std::to_string(i) + " of " + shape_str(x.shape));
      if (!drop[i]) s.push_back(x.shape[i]);
    }
  }
  reshape_to(cx, cx.value(cx.in(0)), s, cx.out(0));
}

void convert_identity(ImportContext& cx) { cx.alias(cx.out(0), cx.value(cx.in(0))); }

void convert_dropout(ImportContext& cx) {
  if (!cx.out(1).empty()) cx.unsupported("the mask output of Dropout");
  if (!cx.in(2).empty()) {
    const Tensor& t = cx.const_value(cx.in(2), "training_mode");
    if (t.numel() != 1 || static_cast<const uint8_t*>(t.raw())[0] != 0) {
      cx.unsupported("Dropout in training mode");
    }
  }
  cx.alias(cx.out(0), cx.value(cx.in(0)));
}

void convert_reduce(ImportContext& cx) {
  require_float_inputs(cx, 1);
  const std::string& op = cx.node().op_type();
  std::vector<int64_t> axes = cx.attr_ints("axes", {});
  const bool axes_as_input = (op == "ReduceSum" && cx.opset() >= 13) || cx.opset() >= 18;
  if (axes_as_input && !cx.in(1).empty()) axes = const_ints(cx, cx.in(1), "axes");
  if (axes.empty() && cx.attr_int("noop_with_empty_axes", 0)) {
    cx.alias(cx.out(0), cx.value(cx.in(0)));
    return;
  }
  Attrs a;
  a.set("axes", axes);
  a.set("keepdims", cx.attr_int("keepdims", 1));
  cx.emit1(kind_of(cx, op), {cx.value(cx.in(0))}, a, cx.out(0));
}

void convert_global_max_pool(ImportContext& cx) {
  require_float_inputs(cx);
  const int64_t r = static_cast<int64_t>(cx.info(cx.in(0)).shape.size());
  std::vector<int64_t> axes;
  for (int64_t i = 2; i < r; ++i) axes.push_back(i);
  Attrs a;
  a.set("axes", axes);
  a.set("keepdims", int64_t{1});
  cx.emit1(kind_of(cx, "ReduceMax"), {cx.value(cx.in(0))}, a, cx.out(0));
}

void convert_pad(ImportContext& cx) {
  std::vector<int64_t> pads = cx.attr_ints("pads", {});
  double value = cx.attr_float("value", 0.0);
  if (cx.opset() >= 11) {
    pads = const_ints(cx, cx.in(1), "pads");
    if (!cx.in(2).empty()) value = const_scalar(cx, cx.in(2), "constant_value");
    if (!cx.in(3).empty()) cx.unsupported("the axes input of Pad");
  }
  Attrs a;
  a.set("pads", pads);
  a.set("mode", cx.attr_string("mode", "constant"));
  a.set("value", value);
  cx.emit1(kind_of(cx, "Pad"), {cx.value(cx.in(0))}, a, cx.out(0));
}

void convert_slice(ImportContext& cx) {
  Attrs a;
  if (cx.opset() >= 10) {
    a.set("starts", const_ints(cx, cx.in(1), "starts"));
    a.set("ends", const_ints(cx, cx.in(2), "ends"));
    if (!cx.in(3).empty()) a.set("axes", const_ints(cx, cx.in(3), "axes"));
    if (!cx.in(4).empty()) a.set("steps", const_ints(cx, cx.in(4), "steps"));
  } else {
    a.set("starts", cx.attr_ints("starts", {}));
    a.set("ends", cx.attr_ints("ends", {}));
    if (cx.attr("axes")) a.set("axes", cx.attr_ints("axes", {}));
  }
  cx.emit1(kind_of(cx, "Slice"), {cx.value(cx.in(0))}, a, cx.out(0));
}

void convert_gather(ImportContext& cx) {
  const ValueInfo data = cx.info(cx.in(0));
  const int64_t axis =
      onnx_axis(cx, cx.attr_int("axis", 0), static_cast<int64_t>(data.shape.size()));
  const Tensor* w = cx.find_const(cx.in(0));
  const ValueInfo idx = cx.info(cx.in(1));
  if (w && axis == 0 && data.shape.size() == 2 && dtype_is_float(data.dtype) &&
      !cx.is_const(cx.in(1)) && idx.dtype == DType::kI64) {
    // A lookup table read with run-time indices: an Embedding (its table trains).
    cx.emit1(OpKind::kEmbedding, {cx.value(cx.in(1)), cx.value(cx.in(0))}, {}, cx.out(0));
    return;
  }
  Attrs a;
  a.set("axis", axis);
  cx.emit1(kind_of(cx, "Gather"), {cx.value(cx.in(0)), cx.value(cx.in(1))}, a, cx.out(0));
}

void convert_cast(ImportContext& cx) {
  const int64_t to = cx.attr_int("to", 0);
  static const std::map<int64_t, const char*> kNames = {
      {::onnx::TensorProto::FLOAT, "f32"}, {::onnx::TensorProto::DOUBLE, "f64"},
      {::onnx::TensorProto::INT64, "i64"}, {::onnx::TensorProto::INT32, "i32"},
      {::onnx::TensorProto::INT8, "i8"},   {::onnx::TensorProto::UINT8, "u8"}};
  auto it = kNames.find(to);
  if (it == kNames.end()) cx.unsupported("Cast to element type " + std::to_string(to));
  const ValueInfo x = cx.info(cx.in(0));
  if (dtype_name(x.dtype) == it->second) {
    cx.alias(cx.out(0), cx.value(cx.in(0)));
    return;
  }
  Attrs a;
  a.set("to", std::string(it->second));
  cx.emit1(kind_of(cx, "Cast"), {cx.value(cx.in(0))}, a, cx.out(0));
}

void convert_expand(ImportContext& cx) {
  Attrs a;
  a.set("shape", const_ints(cx, cx.in(1), "shape"));
  cx.emit1(kind_of(cx, "Expand"), {cx.value(cx.in(0))}, a, cx.out(0));
}

void convert_depth_space(ImportContext& cx) {
  Attrs a;
  a.set("blocksize", cx.attr_int("blocksize", 0));
  if (cx.node().op_type() == "DepthToSpace") a.set("mode", cx.attr_string("mode", "DCR"));
  cx.emit1(kind_of(cx, cx.node().op_type()), {cx.value(cx.in(0))}, a, cx.out(0));
}

// Inputs as minnow values, "" kept for absent optional inputs (minnow's convention too).
std::vector<std::string> values_of_inputs(ImportContext& cx) {
  std::vector<std::string> ins;
  for (int i = 0; i < cx.node().input_size(); ++i) {
    ins.push_back(cx.in(i).empty() ? std::string() : cx.value(cx.in(i)));
  }
  while (!ins.empty() && ins.back().empty()) ins.pop_back();
  return ins;
}

bool is_q8(DType t) { return t == DType::kU8 || t == DType::kI8; }

// QuantizeLinear / DequantizeLinear: the same op, inputs and axis. ONNX's later additions
// (blocked quantization, output_dtype, float8/int4/16-bit types) are reported as unsupported.
void convert_qdq(ImportContext& cx) {
  cx.allow_attrs({"axis", "saturate", "block_size", "output_dtype"});
  if (cx.attr_int("block_size", 0) != 0) cx.unsupported("blocked quantization (block_size)");
  if (cx.attr_int("output_dtype", 0) != 0) cx.unsupported("attribute output_dtype");
  const bool quantize = cx.node().op_type() == "QuantizeLinear";
  const ValueInfo x = cx.info(cx.in(0));
  if (quantize && x.dtype != DType::kF32) {
    cx.unsupported("QuantizeLinear of " + std::string(dtype_name(x.dtype)) +
                   " input (minnow quantizes f32)");
  }
  if (!quantize && !is_q8(x.dtype) && x.dtype != DType::kI32) {
    cx.unsupported("DequantizeLinear of " + std::string(dtype_name(x.dtype)) +
                   " input (minnow dequantizes u8, i8 and i32)");
  }
  if (cx.info(cx.in(1)).dtype != DType::kF32) cx.unsupported("a scale that is not f32");
  Attrs a;
  a.set("axis", cx.attr_int("axis", 1));
  cx.emit1(quantize ? OpKind::kQuantizeLinear : OpKind::kDequantizeLinear, values_of_inputs(cx), a,
           cx.out(0));
}

// QLinearConv: the same nine inputs. minnow's QLinearConv is 2-D with i8 weights.
void convert_qlinear_conv(ImportContext& cx) {
  cx.allow_attrs({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  const ValueInfo x = cx.info(cx.in(0));
  const ValueInfo w = cx.info(cx.in(3));
  if (x.shape.size() != 4 || w.shape.size() != 4) {
    cx.unsupported("only 2-D QLinearConv ([N,C,H,W] input) is supported, input is " +
                   shape_str(x.shape));
  }
  if (!is_q8(x.dtype))
    cx.unsupported("QLinearConv input of dtype " + std::string(dtype_name(x.dtype)));
  if (w.dtype != DType::kI8) {
    cx.unsupported("QLinearConv weights of dtype " + std::string(dtype_name(w.dtype)) +
                   " (minnow's int8 convolution takes i8 weights)");
  }
  const std::string mode = cx.attr_string("auto_pad", "NOTSET");
  std::vector<int64_t> pads = cx.attr_ints("pads", {0, 0, 0, 0});
  if (mode == "VALID") {
    pads = {0, 0, 0, 0};
  } else if (mode != "NOTSET") {
    cx.unsupported("auto_pad " + mode + " on QLinearConv");
  }
  if (pads.size() != 4) cx.fail("pads has " + std::to_string(pads.size()) + " values");
  Attrs a;
  a.set("strides", cx.attr_ints("strides", {1, 1}));
  a.set("dilations", cx.attr_ints("dilations", {1, 1}));
  a.set("pads", pads);  // ONNX's [x1_begin, x2_begin, x1_end, x2_end] is minnow's [t, l, b, r]
  a.set("group", cx.attr_int("group", 1));
  cx.emit1(OpKind::kQLinearConv, values_of_inputs(cx), a, cx.out(0));
}

}  // namespace

void add_tensor_converters(ConverterTable& t) {
  for (const char* op : {"Relu",        "Sigmoid",
                         "Tanh",        "HardSwish",
                         "HardSigmoid", "LeakyRelu",
                         "Exp",         "Log",
                         "Sqrt",        "Neg",
                         "Abs",         "Reciprocal",
                         "Erf",         "Floor",
                         "Ceil",        "Round",
                         "Sign",        "Sin",
                         "Cos",         "Tan",
                         "Asin",        "Acos",
                         "Atan",        "Sinh",
                         "Cosh",        "Asinh",
                         "Acosh",       "Atanh",
                         "Softplus",    "Softsign",
                         "Elu",         "Selu",
                         "Celu",        "ThresholdedRelu"})
    t[op] = convert_unary;
  t["Clip"] = convert_clip;
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow"}) t[op] = convert_binary;
  for (const char* op : {"Max", "Min", "Sum", "Mean"}) t[op] = convert_variadic;
  t["Softmax"] = convert_softmax;
  t["LogSoftmax"] = convert_softmax;
  t["Concat"] = convert_concat;
  t["Split"] = convert_split;
  t["Reshape"] = convert_reshape;
  t["Flatten"] = convert_flatten;
  t["Transpose"] = convert_transpose;
  t["Squeeze"] = convert_squeeze;
  t["Unsqueeze"] = convert_squeeze;
  t["Identity"] = convert_identity;
  t["Dropout"] = convert_dropout;
  for (const char* op :
       {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
        "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"})
    t[op] = convert_reduce;
  t["GlobalMaxPool"] = convert_global_max_pool;
  t["Pad"] = convert_pad;
  t["Slice"] = convert_slice;
  t["Gather"] = convert_gather;
  t["Cast"] = convert_cast;
  t["Expand"] = convert_expand;
  t["DepthToSpace"] = convert_depth_space;
  t["SpaceToDepth"] = convert_depth_space;
  t["QuantizeLinear"] = convert_qdq;
  t["DequantizeLinear"] = convert_qdq;
  t["QLinearConv"] = convert_qlinear_conv;
}

}  // namespace minnow::onnx
