#include "kernels/conv_depthwise_plane.h"

#include <immintrin.h>

// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_* as a "maybe uninitialized"
// merge source of the reductions); the values are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <omp.h>

#include <algorithm>

#include "kernels/prefetch.h"
#include "minnow/error.h"

namespace minnow::kernels {
namespace {

// Everything below runs only after ConvDepthwisePlane::supports() saw AVX-512F; the rest of the
// build targets baseline x86-64, so each function carries the target attribute itself.
#define MINNOW_AVX512 __attribute__((target("avx512f")))

// The per-geometry tables, as the plane loops read them.
struct Taps {
  int vectors;
  const int* shift;       // [9]
  const uint16_t* mask;   // [vectors * 9]
  const uint16_t* pixel;  // [vectors]
};

// P planes at once (consecutive ones of a sample, or one channel's planes across samples): each
// tap's mask and address are worked out once for all of them, which is most of the instructions
// of a one-plane loop.

// y_j = w_j (*) x_j + bias_j for planes j < P (plane j of x at x + j * xs, of y at y + j * ys);
// w holds P kernels of 9, bias P values or null. With the kernels rotated by 180 degrees this
// is also backward-data.
template <int P>
MINNOW_AVX512 void planes_forward(const float* x, int64_t xs, const float* w, const float* bias,
                                  float* y, int64_t ys, const Taps& t) {
  for (int v = 0; v < t.vectors; ++v) {
    const float* xv = x + 16 * v;
    const uint16_t* m = t.mask + 9 * v;
    // Two partial sums per plane halve the chain of dependent FMAs.
    __m512 acc[P][2];
    for (int j = 0; j < P; ++j) {
      acc[j][0] = bias ? _mm512_set1_ps(bias[j]) : _mm512_setzero_ps();
      acc[j][1] = _mm512_setzero_ps();
    }
#pragma GCC unroll 9
    for (int k = 0; k < 9; ++k) {
      const __mmask16 mk = m[k];
      const float* src = xv + t.shift[k];
#pragma GCC unroll 4
      for (int j = 0; j < P; ++j) {
        // Masked-off lanes are never read, so the address may point outside the plane.
        acc[j][k & 1] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, src + j * xs),
                                        _mm512_set1_ps(w[9 * j + k]), acc[j][k & 1]);
      }
    }
    for (int j = 0; j < P; ++j) {
      _mm512_mask_storeu_ps(y + j * ys + 16 * v, t.pixel[v], _mm512_add_ps(acc[j][0], acc[j][1]));
    }
  }
}

// For planes j < P: acc[10 j + k] += sum over pixels p of dy_j[p] * x_j[p + shift[k]] (inside
// the plane), acc[10 j + 9] += dy_j; plane j of x at x + j * xs, of dy at dy + j * ds.
template <int P>
MINNOW_AVX512 void planes_weights(const float* x, int64_t xs, const float* dy, int64_t ds,
                                  __m512* acc, const Taps& t) {
  __m512 a[P][10];
  for (int j = 0; j < P; ++j) {
    for (int k = 0; k < 10; ++k) a[j][k] = acc[10 * j + k];
  }
  for (int v = 0; v < t.vectors; ++v) {
    const float* xv = x + 16 * v;
    const uint16_t* m = t.mask + 9 * v;
    __m512 g[P];
    for (int j = 0; j < P; ++j) {
      g[j] = _mm512_maskz_loadu_ps(t.pixel[v], dy + j * ds + 16 * v);
      a[j][9] = _mm512_add_ps(a[j][9], g[j]);
    }
#pragma GCC unroll 9
    for (int k = 0; k < 9; ++k) {
      const __mmask16 mk = m[k];
      const float* src = xv + t.shift[k];
#pragma GCC unroll 4
      for (int j = 0; j < P; ++j) {
        a[j][k] = _mm512_fmadd_ps(g[j], _mm512_maskz_loadu_ps(mk, src + j * xs), a[j][k]);
      }
    }
  }
  for (int j = 0; j < P; ++j) {
    for (int k = 0; k < 10; ++k) acc[10 * j + k] = a[j][k];
  }
}

// Masked loads from memory that is not cached yet are slow (measured: in a training step, where
// every input comes from memory, a 14x14 layer took three times its time with cached data), so
// the loops below ask for the next planes while they work on the current ones.
// How far ahead the loops prefetch (in a training step: 4 planes beat 8 and 16).
constexpr int64_t kAheadPlanes = 4;

