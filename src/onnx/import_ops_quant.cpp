// Converters for ONNX's integer ops: ConvInteger, MatMulInteger, QLinearMatMul, and QLinearConv
// whenever minnow's kQLinearConv cannot take its inputs (u8 weights).
//
// minnow has no integer convolution or matrix product outside kQLinearConv, so each op is
// decomposed into existing ops, computing in f64: the operands are cast to f64 and centred on
// their zero points, then Conv2d / MatMul run in f64. Every product is an integer below 2^16 and
// every sum stays far below 2^53, so the f64 accumulation is exact and equals ONNX's int32 one.
// The QLinear ops then requantize as ONNX's reference does: the multiplier
// (a_scale * b_scale / y_scale) is formed in f32, the accumulator is multiplied by it in f64,
// y_zero_point is added, the result rounded half to even, saturated, and cast to the output type.
#include <algorithm>
#include <string>
#include <vector>

#include "onnx/import_ops.h"

namespace minnow::onnx {
namespace {

bool is_q8(DType t) { return t == DType::kU8 || t == DType::kI8; }

std::string dtype_str(DType t) { return std::string(dtype_name(t)); }

void require_q8(ImportContext& cx, const std::string& name, const char* role) {
  const DType t = cx.info(name).dtype;
  if (!is_q8(t)) {
    cx.unsupported(std::string(role) + " '" + name + "' of dtype " + dtype_str(t) +
                   " (expected u8 or i8)");
  }
}

void require_f32(ImportContext& cx, const std::string& name, const char* role) {
  const DType t = cx.info(name).dtype;
  if (t != DType::kF32) {
    cx.unsupported(std::string(role) + " '" + name + "' of dtype " + dtype_str(t) +
                   " (minnow reads f32 scales)");
  }
}

std::string cast_to(ImportContext& cx, const std::string& minnow_value, DType to,
                    const std::string& out = "") {
  Attrs a;
  a.set("to", dtype_str(to));
  return cx.emit1(OpKind::kCast, {minnow_value}, a, out);
}

std::string reshape(ImportContext& cx, const std::string& minnow_value, const Shape& s) {
  Attrs a;
  a.set("shape", std::vector<int64_t>(s.begin(), s.end()));
  return cx.emit1(OpKind::kReshape, {minnow_value}, a);
}

// A per-tensor (one element) or per-axis (1-D of `count` elements) parameter such as a zero
// point or scale, reshaped to [count, 1 x trailing] so that it broadcasts along the axis that
// has `trailing` dims after it. Parameters of other shapes are used as they are when `nd_ok`
// (QLinearMatMul's N-D per-row form [.., M, 1] already broadcasts).
std::string broadcastable(ImportContext& cx, const std::string& onnx_name, const char* role,
                          int64_t count, size_t trailing, bool nd_ok) {
  const ValueInfo p = cx.info(onnx_name);
  const std::string v = cx.value(onnx_name);
  const int64_t n = shape_numel(p.shape);
  if (n == 1) return p.shape.size() <= 1 ? v : reshape(cx, v, Shape{1});
  if (p.shape.size() == 1 && p.shape[0] == count) {
    Shape s{count};
    s.insert(s.end(), trailing, 1);
    return trailing == 0 ? v : reshape(cx, v, s);
  }
  if (nd_ok && p.shape.size() > 1) return v;
  cx.fail(std::string(role) + " '" + onnx_name + "' has shape " + shape_str(p.shape) +
          ", expected one element or [" + std::to_string(count) + "]");
}

// x (an ONNX u8/i8 value) as f64, minus its zero point (an ONNX input index, may be absent),
// the zero point reshaped by `broadcastable`.
std::string centred(ImportContext& cx, const std::string& x, int zp_input, const char* role,
                    int64_t count, size_t trailing, bool nd_ok) {
  const std::string xf = cast_to(cx, cx.value(x), DType::kF64);
  const std::string zp = cx.in(zp_input);
  if (zp.empty()) return xf;
  if (cx.info(zp).dtype != cx.info(x).dtype) {
    cx.fail(std::string(role) + " '" + zp + "' has dtype " + dtype_str(cx.info(zp).dtype) +
            ", expected " + dtype_str(cx.info(x).dtype) + " like '" + x + "'");
  }
  const std::string zpf =
      cast_to(cx, broadcastable(cx, zp, role, count, trailing, nd_ok), DType::kF64);
  return cx.emit1(OpKind::kSub, {xf, zpf});
}

// Conv2d attributes from an ONNX ConvInteger/QLinearConv node (2-D, auto_pad resolved).
Attrs conv_attrs(ImportContext& cx, const Shape& x, const Shape& w) {
  const std::vector<int64_t> strides = cx.attr_ints("strides", {1, 1});
  const std::vector<int64_t> dil = cx.attr_ints("dilations", {1, 1});
  if (strides.size() != 2) cx.fail("strides must have 2 values");
  if (dil.size() != 2) cx.fail("dilations must have 2 values");
  const std::vector<int64_t> kernel{w[2], w[3]};
  if (cx.attr("kernel_shape") && cx.attr_ints("kernel_shape", {}) != kernel) {
    cx.fail("kernel_shape differs from the weight's spatial shape " + shape_str(w));
  }
  const std::string mode = cx.attr_string("auto_pad", "NOTSET");
  std::vector<int64_t> pads(4, 0);
  if (mode == "NOTSET") {
    pads = cx.attr_ints("pads", {0, 0, 0, 0});
    if (pads.size() != 4) cx.fail("pads has " + std::to_string(pads.size()) + " values");
  } else if (mode == "SAME_UPPER" || mode == "SAME_LOWER") {
    for (size_t i = 0; i < 2; ++i) {
      const int64_t in = x[2 + i];
      if (in <= 0) cx.unsupported("auto_pad " + mode + " with an unknown spatial size");
      const int64_t out = (in + strides[i] - 1) / strides[i];
      const int64_t eff = (kernel[i] - 1) * dil[i] + 1;
      const int64_t total = std::max<int64_t>((out - 1) * strides[i] + eff - in, 0);
      const int64_t small = total / 2, big = total - small;
      pads[i] = mode == "SAME_UPPER" ? small : big;
      pads[i + 2] = mode == "SAME_UPPER" ? big : small;
    }
  } else if (mode != "VALID") {
    cx.fail("unknown auto_pad '" + mode + "'");
  }
  Attrs a;
  a.set("strides", strides);
  a.set("dilations", dil);
  a.set("pads", pads);  // ONNX's [x1_begin, x2_begin, x1_end, x2_end] is minnow's [t, l, b, r]
  a.set("group", cx.attr_int("group", 1));
  return a;
}

void require_2d_conv(ImportContext& cx, const ValueInfo& x, const ValueInfo& w) {
  if (x.shape.size() != 4 || w.shape.size() != 4) {
    cx.unsupported("only 2-D " + cx.node().op_type() +
                   " ([N,C,H,W] input, [M,C/group,kh,kw] weight) is supported, input is " +
                   shape_str(x.shape) + " and weight " + shape_str(w.shape));
  }
}

// The integer accumulator of a convolution (inputs x, w and their zero points at the given
// ONNX input indices; bias B an optional i32 [M] input index) as an f64 [N,M,OH,OW] value.
std::string conv_accumulator(ImportContext& cx, int x_in, int xzp_in, int w_in, int wzp_in,
                             int bias_in) {
  const ValueInfo x = cx.info(cx.in(x_in));
  const ValueInfo w = cx.info(cx.in(w_in));
  require_2d_conv(cx, x, w);
  require_q8(cx, cx.in(x_in), "input");
  require_q8(cx, cx.in(w_in), "weight");
  const int64_t m = w.shape[0];
  std::vector<std::string> ins{centred(cx, cx.in(x_in), xzp_in, "x_zero_point", 1, 0, false),
                               centred(cx, cx.in(w_in), wzp_in, "w_zero_point", m, 3, false)};
  if (bias_in >= 0 && !cx.in(bias_in).empty()) {
    const ValueInfo b = cx.info(cx.in(bias_in));
    if (b.dtype != DType::kI32 || b.shape != Shape{m}) {
      cx.fail("bias '" + cx.in(bias_in) + "' is " + dtype_str(b.dtype) + " " + shape_str(b.shape) +
              ", expected i32 [" + std::to_string(m) + "]");
    }
    ins.push_back(cast_to(cx, cx.value(cx.in(bias_in)), DType::kF64));
  }
  return cx.emit1(OpKind::kConv2d, ins, conv_attrs(cx, x.shape, w.shape));
}

// The integer accumulator of a matrix product A @ B (numpy matmul) as f64. a_zero_point is per
// tensor, per row ([M], or N-D [.., M, 1]); b_zero_point per tensor or per column ([N], [.., 1,
// N]).
std::string matmul_accumulator(ImportContext& cx, int a_in, int azp_in, int b_in, int bzp_in) {
  const ValueInfo a = cx.info(cx.in(a_in));
  const ValueInfo b = cx.info(cx.in(b_in));
  require_q8(cx, cx.in(a_in), "input A");
  require_q8(cx, cx.in(b_in), "input B");
  if (a.shape.empty() || b.shape.empty()) cx.fail("MatMul operands must have rank 1 or more");
  const int64_t rows = a.shape.size() >= 2 ? a.shape[a.shape.size() - 2] : 1;
  const int64_t cols = b.shape.back();
  const std::string af = centred(cx, cx.in(a_in), azp_in, "a_zero_point", rows, 1, true);
  const std::string bf = centred(cx, cx.in(b_in), bzp_in, "b_zero_point", cols, 0, true);
  return cx.emit1(OpKind::kMatMul, {af, bf});
}

// The f64 multiplier s1 * s2 / s3, formed in f32 as ONNX's reference does (its scales are f32
// arrays), each scale already reshaped by the caller to broadcast against the accumulator.
std::string multiplier(ImportContext& cx, const std::string& s1, const std::string& s2,
                       const std::string& s3) {
  const std::string prod = cx.emit1(OpKind::kMul, {s1, s2});
  const std::string q = cx.emit1(OpKind::kDiv, {prod, s3});
  return cast_to(cx, q, DType::kF64);
}

// y = saturate(round_half_even(acc * mult + y_zero_point)) of dtype `out_dtype`, written to the
// node's output.
void requantize(ImportContext& cx, const std::string& acc, const std::string& mult, int yzp_in,
                DType out_dtype) {
  std::string y = cx.emit1(OpKind::kMul, {acc, mult});
  if (!cx.in(yzp_in).empty()) {
    const std::string zp = cx.in(yzp_in);
    const ValueInfo z = cx.info(zp);
    if (shape_numel(z.shape) != 1) {
      cx.unsupported("a y_zero_point with more than one element (" + shape_str(z.shape) + ")");
    }
    const std::string zpv = z.shape.size() <= 1 ? cx.value(zp) : reshape(cx, cx.value(zp), {1});
    y = cx.emit1(OpKind::kAdd, {y, cast_to(cx, zpv, DType::kF64)});
  }
  y = cx.emit1(OpKind::kRound, {y});
  Attrs c;
  c.set("min", out_dtype == DType::kU8 ? 0.0 : -128.0);
  c.set("max", out_dtype == DType::kU8 ? 255.0 : 127.0);
  y = cx.emit1(OpKind::kClip, {y}, c);
  cast_to(cx, y, out_dtype, cx.out(0));
}

// A one-element scale as a value broadcasting against anything.
std::string scalar_scale(ImportContext& cx, int input, const char* role) {
  const std::string s = cx.in(input);
  if (s.empty()) cx.fail(std::string(role) + " is required");
  require_f32(cx, s, role);
  return broadcastable(cx, s, role, 1, 0, false);
}

// The output dtype: y_zero_point's, else (it is optional in the reference) the first input's.
DType output_dtype(ImportContext& cx, int yzp_in, int x_in) {
  const std::string z = cx.in(yzp_in);
  const DType t = cx.info(z.empty() ? cx.in(x_in) : z).dtype;
  if (!is_q8(t)) cx.unsupported("output of dtype " + dtype_str(t) + " (expected u8 or i8)");
  return t;
}

// ConvInteger(x, w, x_zero_point?, w_zero_point?) -> i32.
void convert_conv_integer(ImportContext& cx) {
  cx.allow_attrs({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  const std::string acc = conv_accumulator(cx, 0, 2, 1, 3, -1);
  cast_to(cx, acc, DType::kI32, cx.out(0));
}

// MatMulInteger(A, B, a_zero_point?, b_zero_point?) -> i32.
void convert_matmul_integer(ImportContext& cx) {
  cx.allow_attrs({});
  const std::string acc = matmul_accumulator(cx, 0, 2, 1, 3);
  cast_to(cx, acc, DType::kI32, cx.out(0));
}

// QLinearMatMul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point).
void convert_qlinear_matmul(ImportContext& cx) {
  cx.allow_attrs({});
  const DType out = output_dtype(cx, 7, 0);
  const std::string acc = matmul_accumulator(cx, 0, 2, 3, 5);
  const ValueInfo a = cx.info(cx.in(0));
  const int64_t rows = a.shape.size() >= 2 ? a.shape[a.shape.size() - 2] : 1;
  const int64_t cols = cx.info(cx.in(3)).shape.back();
  require_f32(cx, cx.in(1), "a_scale");
  require_f32(cx, cx.in(4), "b_scale");
  const std::string sa = broadcastable(cx, cx.in(1), "a_scale", rows, 1, true);
  const std::string sb = broadcastable(cx, cx.in(4), "b_scale", cols, 0, true);
  requantize(cx, acc, multiplier(cx, sa, sb, scalar_scale(cx, 6, "y_scale")), 7, out);
}

// QLinearConv with weights kQLinearConv cannot take (u8): the same decomposition with Conv2d,
// its int32 bias added to the accumulator. i8 weights keep the converter registered before.
Converter g_qlinear_conv_i8 = nullptr;

void convert_qlinear_conv(ImportContext& cx) {
  if (cx.info(cx.in(3)).dtype == DType::kI8 && g_qlinear_conv_i8) return g_qlinear_conv_i8(cx);
  cx.allow_attrs({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  const DType out = output_dtype(cx, 7, 0);
  const std::string acc = conv_accumulator(cx, 0, 2, 3, 5, 8);
  const int64_t m = cx.info(cx.in(3)).shape[0];
  require_f32(cx, cx.in(4), "w_scale");
  const std::string sw = broadcastable(cx, cx.in(4), "w_scale", m, 2, false);
  requantize(cx, acc,
             multiplier(cx, scalar_scale(cx, 1, "x_scale"), sw, scalar_scale(cx, 6, "y_scale")), 7,
             out);
}

}  // namespace

void add_quant_converters(ConverterTable& t) {
  if (auto it = t.find("QLinearConv"); it != t.end() && it->second != convert_qlinear_conv) {
    g_qlinear_conv_i8 = it->second;
  }
  t["ConvInteger"] = convert_conv_integer;
  t["MatMulInteger"] = convert_matmul_integer;
  t["QLinearMatMul"] = convert_qlinear_matmul;
  t["QLinearConv"] = convert_qlinear_conv;
}

}  // namespace minnow::onnx
