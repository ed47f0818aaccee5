// The QOperator form of minnow's integer convolutions and matrix products (ExportOptions::
// qoperator): a QLinearConv / QLinearLinear that passes/lower_qdq.h made from a QDQ pattern
// becomes ONNX's QLinearConv or QLinearMatMul, which take the same integers, scales and zero
// points and requantize the int32 sums the same way.
//
// What the ONNX ops lack is written around them so that the result stays exact:
//  - a fused ReLU / ReLU6 (minnow clamps the requantized output at the quantized 0 / 6) is a
//    DequantizeLinear -> Relu / Clip -> QuantizeLinear with the output's parameters, which
//    clamps the same integers to the same bounds;
//  - QLinearMatMul has no bias, so a Linear with one runs as a 1x1 QLinearConv on its [N, K]
//    input reshaped to [N, K, 1, 1] (the bias is then added to the int32 sums before
//    requantization, as minnow adds it).
#include <cstring>
#include <vector>

#include "minnow/error.h"
#include "onnx/export_context.h"

namespace minnow::onnx {
namespace {

using ::onnx::NodeProto;

// minnow's QLinearConv / QLinearLinear inputs (ops/qlinear_params.h).
enum Input : size_t { kX, kXScale, kXZero, kW, kWScale, kWZero, kYScale, kYZero, kBias };

const std::string& input_or_empty(const Node& n, size_t i) {
  static const std::string none;
  return i < n.inputs.size() ? n.inputs[i] : none;
}

// The weights' zero point: ONNX's QLinear ops require the input, minnow's lowering leaves it out
// (symmetric weights). Zeros of the weights' dtype, one per scale.
std::string weight_zero_point(ExportContext& cx, const Node& n) {
  if (!input_or_empty(n, kWZero).empty()) return n.inputs[kWZero];
  Tensor zero(cx.info(n.inputs[kW]).dtype, cx.info(n.inputs[kWScale]).shape);
  return cx.add_constant(zero, n.inputs[kW] + "_zero_point");
}

// Linear with a bias: Reshape [N, K] -> [N, K, 1, 1], QLinearConv with [O, K, 1, 1] weights,
// Reshape back to [N, O].
void emit_linear_as_conv(ExportContext& cx, const Node& n, const std::string& w_zero,
                         const std::string& out) {
  const Tensor* w = cx.initializer(n.inputs[kW]);
  if (!w) export_fail(n, "QOperator export needs constant weights");
  const int64_t o = w->dim(0), k = w->dim(1);
  Tensor w4(w->dtype(), {o, k, 1, 1});
  std::memcpy(w4.raw(), w->raw(), w->nbytes());
  const std::string x4 = cx.fresh(n.inputs[kX] + "_nchw");
  cx.add_node("Reshape", {n.inputs[kX], cx.const_i64({0, k, 1, 1}, n.name + "/shape_in")}, {x4},
              n.name + "/to_conv");
  const std::string y4 = cx.fresh(out + "_nchw");
  NodeProto* p = cx.add_node(
      "QLinearConv",
      {x4, n.inputs[kXScale], n.inputs[kXZero], cx.add_constant(w4, n.inputs[kW] + "_1x1"),
       n.inputs[kWScale], w_zero, n.inputs[kYScale], n.inputs[kYZero], n.inputs[kBias]},
      {y4}, n.name);
  set_attr(p, "kernel_shape", std::vector<int64_t>{1, 1});
  cx.add_node("Reshape", {y4, cx.const_i64({0, o}, n.name + "/shape_out")}, {out},
              n.name + "/from_conv");
}

}  // namespace

void emit_qoperator(ExportContext& cx, const Node& n) {
  if (input_or_empty(n, kYScale).empty()) {
    export_fail(n, "an integer op with a float output has no ONNX QLinear form");
  }
  if (n.inputs.size() > kBias + 1) {
    export_fail(n, "a fused residual sum has no ONNX QLinearConv form");
  }
  const std::string act = n.attrs.get_string("activation", "");
  const std::string& out = n.outputs[0];
  const std::string raw = act.empty() ? out : cx.fresh(out + "_unclamped");
  const std::string w_zero = weight_zero_point(cx, n);
  const bool has_bias = !input_or_empty(n, kBias).empty();
  if (n.op == OpKind::kQLinearConv) {
    std::vector<std::string> ins(n.inputs.begin(), n.inputs.begin() + kBias);
    ins[kWZero] = w_zero;
    if (has_bias) ins.push_back(n.inputs[kBias]);
    set_conv_attrs(cx.add_node("QLinearConv", ins, {raw}, n.name), n, cx.info(n.inputs[kW]).shape);
  } else {
    if (cx.info(n.inputs[kX]).shape.size() != 2) {
      export_fail(n, "QOperator export of Linear needs a rank-2 input");
    }
    if (has_bias) {
      emit_linear_as_conv(cx, n, w_zero, raw);
    } else {
      cx.add_node("QLinearMatMul",
                  {n.inputs[kX], n.inputs[kXScale], n.inputs[kXZero],
                   transposed_weight(cx, n, n.inputs[kW]), n.inputs[kWScale], w_zero,
                   n.inputs[kYScale], n.inputs[kYZero]},
                  {raw}, n.name);
    }
  }
  if (act.empty()) return;
  // The fused activation on the quantized output: clamping in the real domain between a
  // dequantize and a quantize with the same parameters clamps the integers at exactly the
  // bounds minnow's kernels use (the quantized 0 and 6).
  const std::string real = cx.fresh(out + "_real"), clamped = cx.fresh(out + "_clamped");
  cx.add_node("DequantizeLinear", {raw, n.inputs[kYScale], n.inputs[kYZero]}, {real},
              n.name + "/dequantize");
  if (act == "relu") {
    cx.add_node("Relu", {real}, {clamped}, n.name + "/relu");
  } else if (act == "relu6") {
    cx.add_node("Clip",
                {real, cx.const_scalar(DType::kF32, 0.0, n.name + "/clip_min"),
                 cx.const_scalar(DType::kF32, 6.0, n.name + "/clip_max")},
                {clamped}, n.name + "/relu6");
  } else {
    export_fail(n, "activation '" + act + "' has no QOperator form");
  }
  cx.add_node("QuantizeLinear", {clamped, n.inputs[kYScale], n.inputs[kYZero]}, {out},
              n.name + "/quantize");
}

}  // namespace minnow::onnx
