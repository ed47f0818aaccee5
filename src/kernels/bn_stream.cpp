#include "kernels/bn_stream.h"

#include <immintrin.h>

// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_* as a "maybe uninitialized"
// merge source); the values are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>

namespace minnow::kernels {
namespace {

// Floats before the first 64-byte aligned address at or after p (streaming stores need it).
int64_t unaligned_head(const float* p, int64_t s) {
  const int64_t bytes = (64 - static_cast<int64_t>(reinterpret_cast<uintptr_t>(p) % 64)) % 64;
  return std::min<int64_t>(s, bytes / static_cast<int64_t>(sizeof(float)));
}

}  // namespace

bool stream_stores_available() { return __builtin_cpu_supports("avx512f"); }

// Each run: a scalar head up to the first aligned destination, 16-float blocks written with
// streaming stores, a scalar tail. The vector max/min take the bound first so that a NaN input
// stays NaN as in the scalar code (the training session reports non-finite outputs).
__attribute__((target("avx512f"))) void stream_affine_clamp(const float* src, float* out, int64_t n,
                                                            int64_t stride, int64_t s, float a,
                                                            float sh, float lo, float hi) {
  const __m512 va = _mm512_set1_ps(a), vsh = _mm512_set1_ps(sh), vlo = _mm512_set1_ps(lo),
               vhi = _mm512_set1_ps(hi);
  for (int64_t i = 0; i < n; ++i) {
    const float* r = src + i * stride;
    float* o = out + i * stride;
    const int64_t head = unaligned_head(o, s);
    int64_t j = 0;
    for (; j < head; ++j) o[j] = std::min(std::max(r[j] * a + sh, lo), hi);
    for (; j + 16 <= s; j += 16) {
      const __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(r + j), va, vsh);
      _mm512_stream_ps(o + j, _mm512_min_ps(vhi, _mm512_max_ps(vlo, v)));
    }
    for (; j < s; ++j) o[j] = std::min(std::max(r[j] * a + sh, lo), hi);
  }
  _mm_sfence();  // streaming stores are weakly ordered: publish them before returning
}

__attribute__((target("avx512f"))) void stream_affine(const float* src, const float* x, float* out,
                                                      int64_t n, int64_t stride, int64_t s, float a,
                                                      float b2, float sh) {
  const __m512 va = _mm512_set1_ps(a), vb2 = _mm512_set1_ps(b2), vsh = _mm512_set1_ps(sh);
  for (int64_t i = 0; i < n; ++i) {
    const float* r = src + i * stride;
    const float* q = x ? x + i * stride : nullptr;
    float* o = out + i * stride;
    const int64_t head = unaligned_head(o, s);
    int64_t j = 0;
    for (; j < head; ++j) o[j] = r[j] * a + (q ? q[j] * b2 : 0.0f) + sh;
    if (q) {
      for (; j + 16 <= s; j += 16) {
        const __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(r + j), va,
                                         _mm512_fmadd_ps(_mm512_loadu_ps(q + j), vb2, vsh));
        _mm512_stream_ps(o + j, v);
      }
    } else {
      for (; j + 16 <= s; j += 16) {
        _mm512_stream_ps(o + j, _mm512_fmadd_ps(_mm512_loadu_ps(r + j), va, vsh));
      }
    }
    for (; j < s; ++j) o[j] = r[j] * a + (q ? q[j] * b2 : 0.0f) + sh;
  }
  _mm_sfence();
}

__attribute__((target("avx512f"))) void stream_dx_masked(const float* dy, const float* x, float* dx,
                                                         int64_t n, int64_t stride, int64_t s,
                                                         float a, float sh, float lo, float hi,
                                                         float k1, float k2, float k3) {
  const __m512 va = _mm512_set1_ps(a), vsh = _mm512_set1_ps(sh), vlo = _mm512_set1_ps(lo),
               vhi = _mm512_set1_ps(hi), vk1 = _mm512_set1_ps(k1), vk2 = _mm512_set1_ps(k2),
               vk3 = _mm512_set1_ps(k3);
  auto scalar = [&](const float* d, const float* p, float* o, int64_t j) {
    const float t = p[j] * a + sh;
    const float g = (t > lo && t < hi) ? d[j] : 0.0f;
    o[j] = g * k1 + p[j] * k2 + k3;
  };
  for (int64_t i = 0; i < n; ++i) {
    const float* d = dy + i * stride;
    const float* p = x + i * stride;
    float* o = dx + i * stride;
    const int64_t head = unaligned_head(o, s);
    int64_t j = 0;
    for (; j < head; ++j) scalar(d, p, o, j);
    for (; j + 16 <= s; j += 16) {
      const __m512 xv = _mm512_loadu_ps(p + j);
      const __m512 t = _mm512_fmadd_ps(xv, va, vsh);
      const __mmask16 pass =
          _mm512_cmp_ps_mask(t, vlo, _CMP_GT_OQ) & _mm512_cmp_ps_mask(t, vhi, _CMP_LT_OQ);
      const __m512 g = _mm512_maskz_loadu_ps(pass, d + j);
      _mm512_stream_ps(o + j, _mm512_fmadd_ps(g, vk1, _mm512_fmadd_ps(xv, vk2, vk3)));
    }
    for (; j < s; ++j) scalar(d, p, o, j);
  }
  _mm_sfence();
}

}  // namespace minnow::kernels
