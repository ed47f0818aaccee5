// Pieces shared by minnow's own int8 convolutions on AVX-512 VNNI (qconv_depthwise_nhwc.cpp,
// qconv_one_channel_nhwc.cpp): the ISA check and target attribute, and the requantization of
// int32 accumulators with the reference's float steps (kernels/qlinear_reference.h).
// Internal: included by those .cpp files only.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/qlinear_reference.h"

namespace minnow::kernels {

// Code using these instructions runs only after vnni_kernels_supported(); the rest of the build
// targets baseline x86-64, so each function carries the target attribute itself.
#define MINNOW_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")))

inline bool vnni_kernels_supported() {
  static const bool isa = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512vbmi") &&
                          __builtin_cpu_supports("avx512vnni");
  return isa;
}

// The requantization constants of one call, as the loops read them.
struct Epilogue {
  const float* mult;      // [cpad]
  const int32_t* offset;  // [cpad] bias minus the zero point's share
  float lo, hi;           // clamp in output units before rounding
  int32_t y_zp;

  // The clamp before rounding: the activation's bounds, narrowed to the output's range shifted
  // by the zero point. Rounding is monotone and the range bounds are integers, so this gives
  // the reference's clamp-round-add-saturate exactly, with one clamp.
  static Epilogue of(const QLinearParams& p, DType out, const float* mult, const int32_t* offset) {
    float lo = p.lo(), hi = p.hi();
    if (out != DType::kF32) {
      const float sat_lo = out == DType::kU8 ? 0.0f : -128.0f;
      const float sat_hi = out == DType::kU8 ? 255.0f : 127.0f;
      lo = std::max(lo, sat_lo - static_cast<float>(p.y_zp));
      hi = std::min(hi, sat_hi - static_cast<float>(p.y_zp));
    }
    return {mult, offset, lo, hi, p.y_zp};
  }
};

// The requantization of one 16-channel block, its constants in registers (the output stores
// may alias anything the compiler would otherwise reload after each).
template <DType Out>
struct Requantizer {
  __m512 mult, lo, hi;
  __m512i offset, y_zp;  // offset: every accumulator's start

  MINNOW_VNNI Requantizer(const Epilogue& e, int64_t c0)
      : mult(_mm512_loadu_ps(e.mult + c0)),
        lo(_mm512_set1_ps(e.lo)),
        hi(_mm512_set1_ps(e.hi)),
        offset(_mm512_loadu_si512(e.offset + c0)),
        y_zp(_mm512_set1_epi32(e.y_zp)) {}

  // Requantizes accumulator `acc` (which started at `offset`) and stores its first `lanes`
  // channels at y + at.
  MINNOW_VNNI void store(__m512i acc, int64_t lanes, void* y, int64_t at) const {
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), mult);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    if constexpr (Out == DType::kF32) {
      _mm512_mask_storeu_ps(static_cast<float*>(y) + at, static_cast<__mmask16>((1u << lanes) - 1),
                            v);
    } else {
      // lo/hi include the output range (see forward), so v rounds (to nearest even, as the
      // reference's nearbyint) to an in-range value and the narrowing below is exact.
      const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), y_zp);
      const __m128i bytes =
          Out == DType::kU8 ? _mm512_cvtusepi32_epi8(q) : _mm512_cvtsepi32_epi8(q);
      auto* dst = static_cast<int8_t*>(y) + at;
      if (lanes == 16) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), bytes);
      } else {
        // Not a masked store: compilers turn that into the masked narrowing store, which is
        // microcoded and slow on AMD's Zen cores.
        alignas(16) int8_t tail[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(tail), bytes);
        std::memcpy(dst, tail, static_cast<size_t>(lanes));
      }
    }
  }
};

}  // namespace minnow::kernels
