#include "kernels/conv_depthwise3x3.h"

#include <immintrin.h>

// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_* as a "maybe uninitialized"
// merge source of the reductions); the values are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <omp.h>

#include <algorithm>

#include "kernels/prefetch.h"
#include "minnow/error.h"

namespace minnow::kernels {

// Lanes i in [0, 16) with lo <= start + i < hi.
static uint16_t range_mask(int start, int lo, int hi) {
  const int a = std::max(0, lo - start), b = std::min(16, hi - start);
  if (b <= a) return 0;
  return static_cast<uint16_t>(((1u << b) - 1u) & ~((1u << a) - 1u));
}

namespace {

// Everything below runs only after ConvDepthwise3x3::supports() saw AVX-512F; the rest of the
// build targets baseline x86-64, so each function carries the target attribute itself.
#define MINNOW_AVX512 __attribute__((target("avx512f")))

// Plane geometry in ints, as the row loops use it.
struct Dims {
  int h, w, oh, ow, pt, pl;
};

template <class Block>
struct Blocks {
  const Block* p;
  int n;
};
using OutBlocks = Blocks<Dw3x3OutBlock>;
using InBlocks = Blocks<Dw3x3InBlock>;

// The three taps of input row `row` for one output block: lane i of v[kx] is
// row[S * (ox0 + i) - pl + kx], or 0 outside the row.
template <int S, class Block>
MINNOW_AVX512 inline void load_taps(const float* row, const Block& b, __m512 v[3]) {
  if constexpr (S == 1) {
    // Masked-off lanes are never read, so the address may point outside the row.
    for (int kx = 0; kx < 3; ++kx)
      v[kx] = _mm512_maskz_loadu_ps(b.load_mask[kx], row + b.load_off[kx]);
  } else {
    const __m512 a = _mm512_maskz_loadu_ps(b.load_mask[0], row + b.load_off[0]);
    const __m512 c = _mm512_maskz_loadu_ps(b.load_mask[1], row + b.load_off[1]);
    const __m512 e = _mm512_maskz_loadu_ps(b.load_mask[2], row + b.load_off[2]);
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd =
        _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    v[0] = _mm512_permutex2var_ps(a, even, c);
    v[1] = _mm512_permutex2var_ps(a, odd, c);
    // Elements base + 2i + 2: v[0] shifted down one lane, with the third load's lane 0 last.
    v[2] = _mm512_castsi512_ps(
        _mm512_alignr_epi32(_mm512_castps_si512(e), _mm512_castps_si512(v[0]), 1));
  }
}

template <int S, class Block>
MINNOW_AVX512 void forward_plane(const float* x, const float* w9, float bias, float* y,
                                 const Dims& d, Blocks<Block> blocks) {
  __m512 wv[9];
  for (int t = 0; t < 9; ++t) wv[t] = _mm512_set1_ps(w9[t]);
  const __m512 bv = _mm512_set1_ps(bias);
  for (int oy = 0; oy < d.oh; ++oy) {
    const int iy0 = S * oy - d.pt;
    const int ky0 = std::max(0, -iy0), ky1 = std::min(3, d.h - iy0);
    float* yrow = y + static_cast<int64_t>(oy) * d.ow;
    for (int bi = 0; bi < blocks.n; ++bi) {
      const Block& b = blocks.p[bi];
      // One partial sum per kernel column: chains of 3 dependent FMAs instead of 9.
      __m512 a0 = bv, a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps();
      for (int ky = ky0; ky < ky1; ++ky) {
        __m512 v[3];
        load_taps<S>(x + static_cast<int64_t>(iy0 + ky) * d.w, b, v);
        a0 = _mm512_fmadd_ps(v[0], wv[3 * ky], a0);
        a1 = _mm512_fmadd_ps(v[1], wv[3 * ky + 1], a1);
        a2 = _mm512_fmadd_ps(v[2], wv[3 * ky + 2], a2);
      }
      _mm512_mask_storeu_ps(yrow + b.ox0, b.out_mask, _mm512_add_ps(_mm512_add_ps(a0, a1), a2));
    }
  }
}

// Stride 2 with padding 1 on top and left, rows of at most 32 columns (MobileNet's 28x28 and
// 14x14 layers): with iy = 2 oy - 1 + ky and ix = 2 ox - 1 + kx, an even input column 2m takes
// only tap kx = 1 of output column m, an odd one 2m + 1 taps kx = 2 of m and kx = 0 of m + 1;
// rows likewise. So lane m of two vectors holds input columns 2m (E) and 2m + 1 (O), computed
// straight from the dy row and the dy row shifted by one column, and two permutes interleave
// them into the dx row: 9 FMAs per pair of input rows instead of the gather's 27 loads,
// permutes and FMAs (96 x 28x28 planes at batch 64, both backward passes: 1.17 -> 0.80 ms).
bool backward_data_s2_applies(const Dims& d) { return d.pt == 1 && d.pl == 1 && d.w <= 32; }

// Stores row[2m] = e[m], row[2m + 1] = o[m] (columns where the masks are set).
MINNOW_AVX512 inline void interleave_store(float* row, __m512 e, __m512 o, __m512i lo, __m512i hi,
                                           __mmask16 lo_mask, __mmask16 hi_mask) {
  _mm512_mask_storeu_ps(row, lo_mask, _mm512_permutex2var_ps(e, lo, o));
  if (hi_mask) _mm512_mask_storeu_ps(row + 16, hi_mask, _mm512_permutex2var_ps(e, hi, o));
}

MINNOW_AVX512 void backward_data_plane_s2(const float* dy, const float* w9, float* dx,
                                          const Dims& d) {
  const __m512 w00 = _mm512_set1_ps(w9[0]), w01 = _mm512_set1_ps(w9[1]),
               w02 = _mm512_set1_ps(w9[2]), w10 = _mm512_set1_ps(w9[3]),
               w11 = _mm512_set1_ps(w9[4]), w12 = _mm512_set1_ps(w9[5]),
               w20 = _mm512_set1_ps(w9[6]), w21 = _mm512_set1_ps(w9[7]),
               w22 = _mm512_set1_ps(w9[8]);
  const __mmask16 cols = static_cast<__mmask16>((1u << d.ow) - 1);  // dy columns m < ow
  const __mmask16 next = static_cast<__mmask16>(cols >> 1);         // m + 1 < ow
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __mmask16 lo_mask = static_cast<__mmask16>(d.w >= 16 ? 0xFFFF : (1u << d.w) - 1);
  const __mmask16 hi_mask = static_cast<__mmask16>(d.w > 16 ? (1u << (d.w - 16)) - 1 : 0);
  // Row r of dy and the same row one column on (zero outside dy).
  __m512 cur = _mm512_maskz_loadu_ps(cols, dy), cur_next = _mm512_maskz_loadu_ps(next, dy + 1);
  for (int r = 0; 2 * r < d.h; ++r) {
    // Input row 2r: tap row ky = 1 of output row r.
    interleave_store(dx + static_cast<int64_t>(2 * r) * d.w, _mm512_mul_ps(w11, cur),
                     _mm512_fmadd_ps(w10, cur_next, _mm512_mul_ps(w12, cur)), lo, hi, lo_mask,
                     hi_mask);
    if (2 * r + 1 >= d.h) break;
    // Input row 2r + 1: ky = 2 of output row r and ky = 0 of output row r + 1.
    __m512 below = _mm512_setzero_ps(), below_next = _mm512_setzero_ps();
    if (r + 1 < d.oh) {
      const float* row = dy + static_cast<int64_t>(r + 1) * d.ow;
      below = _mm512_maskz_loadu_ps(cols, row);
      below_next = _mm512_maskz_loadu_ps(next, row + 1);
    }
    const __m512 e = _mm512_fmadd_ps(w01, below, _mm512_mul_ps(w21, cur));
    const __m512 o = _mm512_add_ps(_mm512_fmadd_ps(w20, cur_next, _mm512_mul_ps(w22, cur)),
                                   _mm512_fmadd_ps(w00, below_next, _mm512_mul_ps(w02, below)));
    interleave_store(dx + static_cast<int64_t>(2 * r + 1) * d.w, e, o, lo, hi, lo_mask, hi_mask);
    cur = below;
    cur_next = below_next;
  }
}

// dx[iy][ix] = sum over taps (ky, kx) of w[ky][kx] * dy[oy][ox] where iy = S oy - pt + ky and
// ix = S ox - pl + kx: for each input row, the dy rows and columns that reach it.
template <int S, class Block>
MINNOW_AVX512 void backward_data_plane(const float* dy, const float* w9, float* dx, const Dims& d,
                                       Blocks<Block> blocks) {
  if constexpr (S == 2) {
    if (backward_data_s2_applies(d)) return backward_data_plane_s2(dy, w9, dx, d);
  }
  __m512 wv[9];
  for (int t = 0; t < 9; ++t) wv[t] = _mm512_set1_ps(w9[t]);
  // Stride 2: dy column o0 + j reaches the lanes 2j (lane0_even) or 2j - 1; the rest get 0.
  const __m512i spread_even = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  const __m512i spread_odd = _mm512_setr_epi32(0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8);
  for (int iy = 0; iy < d.h; ++iy) {
    // Tap rows ky whose output row oy = (iy + pt - ky) / S exists.
    const float* rows[3];
    for (int ky = 0; ky < 3; ++ky) {
      const int t = iy + d.pt - ky;
      rows[ky] = (t >= 0 && t % S == 0 && t / S < d.oh) ? dy + static_cast<int64_t>(t / S) * d.ow
                                                        : nullptr;
    }
    float* dxrow = dx + static_cast<int64_t>(iy) * d.w;
    for (int bi = 0; bi < blocks.n; ++bi) {
      const Block& b = blocks.p[bi];
      __m512 acc = _mm512_setzero_ps();
      for (int ky = 0; ky < 3; ++ky) {
        if (!rows[ky]) continue;
        for (int kx = 0; kx < 3; ++kx) {
          __m512 v = _mm512_maskz_loadu_ps(b.dy_mask[kx], rows[ky] + b.dy_off[kx]);
          if constexpr (S == 2) {
            v = b.lane0_even[kx] ? _mm512_maskz_permutexvar_ps(0x5555, spread_even, v)
                                 : _mm512_maskz_permutexvar_ps(0xAAAA, spread_odd, v);
          }
          acc = _mm512_fmadd_ps(v, wv[3 * ky + kx], acc);
        }
      }
      _mm512_mask_storeu_ps(dxrow + b.ix0, b.out_mask, acc);
    }
  }
}

// acc[ky * 3 + kx] += dy[oy][ox] * x[S oy - pt + ky][S ox - pl + kx]; acc[9] += dy (the bias).
// a[kx] += g * (tap kx of input row `row`).
template <int S, class Block>
MINNOW_AVX512 inline void accumulate_row(const float* row, const Block& b, __m512 g, __m512& a0,
                                         __m512& a1, __m512& a2) {
  __m512 v[3];
  load_taps<S>(row, b, v);
  a0 = _mm512_fmadd_ps(g, v[0], a0);
  a1 = _mm512_fmadd_ps(g, v[1], a1);
  a2 = _mm512_fmadd_ps(g, v[2], a2);
}

// Stride 2, one block per row (rows of up to 32 columns): input row 2 oy + 1 - pt is tap row 2
// of output row oy and tap row 0 of oy + 1, so its deinterleaved taps are built once and kept
// for the next output row (a third fewer loads and permutes; 96 x 28x28 planes at batch 64, both
// backward passes: 0.80 -> 0.56 ms).
template <class Block>
MINNOW_AVX512 void weights_plane_s2_one_block(const float* x, const float* dy, __m512 acc[10],
                                              const Dims& d, const Block& b) {
  __m512 a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], a4 = acc[4], a5 = acc[5], a6 = acc[6],
         a7 = acc[7], a8 = acc[8], a9 = acc[9];
  __m512 carried[3];
  int carried_row = -1;  // the input row whose taps `carried` holds
  for (int oy = 0; oy < d.oh; ++oy) {
    const int iy0 = 2 * oy - d.pt;
    const __m512 g =
        _mm512_maskz_loadu_ps(b.out_mask, dy + static_cast<int64_t>(oy) * d.ow + b.ox0);
    a9 = _mm512_add_ps(a9, g);
    if (iy0 >= 0 && iy0 < d.h) {
      if (carried_row != iy0) load_taps<2>(x + static_cast<int64_t>(iy0) * d.w, b, carried);
      a0 = _mm512_fmadd_ps(g, carried[0], a0);
      a1 = _mm512_fmadd_ps(g, carried[1], a1);
      a2 = _mm512_fmadd_ps(g, carried[2], a2);
    }
    if (iy0 + 1 >= 0 && iy0 + 1 < d.h) {
      __m512 v[3];
      load_taps<2>(x + static_cast<int64_t>(iy0 + 1) * d.w, b, v);
      a3 = _mm512_fmadd_ps(g, v[0], a3);
      a4 = _mm512_fmadd_ps(g, v[1], a4);
      a5 = _mm512_fmadd_ps(g, v[2], a5);
    }
    if (iy0 + 2 >= 0 && iy0 + 2 < d.h) {
      load_taps<2>(x + static_cast<int64_t>(iy0 + 2) * d.w, b, carried);
      carried_row = iy0 + 2;
      a6 = _mm512_fmadd_ps(g, carried[0], a6);
      a7 = _mm512_fmadd_ps(g, carried[1], a7);
      a8 = _mm512_fmadd_ps(g, carried[2], a8);
    }
  }
  acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3, acc[4] = a4;
  acc[5] = a5, acc[6] = a6, acc[7] = a7, acc[8] = a8, acc[9] = a9;
}

// acc[ky * 3 + kx] += dy[oy][ox] * x[S oy - pt + ky][S ox - pl + kx]; acc[9] += dy (the bias).
// The ten sums live in named registers while the plane runs (an array indexed by a run-time ky
// would be kept in memory).
template <int S, class Block>
MINNOW_AVX512 void weights_plane(const float* x, const float* dy, __m512 acc[10], const Dims& d,
                                 Blocks<Block> blocks) {
  if constexpr (S == 2) {
    if (blocks.n == 1) return weights_plane_s2_one_block(x, dy, acc, d, blocks.p[0]);
  }
  __m512 a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], a4 = acc[4], a5 = acc[5], a6 = acc[6],
         a7 = acc[7], a8 = acc[8], a9 = acc[9];
  for (int oy = 0; oy < d.oh; ++oy) {
    const int iy0 = S * oy - d.pt;
    const float* dyrow = dy + static_cast<int64_t>(oy) * d.ow;
    const float* r0 = x + static_cast<int64_t>(iy0) * d.w;
    const bool has0 = iy0 >= 0 && iy0 < d.h, has1 = iy0 + 1 >= 0 && iy0 + 1 < d.h,
               has2 = iy0 + 2 >= 0 && iy0 + 2 < d.h;
    for (int bi = 0; bi < blocks.n; ++bi) {
      const Block& b = blocks.p[bi];
      const __m512 g = _mm512_maskz_loadu_ps(b.out_mask, dyrow + b.ox0);
      a9 = _mm512_add_ps(a9, g);
      if (has0) accumulate_row<S>(r0, b, g, a0, a1, a2);
      if (has1) accumulate_row<S>(r0 + d.w, b, g, a3, a4, a5);
      if (has2) accumulate_row<S>(r0 + 2 * d.w, b, g, a6, a7, a8);
    }
  }
  acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3, acc[4] = a4;
  acc[5] = a5, acc[6] = a6, acc[7] = a7, acc[8] = a8, acc[9] = a9;
}