// Planes [c0, c1) of one sample (channels c0 .. c1 - 1), four at a time. Planes up to `last`
// (exclusive, counted from x) follow in memory and may be prefetched.
MINNOW_AVX512 void forward_run(const float* x, int64_t hw, const float* w, const float* bias,
                               float* y, int64_t c0, int64_t c1, int64_t last, const Taps& t) {
  int64_t c = c0;
  for (; c + 4 <= c1; c += 4) {
    const int64_t from = c + kAheadPlanes, to = std::min(from + 4, last);
    if (to > from) {
      prefetch_floats(x + from * hw, (to - from) * hw);
      prefetch_floats(y + from * hw, (to - from) * hw, /*for_write=*/true);
    }
    planes_forward<4>(x + c * hw, hw, w + 9 * c, bias ? bias + c : nullptr, y + c * hw, hw, t);
  }
  for (; c < c1; ++c) {
    planes_forward<1>(x + c * hw, hw, w + 9 * c, bias ? bias + c : nullptr, y + c * hw, hw, t);
  }
}

// Channels [c0, c1): their dx planes (when dx is set, from the rotated kernels `wr`) and their
// weight/bias gradients over the batch. Samples run in the outer loop, so each step reads
// (c1 - c0) consecutive planes, a run the hardware prefetchers follow; the gradient sums wait in
// `acc` ([c1 - c0][10] vectors).
MINNOW_AVX512 void backward_channels_range(int64_t c0, int64_t c1, const ConvGeometry& g,
                                           const Taps& t, const float* x, const float* dy,
                                           const float* wr, float* dx, float* dw, float* db,
                                           __m512* acc) {
  const int64_t hw = g.h * g.w, C = g.c;
  if (dw) {
    for (int64_t i = 0; i < (c1 - c0) * 10; ++i) acc[i] = _mm512_setzero_ps();
  }
  for (int64_t n = 0; n < g.n; ++n) {
    const int64_t base = n * C * hw;
    if (dx) forward_run(dy + base, hw, wr, nullptr, dx + base, c0, c1, c1, t);
    if (!dw) continue;
    int64_t c = c0;
    for (; c + 2 <= c1; c += 2) {
      const int64_t from = c + kAheadPlanes, to = std::min(from + 2, c1);
      if (to > from) {
        prefetch_floats(x + base + from * hw, (to - from) * hw);
        prefetch_floats(dy + base + from * hw, (to - from) * hw);
      }
      planes_weights<2>(x + base + c * hw, hw, dy + base + c * hw, hw, acc + (c - c0) * 10, t);
    }
    for (; c < c1; ++c) {
      planes_weights<1>(x + base + c * hw, hw, dy + base + c * hw, hw, acc + (c - c0) * 10, t);
    }
  }
  if (!dw) return;
  for (int64_t c = c0; c < c1; ++c) {
    const __m512* a = acc + (c - c0) * 10;
    for (int k = 0; k < 9; ++k) dw[c * 9 + k] = _mm512_reduce_add_ps(a[k]);
    if (db) db[c] = _mm512_reduce_add_ps(a[9]);
  }
}

// Each thread takes a contiguous range of channels. (No vector types in the OpenMP functions
// themselves: an outlined region does not inherit the AVX-512 target attribute.)
void backward_channels(const ConvGeometry& g, const Taps& t, const float* x, const float* dy,
                       const float* wr, float* dx, float* dw, float* db, float* scratch) {
#pragma omp parallel if (g.n * g.c > 1)
  {
    const int64_t threads = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t c0 = g.c * id / threads, c1 = g.c * (id + 1) / threads;
    if (c1 > c0) {
      backward_channels_range(c0, c1, g, t, x, dy, wr, dx, dw, db,
                              reinterpret_cast<__m512*>(scratch) + c0 * 10);
    }
  }
}

// Each thread takes a contiguous range of planes.
void forward_planes(const ConvGeometry& g, const Taps& t, const float* x, const float* w,
                    const float* b, float* y) {
  const int64_t hw = g.h * g.w, C = g.c, planes = g.n * C;
#pragma omp parallel if (planes > 1)
  {
    const int64_t threads = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t p0 = planes * id / threads, p1 = planes * (id + 1) / threads;
    for (int64_t p = p0; p < p1;) {  // one sample's part of the range at a time
      const int64_t n = p / C, c0 = p % C, c1 = std::min(C, c0 + p1 - p);
      const int64_t base = n * C * hw;
      forward_run(x + base, hw, w, b, y + base, c0, c1, p1 - n * C, t);
      p += c1 - c0;
    }
  }
}

}  // namespace

bool ConvDepthwisePlane::supports(const ConvGeometry& g) {
  return __builtin_cpu_supports("avx512f") && g.is_depthwise() && g.kh == 3 && g.kw == 3 &&
         g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.pt == 1 && g.pl == 1 && g.pb == 1 &&
         g.pr == 1 && g.h >= 1 && g.w >= 1 && g.h * g.w <= kMaxPixels;
}

