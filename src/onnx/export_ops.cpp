// ONNX export of the op table, one emitter per op. Most ops are one ONNX node; the ones that
// differ (fused activations, Linear on rank > 2, Gelu before opset 20, Relu6) become the small
// standard patterns that mean the same. The ops added for ONNX import carry ONNX's own names and
// attributes and are written generically, moving to inputs the attributes that ONNX opsets >= 10
// take as tensors (Slice, Pad, Clip, Expand, Squeeze/Unsqueeze, Split, Reduce* axes).
#include <cmath>
#include <cstring>
#include <numbers>
#include <set>
#include <variant>

#include "core/op_registry.h"
#include "minnow/error.h"
#include "onnx/export_context.h"
#include "onnx/export_qdq.h"
#include "onnx/onnx_tensor.h"

namespace minnow::onnx {
namespace {

using ::onnx::NodeProto;

// Attribute `key` as ints, or `fallback` when absent.
std::vector<int64_t> ints_or(const Node& n, const std::string& key, std::vector<int64_t> fallback) {
  return n.attrs.get_ints(key, std::move(fallback));
}

}  // namespace

void set_conv_attrs(NodeProto* p, const Node& n, const Shape& w) {
  set_attr(p, "kernel_shape", std::vector<int64_t>{w[2], w[3]});
  set_attr(p, "strides", ints_or(n, "strides", {1, 1}));
  // minnow pads are [top, left, bottom, right]: ONNX's [x1_begin, x2_begin, x1_end, x2_end].
  set_attr(p, "pads", ints_or(n, "pads", {0, 0, 0, 0}));
  set_attr(p, "dilations", ints_or(n, "dilations", {1, 1}));
  set_attr(p, "group", n.attrs.get_int("group", 1));
}

namespace {

void emit_conv(ExportContext& cx, const Node& n) {
  const std::string raw = fused_output(cx, n, n.outputs[0]);
  std::vector<std::string> ins(n.inputs.begin(), n.inputs.end());
  if (ins.size() == 3 && ins[2].empty()) ins.pop_back();
  if (ins.size() == 3) ins[2] = exported_bias(cx, n);
  const Shape& w = cx.info(n.inputs[1]).shape;
  set_conv_attrs(cx.add_node("Conv", ins, {raw}, n.name), n, w);
  emit_fused_activation(cx, n, raw, n.outputs[0]);
}

void emit_pool(ExportContext& cx, const Node& n) {
  const bool avg = n.op == OpKind::kAvgPool;
  NodeProto* p =
      cx.add_node(avg ? "AveragePool" : "MaxPool", {n.inputs[0]}, {n.outputs[0]}, n.name);
  const std::vector<int64_t> k = ints_or(n, "kernel", {});
  set_attr(p, "kernel_shape", k);
  // minnow's strides default to the kernel (PyTorch), ONNX's to 1: always written.
  set_attr(p, "strides", ints_or(n, "strides", k));
  set_attr(p, "pads", ints_or(n, "pads", {0, 0, 0, 0}));
  set_attr(p, "ceil_mode", n.attrs.get_int("ceil_mode", 0));
  if (avg) set_attr(p, "count_include_pad", n.attrs.get_int("count_include_pad", 0));
}

// QuantizeLinear / DequantizeLinear: the standard ops (opset 13 semantics, which every opset
// the exporter writes has), same inputs; axis only matters, and is only written, per channel.
void emit_qdq(ExportContext& cx, const Node& n) {
  const bool quantize = n.op == OpKind::kQuantizeLinear;
  if (!quantize && only_recurrent_weights_read(cx.graph(), n.outputs[0])) return;
  std::vector<std::string> ins = n.inputs;
  while (!ins.empty() && ins.back().empty()) ins.pop_back();
  const bool per_channel =
      cx.info(n.inputs[1]).shape.size() == 1 && cx.info(n.inputs[1]).shape[0] != 1;
  NodeProto* p =
      cx.add_node(quantize ? "QuantizeLinear" : "DequantizeLinear", ins, n.outputs, n.name);
  if (per_channel) set_attr(p, "axis", n.attrs.get_int("axis", 1));
}

}  // namespace

std::string transposed_weight(ExportContext& cx, const Node& n, const std::string& w) {
  if (const Tensor* t = cx.initializer(w)) {
    if (t->rank() != 2) export_fail(n, "weight must be a matrix");
    const int64_t rows = t->dim(0), cols = t->dim(1);
    Tensor tt(t->dtype(), {cols, rows});
    const size_t es = dtype_size(t->dtype());
    const auto* src = static_cast<const std::byte*>(t->raw());
    auto* dst = static_cast<std::byte*>(tt.raw());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        std::memcpy(dst + (c * rows + r) * es, src + (r * cols + c) * es, es);
      }
    }
    return cx.add_constant(tt, w + "_T");
  }
  const std::string wt = cx.fresh(w + "_T");
  NodeProto* p = cx.add_node("Transpose", {w}, {wt}, n.name + "/weight_T");
  set_attr(p, "perm", std::vector<int64_t>{1, 0});
  return wt;
}