// Planes are small and read row by row with masked loads, which the hardware prefetchers follow
// poorly: the loops ask for the next planes (kernels/prefetch.h); on 28x28 planes this doubled
// the speed.
constexpr int64_t kPrefetchPlanes = 2;  // measured best of 1, 2, 4, 8 (cold caches)

// Channels [c0, c1): their dx planes (when dx is set) and their weight/bias gradients over the
// batch. Samples run in the outer loop, so consecutive planes are next to each other in memory;
// the gradient sums wait in `acc` ([c1 - c0][10] vectors).
template <int S>
MINNOW_AVX512 void backward_channel_range(int64_t c0, int64_t c1, const ConvGeometry& g,
                                          const Dims& d, OutBlocks ob, InBlocks ib, const float* x,
                                          const float* dy, const float* w, float* dx, float* dw,
                                          float* db, __m512* acc) {
  const int64_t hw = g.h * g.w, ohw = g.ohw(), C = g.c;
  if (dw) {
    for (int64_t i = 0; i < (c1 - c0) * 10; ++i) acc[i] = _mm512_setzero_ps();
  }
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t p = n * C + c;
      // Masked loads from memory that is not cached yet are slow: ask for a plane ahead.
      if (c + kPrefetchPlanes < c1) {
        const int64_t q = p + kPrefetchPlanes;
        prefetch_floats(dy + q * ohw, ohw);
        if (dw) prefetch_floats(x + q * hw, hw);
        if (dx) prefetch_floats(dx + q * hw, hw, /*for_write=*/true);
      }
      if (dx) backward_data_plane<S>(dy + p * ohw, w + c * 9, dx + p * hw, d, ib);
      if (dw) weights_plane<S>(x + p * hw, dy + p * ohw, acc + (c - c0) * 10, d, ob);
    }
  }
  if (!dw) return;
  for (int64_t c = c0; c < c1; ++c) {
    const __m512* a = acc + (c - c0) * 10;
    for (int t = 0; t < 9; ++t) dw[c * 9 + t] = _mm512_reduce_add_ps(a[t]);
    if (db) db[c] = _mm512_reduce_add_ps(a[9]);
  }
}