ConvDepthwisePlane::ConvDepthwisePlane(const ConvGeometry& g) : g_(g) {
  if (!supports(g)) {
    throw Error("depthwise plane strategy does not apply to this convolution or CPU");
  }
  const int h = static_cast<int>(g.h), w = static_cast<int>(g.w), hw = h * w;
  vectors_ = (hw + 15) / 16;
  shift_.resize(9);
  masks_.assign(static_cast<size_t>(vectors_) * 9, 0);
  pixels_.assign(vectors_, 0);
  for (int ky = 0; ky < 3; ++ky) {
    for (int kx = 0; kx < 3; ++kx) shift_[3 * ky + kx] = (ky - 1) * w + (kx - 1);
  }
  for (int p = 0; p < hw; ++p) {
    const int v = p / 16, lane = p % 16, oy = p / w, ox = p % w;
    pixels_[v] |= static_cast<uint16_t>(1u << lane);
    for (int ky = 0; ky < 3; ++ky) {
      for (int kx = 0; kx < 3; ++kx) {
        const int iy = oy + ky - 1, ix = ox + kx - 1;
        if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
          masks_[9 * v + 3 * ky + kx] |= static_cast<uint16_t>(1u << lane);
        }
      }
    }
  }
}

MINNOW_AVX512 void ConvDepthwisePlane::forward_channel(const float* x, int64_t xs, const float* w9,
                                                       float bias, float* y, int64_t ys,
                                                       int64_t count) const {
  const Taps t{vectors_, shift_.data(), masks_.data(), pixels_.data()};
  float w4[36], b4[4];
  for (int j = 0; j < 4; ++j) {
    std::copy_n(w9, 9, w4 + 9 * j);
    b4[j] = bias;
  }
  int64_t i = 0;
  for (; i + 4 <= count; i += 4) planes_forward<4>(x + i * xs, xs, w4, b4, y + i * ys, ys, t);
  for (; i < count; ++i) planes_forward<1>(x + i * xs, xs, w4, b4, y + i * ys, ys, t);
}

MINNOW_AVX512 void ConvDepthwisePlane::backward_channel(const float* x, int64_t xs, const float* dy,
                                                        int64_t ds, const float* w9, float* dx,
                                                        int64_t dxs, int64_t count,
                                                        float* sums) const {
  const Taps t{vectors_, shift_.data(), masks_.data(), pixels_.data()};
  float wr4[36];  // the kernel turned by 180 degrees (backward-data), for each of four planes
  for (int j = 0; j < 4; ++j) {
    for (int k = 0; k < 9; ++k) wr4[9 * j + k] = w9[8 - k];
  }
  __m512 acc[40];
  for (__m512& a : acc) a = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 4 <= count; i += 4) {
    if (dx) planes_forward<4>(dy + i * ds, ds, wr4, nullptr, dx + i * dxs, dxs, t);
    planes_weights<4>(x + i * xs, xs, dy + i * ds, ds, acc, t);
  }
  for (; i < count; ++i) {
    if (dx) planes_forward<1>(dy + i * ds, ds, wr4, nullptr, dx + i * dxs, dxs, t);
    planes_weights<1>(x + i * xs, xs, dy + i * ds, ds, acc, t);
  }
  __m512* out = reinterpret_cast<__m512*>(sums);
  for (int k = 0; k < 10; ++k) {
    out[k] = _mm512_add_ps(out[k], _mm512_add_ps(_mm512_add_ps(acc[k], acc[10 + k]),
                                                 _mm512_add_ps(acc[20 + k], acc[30 + k])));
  }
}

void ConvDepthwisePlane::forward(const float* x, const float* w, const float* b, float* y, bool) {
  const Taps t{vectors_, shift_.data(), masks_.data(), pixels_.data()};
  forward_planes(g_, t, x, w, b, y);
}

void ConvDepthwisePlane::backward_data(const float* dy, const float* w, float* dx) {
  backward(nullptr, dy, w, dx, nullptr, nullptr);
}

void ConvDepthwisePlane::backward_weights(const float* x, const float* dy, float* dw, float* db) {
  backward(x, dy, nullptr, nullptr, dw, db);
}

void ConvDepthwisePlane::backward(const float* x, const float* dy, const float* w, float* dx,
                                  float* dw, float* db) {
  const Taps t{vectors_, shift_.data(), masks_.data(), pixels_.data()};
  float* wr = nullptr;  // backward-data runs the forward loop with the kernels turned around
  if (dx) {
    wr = rotated_.get(g_.c * 9);
    for (int64_t c = 0; c < g_.c; ++c) {
      for (int k = 0; k < 9; ++k) wr[c * 9 + k] = w[c * 9 + 8 - k];
    }
  }
  // Ten vector gradient sums per channel (FloatBuffer is 64-byte aligned).
  backward_channels(g_, t, x, dy, wr, dx, dw, db, dw ? acc_.get(g_.c * 10 * 16) : nullptr);
}

}  // namespace minnow::kernels