namespace {

void emit_linear(ExportContext& cx, const Node& n) {
  const std::string raw = fused_output(cx, n, n.outputs[0]);
  const bool has_bias = n.inputs.size() > 2 && !n.inputs[2].empty();
  if (cx.info(n.inputs[0]).shape.size() == 2) {
    std::vector<std::string> ins = {n.inputs[0], n.inputs[1]};
    if (has_bias) ins.push_back(exported_bias(cx, n));
    set_attr(cx.add_node("Gemm", ins, {raw}, n.name), "transB", int64_t{1});
  } else {
    const std::string wt = transposed_weight(cx, n, n.inputs[1]);
    const std::string prod = has_bias ? cx.fresh(raw + "_matmul") : raw;
    cx.add_node("MatMul", {n.inputs[0], wt}, {prod}, n.name);
    if (has_bias) cx.add_node("Add", {prod, n.inputs[2]}, {raw}, n.name + "/bias");
  }
  emit_fused_activation(cx, n, raw, n.outputs[0]);
}

void emit_batch_norm(ExportContext& cx, const Node& n) {
  const std::string raw = fused_output(cx, n, n.outputs[0]);
  NodeProto* p =
      cx.add_node("BatchNormalization",
                  {n.inputs[0], n.inputs[1], n.inputs[2], n.inputs[3], n.inputs[4]}, {raw}, n.name);
  set_attr(p, "epsilon", n.attrs.get_float("epsilon", 1e-5));
  // ONNX's momentum weighs the old running value, PyTorch's (minnow's) the new batch statistic.
  set_attr(p, "momentum", 1.0 - n.attrs.get_float("momentum", 0.1));
  emit_fused_activation(cx, n, raw, n.outputs[0]);
}

// 0.5 * x * (1 + erf(x / sqrt 2)), or with approximate="tanh"
// 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))).
void emit_gelu(ExportContext& cx, const Node& n) {
  const std::string& x = n.inputs[0];
  const std::string& y = n.outputs[0];
  const DType dt = cx.info(x).dtype;
  const std::string mode = n.attrs.get_string("approximate", "none");
  auto tmp = [&](const char* s) { return cx.fresh(y + "/" + s); };
  auto c = [&](double v, const char* s) { return cx.const_scalar(dt, v, n.name + "/" + s); };
  const std::string pre = n.name + "/";
  std::string core;
  if (mode == "none") {
    const std::string scaled = tmp("x_over_sqrt2");
    cx.add_node("Mul", {x, c(std::numbers::sqrt2 / 2, "inv_sqrt2")}, {scaled}, pre + "scale");
    core = tmp("erf");
    cx.add_node("Erf", {scaled}, {core}, pre + "erf");
  } else if (mode == "tanh") {
    const std::string x2 = tmp("x2"), x3 = tmp("x3"), kx3 = tmp("kx3"), inner = tmp("inner"),
                      u = tmp("u");
    cx.add_node("Mul", {x, x}, {x2}, pre + "x2");
    cx.add_node("Mul", {x2, x}, {x3}, pre + "x3");
    cx.add_node("Mul", {x3, c(0.044715, "kappa")}, {kx3}, pre + "kx3");
    cx.add_node("Add", {x, kx3}, {inner}, pre + "inner");
    cx.add_node("Mul", {inner, c(std::numbers::sqrt2 * std::numbers::inv_sqrtpi, "beta")}, {u},
                pre + "u");
    core = tmp("tanh");
    cx.add_node("Tanh", {u}, {core}, pre + "tanh");
  } else {
    export_fail(n, "attribute approximate must be \"none\" or \"tanh\", got \"" + mode + "\"");
  }
  const std::string one_plus = tmp("one_plus"), xs = tmp("x_times");
  cx.add_node("Add", {core, c(1.0, "one")}, {one_plus}, pre + "add_one");
  cx.add_node("Mul", {x, one_plus}, {xs}, pre + "mul_x");
  cx.add_node("Mul", {xs, c(0.5, "half")}, {y}, pre + "half");
}

void emit_hard_swish(ExportContext& cx, const Node& n) {
  if (cx.opset() >= 14) {
    cx.add_node("HardSwish", {n.inputs[0]}, {n.outputs[0]}, n.name);
    return;
  }
  const std::string hs = cx.fresh(n.outputs[0] + "/hard_sigmoid");
  NodeProto* p = cx.add_node("HardSigmoid", {n.inputs[0]}, {hs}, n.name + "/hard_sigmoid");
  set_attr(p, "alpha", 1.0 / 6.0);
  set_attr(p, "beta", 0.5);
  cx.add_node("Mul", {n.inputs[0], hs}, {n.outputs[0]}, n.name);
}

void emit_split(ExportContext& cx, const Node& n) {
  const Shape& x = cx.info(n.inputs[0]).shape;
  int64_t axis = n.attrs.get_int("axis", 0);
  if (axis < 0) axis += static_cast<int64_t>(x.size());
  // Sizes from the inferred outputs: explicit whether or not the node gave them.
  std::vector<int64_t> sizes;
  for (const std::string& o : n.outputs) sizes.push_back(cx.info(o).shape[axis]);
  NodeProto* p = cx.add_node("Split", {n.inputs[0], cx.const_i64(sizes, n.name + "/split")},
                             n.outputs, n.name);
  set_attr(p, "axis", axis);
}

void emit_reshape(ExportContext& cx, const Node& n) {
  // minnow's Reshape has ONNX's rules (0 copies a dim, one -1 is inferred), and its batch dim
  // must be a 0 or the -1, so the same shape works for every batch size.
  cx.add_node("Reshape", {n.inputs[0], cx.const_i64(ints_or(n, "shape", {}), n.name + "/shape")},
              {n.outputs[0]}, n.name);
}

void emit_simple(ExportContext& cx, const Node& n, const std::string& type) {
  cx.add_node(type, n.inputs, n.outputs, n.name);
}

// ---- Ops that share ONNX's names and attributes.

std::string scalar_like(ExportContext& cx, const Node& n, DType dt, double v, const char* what) {
  if (dtype_is_float(dt)) return cx.const_scalar(dt, v, n.name + "/" + what);
  Tensor t(dt, {});
  if (dt == DType::kI64) {
    t.data<int64_t>()[0] = static_cast<int64_t>(v);
  } else if (dt == DType::kI32) {
    t.data<int32_t>()[0] = static_cast<int32_t>(v);
  } else if (dt == DType::kI8) {
    t.data<int8_t>()[0] = static_cast<int8_t>(v);
  } else {
    t.data<uint8_t>()[0] = static_cast<uint8_t>(v);
  }
  return cx.add_constant(t, n.name + "/" + what);
}

bool is_reduce(const std::string& name) { return name.rfind("Reduce", 0) == 0; }

void emit_generic(ExportContext& cx, const Node& n) {
  const std::string type = op_def(n.op).name;
  std::vector<std::string> ins = n.inputs;
  std::set<std::string> moved;  // attributes written as inputs instead
  auto move_ints = [&](const std::string& key) {
    moved.insert(key);
    if (!n.attrs.has(key)) return std::string();
    return cx.const_i64(n.attrs.get_ints(key, {}), n.name + "/" + key);
  };
  if (type == "Squeeze" || type == "Unsqueeze" || type == "Expand") {
    const std::string key = type == "Expand" ? "shape" : "axes";
    const std::string in = move_ints(key);
    if (!in.empty()) ins.push_back(in);
  } else if (is_reduce(type) && (cx.opset() >= 18 || type == "ReduceSum")) {
    const std::vector<int64_t> axes = n.attrs.get_ints("axes", {});
    moved.insert("axes");
    if (!axes.empty()) ins.push_back(cx.const_i64(axes, n.name + "/axes"));
  } else if (type == "Slice") {
    ins.push_back(move_ints("starts"));
    ins.push_back(move_ints("ends"));
    ins.push_back(move_ints("axes"));
    ins.push_back(move_ints("steps"));
    while (!ins.empty() && ins.back().empty()) ins.pop_back();
  } else if (type == "Pad") {
    const DType dt = cx.info(n.inputs[0]).dtype;
    ins.push_back(move_ints("pads"));
    moved.insert("value");
    if (n.attrs.get_string("mode", "constant") == "constant") {
      ins.push_back(scalar_like(cx, n, dt, n.attrs.get_float("value", 0.0), "value"));
    }
  } else if (type == "Clip") {
    const DType dt = cx.info(n.inputs[0]).dtype;
    moved.insert("min");
    moved.insert("max");
    ins.push_back(n.attrs.has("min") ? scalar_like(cx, n, dt, n.attrs.get_float("min", 0), "min")
                                     : std::string());
    if (n.attrs.has("max"))
      ins.push_back(scalar_like(cx, n, dt, n.attrs.get_float("max", 0), "max"));
    while (!ins.empty() && ins.back().empty()) ins.pop_back();
  }
  NodeProto* p = cx.add_node(type, ins, n.outputs, n.name);
  for (const auto& [key, value] : n.attrs.all()) {
    if (moved.count(key)) continue;
    if (type == "Cast" && key == "to") {
      set_attr(p, "to",
               static_cast<int64_t>(dtype_to_onnx(dtype_from_name(std::get<std::string>(value)))));
      continue;
    }
    const std::string& name = key;  // structured bindings cannot be captured (clang 14)
    std::visit([&](const auto& v) { set_attr(p, name, v); }, value);
  }
}

}  // namespace