// Each thread takes a contiguous range of channels. (No vector types in this function itself:
// the OpenMP region is outlined into a function that does not inherit the AVX-512 target
// attribute.)
template <int S>
void backward_channels(const ConvGeometry& g, const Dims& d, OutBlocks ob, InBlocks ib,
                       const float* x, const float* dy, const float* w, float* dx, float* dw,
                       float* db, float* scratch) {
#pragma omp parallel if (g.n * g.c > 1)
  {
    const int64_t threads = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t c0 = g.c * id / threads, c1 = g.c * (id + 1) / threads;
    if (c1 > c0) {
      backward_channel_range<S>(c0, c1, g, d, ob, ib, x, dy, w, dx, dw, db,
                                reinterpret_cast<__m512*>(scratch) + c0 * 10);
    }
  }
}

template <int S>
void forward_planes(const ConvGeometry& g, const Dims& d, OutBlocks ob, const float* x,
                    const float* w, const float* b, float* y) {
  const int64_t planes = g.n * g.c, hw = g.h * g.w, ohw = g.ohw();
#pragma omp parallel for schedule(static) if (planes > 1)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t c = p % g.c;
    if (p + 1 < planes) prefetch_floats(x + (p + 1) * hw, hw);
    forward_plane<S>(x + p * hw, w + c * 9, b ? b[c] : 0.0f, y + p * ohw, d, ob);
  }
}

