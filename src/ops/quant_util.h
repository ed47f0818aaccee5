// Helpers shared by the quantized ops (QuantizeLinear, DequantizeLinear, QLinearConv,
// QLinearLinear, QLinearAdd, QLinearGlobalAvgPool): integer ranges, round-half-to-even
// requantization with saturation, and the checks of scale / zero-point inputs at infer time
// (dtype and shape) and at run time (values: a scale must be finite and > 0).
//
// The quantization formula everywhere is ONNX's: q = saturate(round_half_even(real / scale) + zp),
// real = (q - zp) * scale, computed in f32 unless an op says otherwise.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "core/kernel.h"
#include "ops/op_util.h"

namespace minnow::ops::quant {

// Representable range of a quantized storage dtype.
struct QRange {
  int32_t lo;
  int32_t hi;
};

inline bool is_q8(DType t) { return t == DType::kU8 || t == DType::kI8; }

inline QRange qrange(DType t) {
  switch (t) {
    case DType::kU8:
      return {0, 255};
    case DType::kI8:
      return {-128, 127};
    case DType::kI32:
      return {INT32_MIN, INT32_MAX};
    default:
      throw Error("dtype " + std::string(dtype_name(t)) + " is not a quantized type");
  }
}

// Round to nearest, ties to even (the IEEE default rounding mode, which minnow never changes).
inline float round_half_even(float v) { return std::nearbyint(v); }
inline double round_half_even(double v) { return std::nearbyint(v); }

// The scalar oracle: saturate(round_half_even(v) + zp) into r, for v = real / scale already
// divided. NaN quantizes to the zero point (real 0): ONNX leaves it undefined and a C++
// NaN -> int conversion would be undefined behaviour.
inline int32_t quantize_scaled(double v, int32_t zp, QRange r) {
  if (std::isnan(v)) return zp;
  const double q = round_half_even(v) + static_cast<double>(zp);
  if (q <= static_cast<double>(r.lo)) return r.lo;
  if (q >= static_cast<double>(r.hi)) return r.hi;
  return static_cast<int32_t>(q);
}

// Branch-free form for vectorized loops, equal to quantize_scaled for q8 ranges: v is clamped to
// [lo - zp, hi - zp] first (rounding commutes with clamping to integers), which also makes the
// add-and-subtract of 1.5 * 2^23 round exactly half-to-even without a rounding instruction that
// baseline x86-64 lacks. Returns the rounded value plus zp as a float holding an exact integer.
// Callers pass lo_f = lo - zp, hi_f = hi - zp, zp_f = zp as floats.
inline float quantize_scaled_fast(float v, float lo_f, float hi_f, float zp_f) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  v = v == v ? v : 0.0f;                 // NaN -> real 0
  v = v < lo_f ? lo_f : v;
  v = v > hi_f ? hi_f : v;
  return ((v + kMagic) - kMagic) + zp_f;
}

// Infer-time facts about a scale (and optional zero point) input pair.
struct QParamInfo {
  int64_t count = 1;            // 1: per tensor; C: per channel
  bool per_channel = false;     // scale is 1-D [C] with C > 1 or flagged per-channel
  bool has_zero_point = false;  // zero-point input present
  DType zp_dtype = DType::kU8;  // the zero point's dtype (kU8 when absent)
};

