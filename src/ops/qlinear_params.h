// Inputs shared by QLinearConv and QLinearLinear (ONNX QLinearConv's order):
//   0 x (u8|i8), 1 x_scale, 2 x_zero_point, 3 w (i8), 4 w_scale, 5 w_zero_point,
//   6 y_scale, 7 y_zero_point, 8 B (i32)
// and, for QLinearConv only (a residual QLinearAdd fused by passes/fuse_qlinear_residual.h; not
// ONNX): 9 sum (u8|i8, y's shape), 10 sum_scale, 11 sum_zero_point, 12 out_scale,
// 13 out_zero_point. The op's output is then the Add's: dtype of out_zero_point (u8 when
// absent), and the `activation` attribute applies to the sum.
// Their validation at inference time and the reading of the scale/zero-point values at run time.
#pragma once

#include <string>

#include "kernels/qlinear_reference.h"
#include "ops/fused_activation.h"
#include "ops/op_util.h"

namespace minnow::ops::qlinear {

enum Input {
  kX = 0,
  kXScale,
  kXZp,
  kW,
  kWScale,
  kWZp,
  kYScale,
  kYZp,
  kBias,
  kNumInputs,
  kSum = kNumInputs,
  kSumScale,
  kSumZp,
  kOutScale,
  kOutZp
};

// What Kernel::set_constant_inputs tells a quantized kernel: whether its weights are constant,
// and whether all its scale, zero-point and bias inputs are.
struct ConstantInputs {
  bool weights = false, params = false;
};

inline const ValueInfo* optional(const InputInfos& in, int i) {
  return static_cast<size_t>(i) < in.size() ? in[i] : nullptr;
}
inline const Tensor* optional(Tensors in, int i) {
  return static_cast<size_t>(i) < in.size() ? in[i] : nullptr;
}

inline bool is_scalar(const Shape& s) { return s.empty() || s == Shape{1}; }

inline std::string dtype_str(DType t) { return std::string(dtype_name(t)); }

// Checks every input but the shapes of x and w (the op checks those) and returns the output
// dtype: y_zero_point's dtype, u8 when only y_scale is given, f32 when both are absent.
inline DType validate(const Node& n, const InputInfos& in, int64_t channels) {
  const ValueInfo& x = input(n, in, kX);
  const ValueInfo& w = input(n, in, kW);
  if (x.dtype != DType::kU8 && x.dtype != DType::kI8) {
    fail(n, "input '" + x.name + "' has dtype " + dtype_str(x.dtype) + ", expected u8 or i8");
  }
  if (w.dtype != DType::kI8) {
    fail(n, "weight '" + w.name + "' has dtype " + dtype_str(w.dtype) +
                ", expected i8 (weights are quantized symmetric int8)");
  }
  auto scale = [&](int i, const char* what, bool per_channel_ok) {
    const ValueInfo& s = input(n, in, i);
    if (s.dtype != DType::kF32) {
      fail(n, std::string(what) + " '" + s.name + "' has dtype " + dtype_str(s.dtype) +
                  ", expected f32");
    }
    if (!is_scalar(s.shape) && !(per_channel_ok && s.shape == Shape{channels})) {
      fail(n, std::string(what) + " '" + s.name + "' has shape " + shape_str(s.shape) +
                  (per_channel_ok ? ", expected a scalar or [" + std::to_string(channels) + "]"
                                  : std::string(", expected a scalar")));
    }
    return s;
  };
  auto zero_point = [&](int i, const char* what, const ValueInfo& scale_v, DType want) {
    const ValueInfo* z = optional(in, i);
    if (!z) return;
    if (z->dtype != want) {
      fail(n, std::string(what) + " '" + z->name + "' has dtype " + dtype_str(z->dtype) +
                  ", expected " + dtype_str(want));
    }
    if (shape_numel(z->shape) != shape_numel(scale_v.shape)) {
      fail(n, std::string(what) + " '" + z->name + "' has shape " + shape_str(z->shape) +
                  " but its scale has " + shape_str(scale_v.shape));
    }
  };
  const ValueInfo xs = scale(kXScale, "x_scale", false);
  zero_point(kXZp, "x_zero_point", xs, x.dtype);
  const ValueInfo ws = scale(kWScale, "w_scale", true);
  zero_point(kWZp, "w_zero_point", ws, DType::kI8);
  DType out = DType::kF32;
  const ValueInfo* ys = optional(in, kYScale);
  const ValueInfo* yz = optional(in, kYZp);
  if (yz && !ys) fail(n, "y_zero_point '" + yz->name + "' is given without y_scale");
  if (ys) {
    const ValueInfo ysv = scale(kYScale, "y_scale", false);
    out = DType::kU8;
    if (yz) {
      if (yz->dtype != DType::kU8 && yz->dtype != DType::kI8) {
        fail(n, "y_zero_point '" + yz->name + "' has dtype " + dtype_str(yz->dtype) +
                    ", expected u8 or i8");
      }
      zero_point(kYZp, "y_zero_point", ysv, yz->dtype);
      out = yz->dtype;
    }
  }
  if (const ValueInfo* b = optional(in, kBias)) {
    if (b->dtype != DType::kI32) {
      fail(n, "bias '" + b->name + "' has dtype " + dtype_str(b->dtype) + ", expected i32");
    }
    if (b->shape != Shape{channels}) {
      fail(n, "bias '" + b->name + "' has shape " + shape_str(b->shape) + ", expected [" +
                  std::to_string(channels) + "]");
    }
  }
  if (const ValueInfo* sum = optional(in, kSum)) {
    if (sum->dtype != DType::kU8 && sum->dtype != DType::kI8) {
      fail(n, "sum '" + sum->name + "' has dtype " + dtype_str(sum->dtype) + ", expected u8 or i8");
    }
    if (out == DType::kF32) fail(n, "sum '" + sum->name + "' needs a quantized output (y_scale)");
    const ValueInfo ss = scale(kSumScale, "sum_scale", false);
    zero_point(kSumZp, "sum_zero_point", ss, sum->dtype);
    const ValueInfo os = scale(kOutScale, "out_scale", false);
    out = DType::kU8;
    if (const ValueInfo* oz = optional(in, kOutZp)) {
      if (oz->dtype != DType::kU8 && oz->dtype != DType::kI8) {
        fail(n, "out_zero_point '" + oz->name + "' has dtype " + dtype_str(oz->dtype) +
                    ", expected u8 or i8");
      }
      zero_point(kOutZp, "out_zero_point", os, oz->dtype);
      out = oz->dtype;
    }
  }
  FusedActivation::of(n);  // validates the attribute
  return out;
}

inline int32_t zp_value(const Tensor* t) {
  if (!t) return 0;
  return t->dtype() == DType::kU8 ? int32_t{*static_cast<const uint8_t*>(t->raw())}
                                  : int32_t{*static_cast<const int8_t*>(t->raw())};
}

// Reads the run-time values. Scales must be finite and positive (a zero or NaN scale would
// make every output meaningless): checked here, per call, because they are tensors.
// check_w_scale = false skips validating every channel's weight scale (a kernel whose
// parameters are constant validates them on its first call only).
inline kernels::QLinearParams read_params(const Node& n, Tensors in, DType out,
                                          const FusedActivation& act, bool check_w_scale = true) {
  kernels::QLinearParams p;
  auto positive = [&](float s, const char* what) {
    if (!(s > 0.0f) || !std::isfinite(s)) {
      fail(n, std::string(what) + " must be finite and positive, got " + std::to_string(s));
    }
    return s;
  };
  p.x_scale = positive(*static_cast<const float*>(in[kXScale]->raw()), "x_scale");
  p.x_zp = zp_value(optional(in, kXZp));
  const Tensor& ws = *in[kWScale];
  p.w_scale = static_cast<const float*>(ws.raw());
  p.w_count = ws.numel();
  for (int64_t i = 0; check_w_scale && i < p.w_count; ++i) positive(p.w_scale[i], "w_scale");
  if (const Tensor* z = optional(in, kWZp)) p.w_zp = static_cast<const int8_t*>(z->raw());
  if (const Tensor* b = optional(in, kBias)) p.bias = static_cast<const int32_t*>(b->raw());
  const Tensor* sum = optional(in, kSum);
  p.out = out;
  if (sum) {  // `out` is the Add's dtype; the convolution's own is y_zero_point's (u8 if absent)
    const Tensor* yz = optional(in, kYZp);
    p.out = yz ? yz->dtype() : DType::kU8;
  }
  if (p.out != DType::kF32) {
    p.y_scale = positive(*static_cast<const float*>(in[kYScale]->raw()), "y_scale");
    p.y_zp = zp_value(optional(in, kYZp));
  }
  if (act.on) {
    (sum ? p.sum_act_lo : p.act_lo) = act.lo;
    (sum ? p.sum_act_hi : p.act_hi) = act.hi;
  }
  if (sum) {
    p.sum = sum->raw();
    p.sum_dtype = sum->dtype();
    p.sum_scale = positive(*static_cast<const float*>(in[kSumScale]->raw()), "sum_scale");
    p.sum_zp = zp_value(optional(in, kSumZp));
    p.sum_out_scale = positive(*static_cast<const float*>(in[kOutScale]->raw()), "out_scale");
    const Tensor* oz = optional(in, kOutZp);
    p.sum_out = oz ? oz->dtype() : DType::kU8;
    p.sum_out_zp = zp_value(oz);
  }
  return p;
}

// read_params for one kernel: once its scales, zero points and bias are known to be constant
// (graph initializers, set_constant_inputs), the per-channel weight-scale check runs on the
// first call only.
class ParamReader {
 public:
  // `in`: the kernel's inputs; the present ones but x, w and the residual are its parameters.
  explicit ParamReader(const InputInfos& in) {
    for (size_t i = 0; i < in.size(); ++i) {
      if (in[i] && i != kX && i != kW && i != kSum) params_.push_back(i);
    }
  }
  // From Kernel::set_constant_inputs.
  ConstantInputs set_constant(const std::vector<bool>& constant) {
    ConstantInputs c;
    c.weights = constant.size() > kW && constant[kW];
    c.params = true;
    for (size_t i : params_) c.params = c.params && i < constant.size() && constant[i];
    constant_ = c.params;
    return c;
  }
  kernels::QLinearParams read(const Node& n, Tensors in, DType out, const FusedActivation& act) {
    const kernels::QLinearParams p = read_params(n, in, out, act, !checked_);
    checked_ = constant_;
    return p;
  }

 private:
  std::vector<size_t> params_;
  bool constant_ = false, checked_ = false;
};

}  // namespace minnow::ops::qlinear