Dims dims_of(const ConvGeometry& g) {
  return {static_cast<int>(g.h),    static_cast<int>(g.w),  static_cast<int>(g.oh()),
          static_cast<int>(g.ow()), static_cast<int>(g.pt), static_cast<int>(g.pl)};
}

}  // namespace

bool ConvDepthwise3x3::supports(const ConvGeometry& g) {
  // Planes up to 2^20 columns keep every index in int; padding below 3 keeps each output's
  // taps within the loads of its block.
  return __builtin_cpu_supports("avx512f") && g.is_depthwise() && g.kh == 3 && g.kw == 3 &&
         g.dh == 1 && g.dw == 1 && g.sh == g.sw && (g.sh == 1 || g.sh == 2) && g.pt < 3 &&
         g.pl < 3 && g.h < (1 << 20) && g.w < (1 << 20) && g.oh() > 0 && g.ow() > 0;
}

ConvDepthwise3x3::ConvDepthwise3x3(const ConvGeometry& g) : g_(g) {
  if (!supports(g)) {
    throw Error("depthwise 3x3 AVX-512 strategy does not apply to this convolution or CPU");
  }
  const int s = static_cast<int>(g.sh), pl = static_cast<int>(g.pl);
  const int w = static_cast<int>(g.w), ow = static_cast<int>(g.ow());
  for (int ox0 = 0; ox0 < ow; ox0 += 16) {
    Dw3x3OutBlock b{};
    b.ox0 = ox0;
    b.out_mask = range_mask(ox0, 0, ow);
    if (s == 1) {
      for (int kx = 0; kx < 3; ++kx) {
        b.load_off[kx] = ox0 - pl + kx;
        b.load_mask[kx] = range_mask(b.load_off[kx], 0, w);
      }
    } else {
      // Elements base .. base + 32 (lane 0 of the third load is the last tap of lane 15).
      const int base = 2 * ox0 - pl;
      for (int k = 0; k < 3; ++k) {
        b.load_off[k] = base + 16 * k;
        b.load_mask[k] = range_mask(base + 16 * k, 0, w);
      }
      b.load_mask[2] &= 1;
    }
    out_blocks_.push_back(b);
  }
  for (int ix0 = 0; ix0 < w; ix0 += 16) {
    Dw3x3InBlock b{};
    b.ix0 = ix0;
    b.out_mask = range_mask(ix0, 0, w);
    for (int kx = 0; kx < 3; ++kx) {
      // Input column ix takes dy column (ix + pl - kx) / s when that divides evenly.
      const int t0 = ix0 + pl - kx;
      const int o0 = t0 >= 0 ? t0 / s : -((s - 1 - t0) / s);  // floor(t0 / s)
      b.dy_off[kx] = o0;
      b.dy_mask[kx] = range_mask(o0, 0, ow);
      b.lane0_even[kx] = t0 - s * o0 == 0;
    }
    in_blocks_.push_back(b);
  }
}

