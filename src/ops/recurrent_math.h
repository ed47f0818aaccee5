// Activations for the fast recurrent kernels (LSTM, GRU), written so the per-row gate loops
// vectorize. std::exp/std::tanh are scalar libm calls that GCC does not vectorize without
// -ffast-math; at N=64, H=128 they made the gate math ~70% of an LSTM step (each step's GEMM is
// small). These stay within a few 1e-7 of libm, far inside the kernels' f32 tolerances.
// The reference kernels keep std::exp/std::tanh (the oracle).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace minnow::ops::recurrent {

// c ? a : b through bit masks. GCC (without -ffinite-math-only / -fno-trapping-math) turns a
// float ?: or std::min into a branch that stops the loop from vectorizing; this stays a blend.
inline float select(bool c, float a, float b) {
  const int32_t m = -static_cast<int32_t>(c);
  return std::bit_cast<float>((std::bit_cast<int32_t>(a) & m) | (std::bit_cast<int32_t>(b) & ~m));
}

// e^x for float: x = n ln2 + r with |r| <= ln2/2, e^r by its degree-6 Taylor polynomial
// (truncation error < 1e-7 relative), 2^n put directly into the exponent bits.
inline float exp_vec(float in) {
  // Clamping keeps n + 127 a normal exponent and the int conversion below defined; a NaN is
  // computed as 0 and put back at the end (converting NaN to int is undefined).
  const bool nan = in != in;
  float x = select(nan, 0.0f, in);
  x = select(x < -87.0f, -87.0f, x);
  x = select(x > 88.0f, 88.0f, x);
  const float t = x * 1.44269504088896341f;  // log2(e)
  const int32_t n = static_cast<int32_t>(t + std::copysign(0.5f, t));
  const float nf = static_cast<float>(n);
  // ln2 split in two so that n * 0.693359375 is exact in float (Cody-Waite reduction).
  const float r = x - nf * 0.693359375f + nf * 2.12194440e-4f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return select(nan, in, p * std::bit_cast<float>((n + 127) << 23));
}

inline float sigmoid_vec(float x) { return 1.0f / (1.0f + exp_vec(-x)); }

// tanh(x) = 1 - 2 / (e^{2x} + 1): saturates cleanly to +-1 at both ends.
inline float tanh_vec(float x) { return 1.0f - 2.0f / (exp_vec(2.0f * x) + 1.0f); }

// The cells call Act<T, kFast>::sigmoid/tanh: libm for the reference, the above for fast f32.
template <class T, bool kFast>
struct Act {
  static T sigmoid(T v) { return T(1) / (T(1) + std::exp(-v)); }
  static T tanh(T v) { return std::tanh(v); }
};

template <>
struct Act<float, true> {
  static float sigmoid(float v) { return sigmoid_vec(v); }
  static float tanh(float v) { return tanh_vec(v); }
};

}  // namespace minnow::ops::recurrent
