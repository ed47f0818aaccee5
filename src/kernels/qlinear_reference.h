// Integer arithmetic shared by QLinearConv and QLinearLinear (docs: /work/briefs/quant_spec.md):
// the run-time quantization parameters, the requantization of int32 accumulators, and the
// reference (oracle) convolution and dense products.
//
// acc[o]  = sum (x - x_zp) * (w - w_zp[o]) + B[o]            exact integers (int64 here)
// real    = acc * (x_scale * w_scale[o])                       f32 output: clamp(real, lo, hi)
// q       = saturate(round_half_even(clamp(acc * M[o], lo/y_scale, hi/y_scale)) + y_zp)
//           with M[o] = x_scale * w_scale[o] / y_scale (float)
// The float steps are the ones oneDNN performs (accumulator to f32, one multiply by the output
// scale, the eltwise clamp, the zero point, round to nearest even), so the fast kernels agree
// with this exactly except where oneDNN's f32 conversion of a huge accumulator differs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/conv_geometry.h"
#include "kernels/conv_reference.h"
#include "minnow/dtype.h"

namespace minnow::kernels {

// Values of the scale/zero-point inputs, read at run time (they are tensors, usually
// initializers). Pointers refer to the input tensors and are valid for one forward call.
struct QLinearParams {
  float x_scale = 1.0f;
  int32_t x_zp = 0;
  const float* w_scale = nullptr;  // 1 or `channels` values
  const int8_t* w_zp = nullptr;    // same count as w_scale; nullptr: all zero
  int64_t w_count = 1;             // number of w_scale values (1: per tensor)
  const int32_t* bias = nullptr;   // [channels] or nullptr
  DType out = DType::kU8;          // kF32: dequantized output, no y_scale / y_zp
  float y_scale = 1.0f;
  int32_t y_zp = 0;
  float act_lo = -INFINITY, act_hi = INFINITY;  // the fused activation, in real units
  // A fused residual Add (passes/fuse_qlinear_residual.h): the convolution's quantized output
  // q (out, y_scale, y_zp above, no activation of its own) then goes through QLinearAdd with
  // `sum` [y's shape]: real = (q - y_zp) y_scale + (sum - sum_zp) sum_scale, clamped to the
  // sum_act bounds, quantized to sum_out with sum_out_scale / sum_out_zp. nullptr: none.
  const void* sum = nullptr;
  DType sum_dtype = DType::kU8;
  float sum_scale = 1.0f;
  int32_t sum_zp = 0;
  DType sum_out = DType::kU8;
  float sum_out_scale = 1.0f;
  int32_t sum_out_zp = 0;
  float sum_act_lo = -INFINITY, sum_act_hi = INFINITY;