MINNOW_AVX512 void ConvDepthwise3x3::forward_plane(const float* x, const float* w9, float bias,
                                                   float* y) const {
  const OutBlocks ob{out_blocks_.data(), static_cast<int>(out_blocks_.size())};
  if (g_.sh == 1) return kernels::forward_plane<1>(x, w9, bias, y, dims_of(g_), ob);
  kernels::forward_plane<2>(x, w9, bias, y, dims_of(g_), ob);
}

MINNOW_AVX512 void ConvDepthwise3x3::backward_plane(const float* x, const float* dy,
                                                    const float* w9, float* dx, float* sums) const {
  const OutBlocks ob{out_blocks_.data(), static_cast<int>(out_blocks_.size())};
  const InBlocks ib{in_blocks_.data(), static_cast<int>(in_blocks_.size())};
  const Dims d = dims_of(g_);
  __m512* acc = reinterpret_cast<__m512*>(sums);
  if (g_.sh == 1) {
    if (dx) backward_data_plane<1>(dy, w9, dx, d, ib);
    return weights_plane<1>(x, dy, acc, d, ob);
  }
  if (dx) backward_data_plane<2>(dy, w9, dx, d, ib);
  weights_plane<2>(x, dy, acc, d, ob);
}

MINNOW_AVX512 void ConvDepthwise3x3::reduce_sums(const float* sums, float* dw9, float* db) {
  const __m512* a = reinterpret_cast<const __m512*>(sums);
  for (int t = 0; t < 9; ++t) dw9[t] = _mm512_reduce_add_ps(a[t]);
  if (db) *db = _mm512_reduce_add_ps(a[9]);
}

