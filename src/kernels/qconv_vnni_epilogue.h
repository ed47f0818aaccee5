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

// Below this many multiply-adds a layer runs on one thread. Waking the second costs about a
// microsecond, and on a shared host the second core is often slowed by other guests: a 600k
// layer at batch 1 then took 4.4 us on two threads and 1.7 us on one. (MobileNetV2 on 28x28
// at batch 1: every layer on one thread.)
constexpr int64_t kParallelMinMacs = 2'000'000;

// The requantization constants of one call, as the loops read them.
struct Epilogue {
  const float* mult;      // [cpad]
  const int32_t* offset;  // [cpad] bias minus the zero point's share
  float lo, hi;           // clamp in output units before rounding
  int32_t y_zp;
  // A fused residual (QLinearParams::sum): its codes, same layout as y, or nullptr.
  const void* sum = nullptr;
  DType sum_dtype = DType::kU8;
  float sum_alpha = 0, sum_beta = 0;

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
    Epilogue e{mult, offset, lo, hi, p.y_zp};
    if (p.sum) {
      e.sum = p.sum;
      e.sum_dtype = p.sum_dtype;
      e.sum_alpha = p.sum_alpha();
      e.sum_beta = p.sum_beta();
    }
    return e;
  }
};

// The requantization of one 16-channel block, its constants in registers (the output stores
// may alias anything the compiler would otherwise reload after each).
//
// With Sum, the residual's codes at y's position join as the reference orders it: v = acc * m
// + sum, then v * alpha + beta, as separate roundings (files using this compile with
// -ffp-contract=off, so no multiply-add is fused).
template <DType Out, bool Sum = false>
struct Requantizer {
  __m512 mult, lo, hi, sum_alpha, sum_beta;
  __m512i offset, y_zp;  // offset: every accumulator's start
  const void* sum = nullptr;
  DType sum_dtype = DType::kU8;

  Requantizer() = default;
  MINNOW_VNNI Requantizer(const Epilogue& e, int64_t c0)
      : mult(_mm512_loadu_ps(e.mult + c0)),
        lo(_mm512_set1_ps(e.lo)),
        hi(_mm512_set1_ps(e.hi)),
        sum_alpha(_mm512_set1_ps(e.sum_alpha)),
        sum_beta(_mm512_set1_ps(e.sum_beta)),
        offset(_mm512_loadu_si512(e.offset + c0)),
        y_zp(_mm512_set1_epi32(e.y_zp)),
        sum(e.sum),
        sum_dtype(e.sum_dtype) {}

  // The residual's `lanes` codes at element `at`, as f32.
  MINNOW_VNNI __m512 sum_at(int64_t lanes, int64_t at) const {
    const auto* src = static_cast<const int8_t*>(sum) + at;
    const __m128i bytes =
        lanes == 16 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(src))
                    : _mm_maskz_loadu_epi8(static_cast<__mmask16>((1u << lanes) - 1), src);
    return _mm512_cvtepi32_ps(sum_dtype == DType::kU8 ? _mm512_cvtepu8_epi32(bytes)
                                                      : _mm512_cvtepi8_epi32(bytes));
  }

  // Requantizes accumulator `acc` (which started at `offset`) and stores its first `lanes`
  // channels at y + at.
  MINNOW_VNNI void store(__m512i acc, int64_t lanes, void* y, int64_t at) const {
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), mult);
    if constexpr (Sum) {
      v = _mm512_add_ps(v, sum_at(lanes, at));
      v = _mm512_mul_ps(v, sum_alpha);
      v = _mm512_add_ps(v, sum_beta);
    }
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    if constexpr (Out == DType::kF32) {
      _mm512_mask_storeu_ps(static_cast<float*>(y) + at, static_cast<__mmask16>((1u << lanes) - 1),
                            v);
    } else {
      // lo/hi include the output range (see forward), so v rounds (to nearest even, as the
      // reference's nearbyint) to an in-range value and the narrowing below is exact.
      const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), y_zp);
      __m128i bytes = Out == DType::kU8 ? _mm512_cvtusepi32_epi8(q) : _mm512_cvtsepi32_epi8(q);
      // Narrowing and store stay two instructions: compilers would merge a masked store into
      // the masked narrowing store, which is microcoded and slow on AMD's Zen cores.
      asm("" : "+v"(bytes));
      auto* dst = static_cast<int8_t*>(y) + at;
      if (lanes == 16) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), bytes);
      } else {
        _mm_mask_storeu_epi8(dst, static_cast<__mmask16>((1u << lanes) - 1), bytes);
      }
    }
  }
};

}  // namespace minnow::kernels