// Checks a node's scale input `si` (f32, shape [] or [1] for per tensor, or [C] if
// allow_per_channel) and optional zero-point input `zi` (same shape as the scale; dtype one of
// u8/i8, or i32 if allow_i32). `what` names the pair in messages ("y_scale", "w_scale", ...).
inline QParamInfo check_qparams(const Node& n, const InputInfos& in, size_t si, size_t zi,
                                bool allow_per_channel, bool allow_i32, const std::string& what) {
  const ValueInfo& s = input(n, in, si);
  if (s.dtype != DType::kF32) {
    fail(n, what + " '" + s.name + "' has dtype " + std::string(dtype_name(s.dtype)) +
                ", expected f32");
  }
  QParamInfo q;
  if (s.shape.size() > 1 || (s.shape.size() == 1 && s.shape[0] < 1)) {
    fail(n, what + " '" + s.name + "' has shape " + shape_str(s.shape) +
                ", expected a scalar ([] or [1])" + (allow_per_channel ? " or 1-D [C]" : ""));
  }
  if (s.shape.size() == 1 && s.shape[0] != 1) {
    if (!allow_per_channel) {
      fail(n, what + " '" + s.name + "' has shape " + shape_str(s.shape) +
                  ", expected a scalar ([] or [1]): this op is quantized per tensor");
    }
    q.count = s.shape[0];
    q.per_channel = true;
  }
  if (zi < in.size() && in[zi]) {
    const ValueInfo& z = *in[zi];
    const bool ok_dtype = is_q8(z.dtype) || (allow_i32 && z.dtype == DType::kI32);
    if (!ok_dtype) {
      fail(n, "zero point '" + z.name + "' of " + what + " has dtype " +
                  std::string(dtype_name(z.dtype)) + ", expected u8 or i8" +
                  (allow_i32 ? " or i32" : ""));
    }
    if (shape_numel(z.shape) != q.count || z.shape.size() > 1) {
      fail(n, "zero point '" + z.name + "' has shape " + shape_str(z.shape) + ", expected " + what +
                  "'s shape " + shape_str(s.shape));
    }
    q.has_zero_point = true;
    q.zp_dtype = z.dtype;
  }
  return q;
}

// Run-time view of a scale / zero-point pair. Pointers into the node's input tensors; nothing is
// copied or allocated.
struct QParams {
  const float* scale = nullptr;
  const void* zero_point = nullptr;  // nullptr: all zero
  DType zp_dtype = DType::kU8;
  int64_t count = 0;

  float scale_at(int64_t i) const { return scale[count == 1 ? 0 : i]; }
  int32_t zero_point_at(int64_t i) const {
    if (!zero_point) return 0;
    const int64_t k = count == 1 ? 0 : i;
    switch (zp_dtype) {
      case DType::kU8:
        return static_cast<const uint8_t*>(zero_point)[k];
      case DType::kI8:
        return static_cast<const int8_t*>(zero_point)[k];
      default:
        return static_cast<const int32_t*>(zero_point)[k];
    }
  }
};

// Reads input si (scale) and zi (optional zero point) of a running node and checks the values:
// every scale finite and > 0, and `expected_count` of them (per tensor counts 1). Errors name the
// node. Call from forward(): initializers may be replaced between runs.
inline QParams read_qparams(const Node& n, Tensors in, size_t si, size_t zi, int64_t expected_count,
                            const std::string& what) {
  if (si >= in.size() || !in[si]) fail(n, "missing " + what);
  const Tensor& s = *in[si];
  if (s.dtype() != DType::kF32) fail(n, what + " must be f32");
  QParams q;
  q.scale = s.data<float>();
  q.count = s.numel();
  if (q.count != 1 && q.count != expected_count) {
    fail(n, what + " has " + std::to_string(q.count) + " values, expected 1 or " +
                std::to_string(expected_count));
  }
  for (int64_t i = 0; i < q.count; ++i) {
    const float v = q.scale[i];
    if (!(v > 0.0f) || !std::isfinite(v)) {
      fail(n, what + " value " + std::to_string(v) + " at index " + std::to_string(i) +
                  " is not a finite positive number");
    }
  }
  if (zi < in.size() && in[zi]) {
    const Tensor& z = *in[zi];
    if (z.numel() != q.count) {
      fail(n, "zero point of " + what + " has " + std::to_string(z.numel()) + " values, expected " +
                  std::to_string(q.count));
    }
    if (!is_q8(z.dtype()) && z.dtype() != DType::kI32) {
      fail(n, "zero point of " + what + " must be u8, i8 or i32");
    }
    q.zero_point = z.raw();
    q.zp_dtype = z.dtype();
  }
  return q;
}

}  // namespace minnow::ops::quant