void ConvDepthwise3x3::forward(const float* x, const float* w, const float* b, float* y, bool) {
  const OutBlocks ob{out_blocks_.data(), static_cast<int>(out_blocks_.size())};
  if (g_.sh == 1) return forward_planes<1>(g_, dims_of(g_), ob, x, w, b, y);
  forward_planes<2>(g_, dims_of(g_), ob, x, w, b, y);
}

void ConvDepthwise3x3::backward_data(const float* dy, const float* w, float* dx) {
  backward(nullptr, dy, w, dx, nullptr, nullptr);
}

void ConvDepthwise3x3::backward_weights(const float* x, const float* dy, float* dw, float* db) {
  backward(x, dy, nullptr, nullptr, dw, db);
}

void ConvDepthwise3x3::backward(const float* x, const float* dy, const float* w, float* dx,
                                float* dw, float* db) {
  const OutBlocks ob{out_blocks_.data(), static_cast<int>(out_blocks_.size())};
  const InBlocks ib{in_blocks_.data(), static_cast<int>(in_blocks_.size())};
  // Ten vector gradient sums per channel (FloatBuffer is 64-byte aligned).
  float* acc = dw ? acc_.get(g_.c * 10 * 16) : nullptr;
  if (g_.sh == 1) return backward_channels<1>(g_, dims_of(g_), ob, ib, x, dy, w, dx, dw, db, acc);
  backward_channels<2>(g_, dims_of(g_), ob, ib, x, dy, w, dx, dw, db, acc);
}

}  // namespace minnow::kernels