  float w_scale_of(int64_t o) const { return w_scale[w_count == 1 ? 0 : o]; }
  int32_t w_zp_of(int64_t o) const { return w_zp ? w_zp[w_count == 1 ? 0 : o] : 0; }
  bool w_zp_all_zero() const {
    for (int64_t i = 0; w_zp && i < w_count; ++i) {
      if (w_zp[i] != 0) return false;
    }
    return true;
  }
  // The factor that takes channel o's accumulator to the output's units.
  float multiplier(int64_t o) const {
    const float real = x_scale * w_scale_of(o);
    return out == DType::kF32 ? real : real / y_scale;
  }
  float sum_at(int64_t i) const {
    return sum_dtype == DType::kU8 ? static_cast<const uint8_t*>(sum)[i]
                                   : static_cast<const int8_t*>(sum)[i];
  }
  // The activation bounds in the output's units.
  float lo() const { return out == DType::kF32 ? act_lo : act_lo / y_scale; }
  float hi() const { return out == DType::kF32 ? act_hi : act_hi / y_scale; }
};

inline int32_t saturate_to(DType t, float v) {
  const float lo = t == DType::kU8 ? 0.0f : -128.0f;
  const float hi = t == DType::kU8 ? 255.0f : 127.0f;
  return static_cast<int32_t>(std::min(std::max(v, lo), hi));
}

// Stores the integer `q` of dtype t at element i of y.
inline void store_q8(DType t, int32_t q, void* y, int64_t i) {
  if (t == DType::kU8) {
    static_cast<uint8_t*>(y)[i] = static_cast<uint8_t>(q);
  } else {
    static_cast<int8_t*>(y)[i] = static_cast<int8_t>(q);
  }
}

// QLinearAdd's f32 steps for one element (its reference kernel, ops/qlinear_add.cpp): real =
// (a - a_zp) a_scale + (b - b_zp) b_scale, clamped to the activation's [lo, hi] (infinite
// without), then saturate(round_half_even(real / y_scale) + y_zp) in dtype `out`.
inline int32_t qlinear_add_one(int32_t a, int32_t a_zp, float a_scale, int32_t b, int32_t b_zp,
                               float b_scale, float lo, float hi, float y_scale, int32_t y_zp,
                               DType out) {
  float real = static_cast<float>(a - a_zp) * a_scale + static_cast<float>(b - b_zp) * b_scale;
  real = std::min(std::max(real, lo), hi);
  return saturate_to(out, std::nearbyint(real / y_scale) + static_cast<float>(y_zp));
}

// The vector kernels' form of qlinear_add_one's two clamps: the bounds of real / y_scale that
// give the same codes as clamping real to the activation's [act_lo, act_hi], dividing, and then
// clamping to [lo, hi] (the output's range minus its zero point). Dividing by y_scale > 0 rounds
// monotonically, so the activation's clamp moves behind the division as [act_lo / y_scale,
// act_hi / y_scale]; the two clamps then merge into one, also where they do not overlap. Valid
// when real is never NaN (finite scales).
inline std::pair<float, float> add_quotient_bounds(float act_lo, float act_hi, float y_scale,
                                                   float lo, float hi) {
  const float l = std::min(std::max(act_lo / y_scale, lo), hi);
  const float h = std::max(std::min(act_hi / y_scale, hi), lo);
  return {l, std::max(l, h)};
}

// The fused residual Add of the convolution's quantized output q at element i: QLinearAdd's
// steps, so the fused op equals the two ops it replaces bit for bit.
inline void add_residual_one(const QLinearParams& p, int32_t q, void* y, int64_t i) {
  const auto s = static_cast<int32_t>(p.sum_at(i));
  store_q8(p.sum_out,
           qlinear_add_one(q, p.y_zp, p.y_scale, s, p.sum_zp, p.sum_scale, p.sum_act_lo,
                           p.sum_act_hi, p.sum_out_scale, p.sum_out_zp, p.sum_out),
           y, i);
}

// Writes element i of the output (u8, i8 or f32 storage `y`) from accumulator `acc`
// (bias included) of channel o. `m`, `lo`, `hi` come from QLinearParams for that channel.
inline void requantize_one(const QLinearParams& p, int64_t acc, float m, float lo, float hi,
                           void* y, int64_t i) {
  float v = static_cast<float>(acc) * m;
  v = std::min(std::max(v, lo), hi);
  if (p.out == DType::kF32) {
    static_cast<float*>(y)[i] = v;
    return;
  }
  const float q = std::nearbyint(v) + static_cast<float>(p.y_zp);  // ties to even
  const int32_t s = saturate_to(p.out, q);
  if (p.sum) return add_residual_one(p, s, y, i);
  store_q8(p.out, s, y, i);
}

// Reference int8 convolution. X is uint8_t or int8_t; w [o,cg,kh,kw] int8. x [n,c,h,w] and
// y [n,o,oh,ow], or with `channels_last` x [n,h,w,c] and y [n,oh,ow,o] (the oracle for both
// layouts: channels-last input is first copied to NCHW, so the arithmetic is the same code).
// Padded taps are skipped, which is the same as padding with x_zp (real zero).
template <class X>
void qconv_forward_reference(const ConvGeometry& g, const QLinearParams& p, const X* x,
                             const int8_t* w, void* y, bool channels_last = false) {
  const int64_t ohw = g.ohw(), per_o = g.col_rows(), hw = g.h * g.w;
  std::vector<X> planar;
  if (channels_last) {
    planar.resize(static_cast<size_t>(g.n * g.c * hw));
    for (int64_t n = 0; n < g.n; ++n) {
      for (int64_t i = 0; i < hw; ++i) {
        for (int64_t c = 0; c < g.c; ++c)
          planar[(n * g.c + c) * hw + i] = x[(n * hw + i) * g.c + c];
      }
    }
    x = planar.data();
  }
  std::vector<int64_t> acc(static_cast<size_t>(g.n * g.o * ohw), 0);
  for_each_conv_tap(g, [&](int64_t xi, int64_t wi, int64_t yi) {
    const int64_t o = wi / per_o;
    acc[yi] += (int64_t{x[xi]} - p.x_zp) * (int64_t{w[wi]} - p.w_zp_of(o));
  });
  const float lo = p.lo(), hi = p.hi();
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t o = 0; o < g.o; ++o) {
      const float m = p.multiplier(o);
      const int64_t b = p.bias ? p.bias[o] : 0;
      const int64_t base = (n * g.o + o) * ohw;
      for (int64_t i = 0; i < ohw; ++i) {
        const int64_t yi = channels_last ? (n * ohw + i) * g.o + o : base + i;
        requantize_one(p, acc[base + i] + b, m, lo, hi, y, yi);
      }
    }
  }
}

// Reference int8 dense product: x [rows, in], w [out, in] int8, y [rows, out].
template <class X>
void qlinear_forward_reference(int64_t rows, int64_t in, int64_t out, const QLinearParams& p,
                               const X* x, const int8_t* w, void* y) {
  const float lo = p.lo(), hi = p.hi();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      int64_t acc = p.bias ? p.bias[o] : 0;
      const int64_t wzp = p.w_zp_of(o);
      for (int64_t k = 0; k < in; ++k) {
        acc += (int64_t{x[r * in + k]} - p.x_zp) * (int64_t{w[o * in + k]} - wzp);
      }
      requantize_one(p, acc, p.multiplier(o), lo, hi, y, r * out + o);
    }
  }
}

}  // namespace minnow::kernels
