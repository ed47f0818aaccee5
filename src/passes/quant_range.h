// From a real-valued range to quantization parameters (issue 6).
//
// minnow's scheme: activations uint8 asymmetric per tensor (zero point in [0, 255]) or int8
// symmetric (zero point 0); weights int8 symmetric per output channel. Every range handed in is
// first widened to contain 0, so that 0 (padding, ReLU's floor, pruned weights) is exactly
// representable; the zero point is the integer that stands for 0.
#pragma once

#include <cstdint>
#include <vector>

namespace minnow {

struct QuantChoice {
  float scale;         // > 0, also for a degenerate range
  int32_t zero_point;  // u8: [0, 255]; i8 symmetric: 0
};

// uint8, real = (q - zero_point) * scale, covering [lo, hi] (widened to contain 0) with the 256
// levels. The zero point is rounded to the nearest integer (so the covered range may shift by up
// to half a step). A range of width 0 (all zeros) gives scale 1, zero point 0. Throws
// minnow::Error for a non-finite bound or lo > hi.
QuantChoice choose_u8_asymmetric(float lo, float hi);

// int8 symmetric, real = q * scale with q in [-127, 127] (the restricted range: -128 is never
// used, so that negation is exact and the scheme matches the weights): scale = max(|lo|, |hi|) /
// 127. Degenerate range: scale 1. Throws minnow::Error for a non-finite bound or lo > hi.
QuantChoice choose_i8_symmetric(float lo, float hi);

// The smallest IEEE binary16 (half) value >= s when s lies in the normal half range
// [2^-14, 65504]; s itself otherwise. Rounding up changes s by at most 2^-10 of itself.
float round_up_to_half_precision(float s);

// Per-output-channel symmetric int8 weights: w is [channels, per_channel] row-major;
// scale[c] = max|w_c| / 127 rounded up to a half-precision value, data[i] =
// saturate(round_half_even(w[i] / scale[c])) in [-127, 127]. With bits = 4 the same with 7 for
// 127 (int4 values, still one per int8 element). The rounding up (round_up_to_half_precision)
// widens the step by at most 0.1%: no weight clips and the largest still maps to +-127, while a
// .mnw file stores such scales in 2 bytes instead of 4 (ggml keeps its block scales in fp16 for
// the same reason: for a small network, one f32 scale per output channel is a tenth of its int8
// weight bytes). An all-zero channel gets scale 1 (any positive value represents it exactly; 1
// keeps the bias of such a channel, quantized with x_scale * w_scale[c], well inside int32). A
// scale below the smallest normal float is raised to it, so that w / scale never overflows.
// Throws minnow::Error for a non-finite weight, negative sizes or a null pointer with elements.
struct QuantizedWeights {
  std::vector<int8_t> data;
  std::vector<float> scale;
};
QuantizedWeights quantize_weights_per_channel(const float* w, int64_t channels, int64_t per_channel,
                                              int bits = 8);

// One int32 bias element at `scale` (x_scale * w_scale[c]): round half to even, saturated (tiny
// weight scales can push a bias beyond int32).
int32_t quantize_bias(double real, double scale);

}  // namespace minnow