void emit_node(ExportContext& cx, const Node& n) {
  switch (n.op) {
    case OpKind::kConv2d:
      return emit_conv(cx, n);
    case OpKind::kMaxPool:
    case OpKind::kAvgPool:
      return emit_pool(cx, n);
    case OpKind::kGlobalAvgPool:
      return emit_simple(cx, n, "GlobalAveragePool");
    case OpKind::kLinear:
      return emit_linear(cx, n);
    case OpKind::kMatMul:
      return emit_simple(cx, n, "MatMul");
    case OpKind::kBatchNorm:
      return emit_batch_norm(cx, n);
    case OpKind::kRelu:
      return emit_simple(cx, n, "Relu");
    case OpKind::kRelu6: {
      const DType dt = cx.info(n.inputs[0]).dtype;
      cx.add_node("Clip",
                  {n.inputs[0], cx.const_scalar(dt, 0.0, n.name + "/min"),
                   cx.const_scalar(dt, 6.0, n.name + "/max")},
                  n.outputs, n.name);
      return;
    }
    case OpKind::kLeakyRelu:
      set_attr(cx.add_node("LeakyRelu", n.inputs, n.outputs, n.name), "alpha",
               n.attrs.get_float("alpha", 0.01));
      return;
    case OpKind::kSigmoid:
      return emit_simple(cx, n, "Sigmoid");
    case OpKind::kTanh:
      return emit_simple(cx, n, "Tanh");
    case OpKind::kGelu:
      return emit_gelu(cx, n);
    case OpKind::kHardSwish:
      return emit_hard_swish(cx, n);
    case OpKind::kHardSigmoid: {
      // minnow's defaults are PyTorch's (1/6, 1/2), ONNX's are (0.2, 0.5): always written.
      NodeProto* p = cx.add_node("HardSigmoid", n.inputs, n.outputs, n.name);
      set_attr(p, "alpha", n.attrs.get_float("alpha", 1.0 / 6.0));
      set_attr(p, "beta", n.attrs.get_float("beta", 0.5));
      return;
    }
    case OpKind::kAdd:
      return emit_simple(cx, n, "Add");
    case OpKind::kSub:
      return emit_simple(cx, n, "Sub");
    case OpKind::kMul:
      return emit_simple(cx, n, "Mul");
    case OpKind::kConcat:
      set_attr(cx.add_node("Concat", n.inputs, n.outputs, n.name), "axis",
               n.attrs.get_int("axis", 0));
      return;
    case OpKind::kSplit:
      return emit_split(cx, n);
    case OpKind::kReshape:
      return emit_reshape(cx, n);
    case OpKind::kFlatten:
      set_attr(cx.add_node("Flatten", n.inputs, n.outputs, n.name), "axis",
               n.attrs.get_int("axis", 1));
      return;
    case OpKind::kTranspose: {
      NodeProto* p = cx.add_node("Transpose", n.inputs, n.outputs, n.name);
      if (n.attrs.has("perm")) set_attr(p, "perm", n.attrs.get_ints("perm", {}));
      return;
    }
    case OpKind::kSoftmax:
    case OpKind::kLogSoftmax:
      set_attr(cx.add_node(n.op == OpKind::kSoftmax ? "Softmax" : "LogSoftmax", n.inputs, n.outputs,
                           n.name),
               "axis", n.attrs.get_int("axis", -1));
      return;
    case OpKind::kDropout:
      // Inference form: ONNX Dropout is an identity there too, Identity says so plainly.
      cx.add_node("Identity", {n.inputs[0]}, {n.outputs[0]}, n.name);
      return;
    case OpKind::kSoftmaxCrossEntropy:
    case OpKind::kMseLoss:
    case OpKind::kBceWithLogits:
    case OpKind::kDistillationLoss:
      export_fail(n,
                  "losses are training-only and have no ONNX inference form; export with "
                  "drop_losses (CLI: --drop-losses) to leave them out");
    case OpKind::kEmbedding:
      set_attr(cx.add_node("Gather", {n.inputs[1], n.inputs[0]}, n.outputs, n.name), "axis",
               int64_t{0});
      return;
    case OpKind::kLayerNorm: {
      if (cx.opset() < 17) export_fail(n, "LayerNormalization needs opset >= 17");
      NodeProto* p = cx.add_node("LayerNormalization", n.inputs, n.outputs, n.name);
      set_attr(p, "axis", int64_t{-1});
      set_attr(p, "epsilon", n.attrs.get_float("epsilon", 1e-5));
      return;
    }
    case OpKind::kMultiHeadAttention:
      return emit_attention(cx, n);
    case OpKind::kLstm:
    case OpKind::kGru:
      return emit_lstm_gru(cx, n);
    case OpKind::kQuantizeLinear:
    case OpKind::kDequantizeLinear:
      return emit_qdq(cx, n);
    case OpKind::kQLinearConv:
    case OpKind::kQLinearLinear:
      // The QOperator export lowers these itself (onnx_export.cpp) and knows how to write them.
      if (cx.opts().qoperator) return emit_qoperator(cx, n);
      [[fallthrough]];
    case OpKind::kQLinearAdd:
    case OpKind::kQLinearGlobalAvgPool:
    case OpKind::kQLinearLookup:
    case OpKind::kQLinearSoftmax:
      // Lowered int8 ops carry minnow attributes (fused activation, f32 output) that the ONNX
      // ops lack; the QDQ form before lowering is the portable one.
      export_fail(n, "lowered int8 ops are not exported; export the QDQ graph (before lowering)");
    case OpKind::kFakeQuantize:
      export_fail(n, "FakeQuantize is training-only; export the model minnow qat converted");
    case OpKind::kBatchNormDepthwiseConv:
      export_fail(n, "a training session's fused node; export the model's own graph");
    default:
      return emit_generic(cx, n);
  }
}

}  // namespace minnow::onnx
