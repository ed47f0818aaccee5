#include "passes/quant_range.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "minnow/error.h"

namespace minnow {
namespace {

void check_range(const char* what, float lo, float hi) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi) {
    throw Error(std::string(what) + ": expected a finite range lo <= hi, got [" +
                std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
}

// A positive scale for `width` real units over `steps` steps. Computed in double so that a range
// as wide as the float type does not overflow; too small a scale is raised to the smallest normal
// float so that x / scale stays finite for every float x in the range.
float scale_for(double width, double steps) {
  if (width <= 0) return 1.0f;
  const double s = width / steps;
  return static_cast<float>(std::max(s, static_cast<double>(std::numeric_limits<float>::min())));
}

}  // namespace

float round_up_to_half_precision(float s) {
  // Normal binary16 values: 2^-14 <= v <= 65504, 11 significant bits.
  constexpr float kHalfMinNormal = 6.103515625e-05f;
  constexpr float kHalfMax = 65504.0f;
  if (!(s >= kHalfMinNormal && s <= kHalfMax)) return s;
  int e = 0;
  const double f = std::frexp(static_cast<double>(s), &e);  // s = f * 2^e, f in [0.5, 1)
  const double up = std::ldexp(std::ceil(std::ldexp(f, 11)), e - 11);
  return up <= kHalfMax ? static_cast<float>(up) : s;
}

QuantChoice choose_u8_asymmetric(float lo, float hi) {
  check_range("choose_u8_asymmetric", lo, hi);
  const double l = std::min(static_cast<double>(lo), 0.0);
  const double h = std::max(static_cast<double>(hi), 0.0);
  const float scale = scale_for(h - l, 255.0);
  // 0 <= -l / scale <= 255 because l <= 0 <= h; the clamp only guards rounding at the ends.
  const double zp = std::nearbyint(-l / static_cast<double>(scale));
  return {scale, static_cast<int32_t>(std::clamp(zp, 0.0, 255.0))};
}

QuantChoice choose_i8_symmetric(float lo, float hi) {
  check_range("choose_i8_symmetric", lo, hi);
  const double a = std::max(std::fabs(static_cast<double>(lo)), std::fabs(static_cast<double>(hi)));
  return {scale_for(a, 127.0), 0};
}

QuantizedWeights quantize_weights_per_channel(const float* w, int64_t channels, int64_t per_channel,
                                              int bits) {
  if (bits < 2 || bits > 8) {
    throw Error("quantize_weights_per_channel: bits must be in 2..8, got " + std::to_string(bits));
  }
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  if (channels < 0 || per_channel < 0) {
    throw Error("quantize_weights_per_channel: expected non-negative sizes, got channels=" +
                std::to_string(channels) + " per_channel=" + std::to_string(per_channel));
  }
  if (per_channel > 0 && channels > std::numeric_limits<int64_t>::max() / per_channel) {
    throw Error("quantize_weights_per_channel: channels * per_channel overflows");
  }
  const int64_t n = channels * per_channel;
  if (n > 0 && w == nullptr) {
    throw Error("quantize_weights_per_channel: null weight pointer for " + std::to_string(n) +
                " elements");
  }
  QuantizedWeights out;
  out.data.resize(static_cast<size_t>(n));
  out.scale.resize(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    const float* wc = w + c * per_channel;
    float amax = 0;
    for (int64_t i = 0; i < per_channel; ++i) {
      if (!std::isfinite(wc[i])) {
        throw Error("quantize_weights_per_channel: channel " + std::to_string(c) +
                    " has a non-finite weight at index " + std::to_string(i));
      }
      amax = std::max(amax, std::fabs(wc[i]));
    }
    const float scale = round_up_to_half_precision(scale_for(amax, qmax));
    out.scale[static_cast<size_t>(c)] = scale;
    int8_t* qc = out.data.data() + c * per_channel;
    for (int64_t i = 0; i < per_channel; ++i) {
      // The division is in f32 as in ONNX QuantizeLinear (ops/quant_util.h), so a Q node on the
      // float weights with these scales gives the same integers; nearbyint in the default
      // rounding mode rounds halves to even.
      const float q = std::nearbyint(wc[i] / scale);
      qc[i] = static_cast<int8_t>(std::clamp(q, -qmax, qmax));
    }
  }
  return out;
}

int32_t quantize_bias(double real, double scale) {
  const double q = std::nearbyint(real / scale);
  if (!(q > std::numeric_limits<int32_t>::min())) return std::numeric_limits<int32_t>::min();
  if (q >= std::numeric_limits<int32_t>::max()) return std::numeric_limits<int32_t>::max();
  return static_cast<int32_t>(q);
}

}  // namespace minnow
