#include "kernels/qconv_pointwise_nhwc.h"

#include <immintrin.h>

// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_* as a "maybe uninitialized",
// in some inlined tiles "uninitialized", merge source); the values are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "kernels/qconv_vnni_common.h"
#include "minnow/error.h"

namespace minnow::kernels {
namespace {

// Pixels per step of the outer loop: their inputs stay in L1 while every output block is
// computed from them.
constexpr int64_t kPixelChunk = 64;

// Walks the input pixels of consecutive output pixels of a strided layer (no padding): one
// division at the start instead of four per pixel (int64 divisions cost more than the whole
// multiply-add work of a small shortcut convolution: resnet8's 16 -> 32 stride-2 shortcut took
// 2.9 us at batch 1, most of it here).
class StridedPixels {
 public:
  StridedPixels(const ConvGeometry& g, const uint8_t* x, int64_t m) : g_(g), x_(x), ow_(g.ow()) {
    const int64_t per_sample = g.oh() * ow_;
    n_ = m / per_sample;
    oy_ = m % per_sample / ow_;
    ox_ = m % ow_;
  }
  // The input pixel of the current output pixel; then moves to the next.
  const uint8_t* next() {
    const uint8_t* at = x_ + ((n_ * g_.h + oy_ * g_.sh) * g_.w + ox_ * g_.sw) * g_.c;
    if (++ox_ == ow_) {
      ox_ = 0;
      if (++oy_ == g_.oh()) {
        oy_ = 0;
        ++n_;
      }
    }
    return at;
  }

 private:
  const ConvGeometry& g_;
  const uint8_t* x_;
  int64_t ow_, n_, oy_, ox_;
};

// Requantizes four accumulators of 16 channels with one PackedRequant into 64 bytes, the
// accumulators' channels in their order (the packs leave dword 4L + d holding channels
// 16d + 4L .. + 3, which the permute undoes).
template <DType Out>
struct PackedStore {
  PackedRequant<Out> requant;
  __m512i order;

  PackedStore() = default;
  MINNOW_VNNI explicit PackedStore(const Epilogue& e) : requant(e), order(packed_vector_order()) {}

  MINNOW_VNNI __m512i bytes(const __m512i* acc, const __m512* mult) const {
    return _mm512_permutexvar_epi32(order, requant.pack(acc, mult));
  }
};

// With a fused residual: stores 64 consecutive 8-bit outputs from four accumulators, acc[j]
// (requantized by *rq[j]) covering outputs at + 16 j, packed as PackedRequant packs (the Add's
// results are clamped to the output's range minus out_zp before rounding, so no pack saturates).
// Four 16-byte narrowing stores cost more than the packs (1x1 layers whose residual Add adds
// a float step chain per 16 outputs to a handful of dot products).
template <DType Out>  // u8 or i8
struct PackedSumStore {
  __m512i order, zp;

  PackedSumStore() = default;
  MINNOW_VNNI explicit PackedSumStore(const Epilogue& e)
      : order(packed_vector_order()), zp(_mm512_set1_epi16(static_cast<int16_t>(e.out_zp))) {}

  // Four vectors of the Add's rounded results (Requantizer::added, without out_zp) packed to
  // bytes as PackedRequant packs (dword 4L + d: vector d's lanes 4L .. 4L + 3).
  MINNOW_VNNI __m512i pack(const __m512i* q) const {
    const __m512i a = _mm512_adds_epi16(_mm512_packs_epi32(q[0], q[1]), zp);
    const __m512i b = _mm512_adds_epi16(_mm512_packs_epi32(q[2], q[3]), zp);
    return Out == DType::kU8 ? _mm512_packus_epi16(a, b) : _mm512_packs_epi16(a, b);
  }

  MINNOW_VNNI void store(const __m512i* acc, const Requantizer<Out, true>* const* rq, void* y,
                         int64_t at) const {
    __m512i q[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) q[j] = rq[j]->added(acc[j], 16, at + 16 * j);
    _mm512_storeu_si512(static_cast<int8_t*>(y) + at, _mm512_permutexvar_epi32(order, pack(q)));
  }
};

// P input pixels (xp[p]; unstrided: x0 + p * c) times V 16-channel weight blocks from o0:
// P * V accumulators. Packed (8-bit output, no residual): V = 4 with all 64 channels present,
// or V = 2 or 1, four accumulators at a time, with any channels past o0 + 16 V.
// packed_sum (residual, 8-bit output): the outputs come in runs of 64 bytes, one pixel's 64
// channels (V = 4) or the 32 or 16 channels of all of them (V = 2 and o = 32, V = 1 and o = 16).
template <int P, int V, DType Out, bool Sum, bool Strided, bool Packed = false>
MINNOW_VNNI void tile(const uint8_t* x0, const uint8_t* const* xp, int64_t c, const int8_t* wq,
                      int64_t opad, int64_t o0, int64_t o, const Requantizer<Out, Sum>* rq, void* y,
                      int64_t y_at, const PackedStore<Out>* packed = nullptr,
                      bool packed_sum = false) {
  __m512i acc[P][V];
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[p][v] = rq[v].offset;
  }
  for (int64_t k = 0; k < c; k += 4) {
    const int8_t* wk = wq + (k * opad + o0 * 4);  // [k / 4][opad][4]
    __m512i w[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) w[v] = _mm512_loadu_si512(wk + 64 * v);
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) {
      const __m512i a = broadcast_quad((Strided ? xp[p] : x0 + p * c) + k);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[p][v] = _mm512_dpbusd_epi32(acc[p][v], a, w[v]);
    }
  }
  // Pixels per 64-byte run (V = 4: one; V = 2: two; V = 1: four).
  constexpr int kRun = 4 / V;
  if constexpr (Packed && V != 3 && P % kRun == 0) {
    // A run's pixels are each 16 V bytes of the output row; one store when they are adjacent
    // (all channels in the tile), else one masked store per pixel. Four accumulators per
    // PackedRequant instead of Requantizer::store's per accumulator: mobilenet_v2 at batch 26,
    // one thread, 16 -> 96 expansion (a 32-channel tail) 114.6 -> 101.1 us, 96 -> 24 projection
    // 37.5 -> 34.2 us, 144 -> 32 13.2 -> 12.4 us (three runs each).
    const int64_t lanes = std::min<int64_t>(16 * V, o - o0);
#pragma GCC unroll 16
    for (int p = 0; p < P; p += kRun) {
      int8_t* dst = static_cast<int8_t*>(y) + y_at + p * o + o0;
      if constexpr (V == 1) {
        const __m512i run[4] = {acc[p][0], acc[p + 1][0], acc[p + 2][0], acc[p + 3][0]};
        store_four_pixels(packed->requant, run, rq[0].mult, lanes, dst, o);
        continue;
      }
      __m512i run[4];
      __m512 mult[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        run[j] = acc[p + j / V][j % V];
        mult[j] = rq[j % V].mult;
      }
      const __m512i bytes = packed->bytes(run, mult);
      if (V == 4 || o == 16 * V) {
        _mm512_storeu_si512(dst, bytes);
      } else {  // V = 2
        const auto mask = static_cast<__mmask32>(~0u >> (32 - lanes));
        _mm256_mask_storeu_epi8(dst, mask, _mm512_castsi512_si256(bytes));
        _mm256_mask_storeu_epi8(dst + o, mask, _mm512_extracti64x4_epi64(bytes, 1));
      }
    }
    return;
  }
  if constexpr (Sum && Out != DType::kF32 && (V == 4 || V == 2 || V == 1) && P % kRun == 0) {
    if (packed_sum) {
      const PackedSumStore<Out> store(rq[0].e);
#pragma GCC unroll 16
      for (int p = 0; p < P; p += kRun) {
        __m512i run[4];
        const Requantizer<Out, Sum>* r[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
          run[j] = acc[p + j / V][j % V];
          r[j] = &rq[j % V];
        }
        store.store(run, r, y, y_at + p * o + o0);
      }
      return;
    }
  }
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      const int64_t c0 = o0 + 16 * v;
      rq[v].store(acc[p][v], std::min<int64_t>(16, o - c0), y, y_at + p * o + c0);
    }
  }
}

// Pixels [first, last) for output channels [o0, o0 + 16 V).
template <int V, DType Out, bool Sum, bool Packed = false>
MINNOW_VNNI void block(const ConvGeometry& g, const uint8_t* x, const int8_t* wq, int64_t opad,
                       int64_t o0, const Epilogue& e, void* y, int64_t first, int64_t last) {
  Requantizer<Out, Sum> rq[V];
  for (int v = 0; v < V; ++v) rq[v] = Requantizer<Out, Sum>(e, o0 + 16 * v);
  PackedStore<Out> packed;
  if constexpr (Packed) packed = PackedStore<Out>(e);
  // 16 accumulators: 4 pixels by 4 blocks, or 8 by 2 (narrow outputs, e.g. MobileNetV2's
  // 24-channel projections), or 16 by 1, so each broadcast feeds enough multiply-adds.
  constexpr int P = 16 / V >= 8 ? 16 / V : 4;
  const int64_t c = g.c, o = g.o;
  const bool strided = g.sh != 1 || g.sw != 1;
  const bool packed_sum = Sum && Out != DType::kF32 &&
                          (V == 4   ? o - o0 >= 64
                           : V == 2 ? o == 32
                                    : V == 1 && o == 16);
  StridedPixels walk(g, x, first);
  const uint8_t* xp[P];
  int64_t m = first;
  for (; m + P <= last; m += P) {
    if (!strided) {
      tile<P, V, Out, Sum, false, Packed>(x + m * c, xp, c, wq, opad, o0, o, rq, y, m * o, &packed,
                                          packed_sum);
      continue;
    }
    for (int p = 0; p < P; ++p) xp[p] = walk.next();
    tile<P, V, Out, Sum, true, Packed>(x, xp, c, wq, opad, o0, o, rq, y, m * o, &packed,
                                       packed_sum);
  }
  for (; m < last; ++m) {
    const uint8_t* at = strided ? walk.next() : x + m * c;
    tile<1, V, Out, Sum, false, Packed>(at, xp, c, wq, opad, o0, o, rq, y, m * o, &packed,
                                        packed_sum);
  }
}

// Output channels [o0, o) when 16 < o - o0 <= 24 (MobileNetV2's 24-channel projections), 8-bit
// outputs: the first 16 channels of each pixel in one accumulator, the last t <= 8 of a pixel
// pair in one together, pixel 2i's in lanes 0-7 and 2i + 1's in lanes 8-15 (the pair's
// broadcast quads blended into one vector, weights `wtail` [c / 4][16][4] the tail's twice).
// Three vpdpbusd per pixel pair and four input channels instead of four, a quarter of them
// wasted on padding lanes: mobilenet_v2 at batch 26, one thread, 96 -> 24 33.5 -> 27.1 us, 144
// -> 24 with the residual 62.9 -> 47.3 us (three runs each). Requantized as PackedRequant (no
// residual; `requant`, exact for these constants) or PackedSumStore do, then stored per pixel, or
// at once when the pair's 48 bytes are adjacent (o = 24).
template <int P, DType Out, bool Sum, bool Strided>
MINNOW_VNNI void tail_pair_tile(const uint8_t* x0, const uint8_t* const* xp, int64_t c,
                                const int8_t* wq, const int8_t* wtail, int64_t opad, int64_t o0,
                                int64_t o, const Requantizer<Out, Sum>& head,
                                const Requantizer<Out, Sum>& tail,
                                const PackedRequant<Out>& requant, void* y, int64_t y_at) {
  static_assert(P % 2 == 0 && Out != DType::kF32);
  __m512i acc[P], mix[P / 2];
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) acc[p] = head.offset;
#pragma GCC unroll 8
  for (int i = 0; i < P / 2; ++i) mix[i] = tail.offset;
  for (int64_t k = 0; k < c; k += 4) {
    const __m512i w = _mm512_loadu_si512(wq + (k * opad + o0 * 4));
    const __m512i wt = _mm512_loadu_si512(wtail + k * 16);
#pragma GCC unroll 8
    for (int i = 0; i < P / 2; ++i) {
      const __m512i a = broadcast_quad((Strided ? xp[2 * i] : x0 + 2 * i * c) + k);
      const __m512i b = broadcast_quad((Strided ? xp[2 * i + 1] : x0 + (2 * i + 1) * c) + k);
      acc[2 * i] = _mm512_dpbusd_epi32(acc[2 * i], a, w);
      acc[2 * i + 1] = _mm512_dpbusd_epi32(acc[2 * i + 1], b, w);
      mix[i] = _mm512_dpbusd_epi32(mix[i], _mm512_mask_blend_epi32(0xFF00, a, b), wt);
    }
  }
  const int64_t t = o - o0 - 16;
  // The packs leave dword 4L + d holding vector d's lanes 4L .. 4L + 3, for vectors (pixel 2i's
  // head, the pair's tail, pixel 2i + 1's head, unused): this puts pixel 2i's 24 channels
  // first, then pixel 2i + 1's.
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 2, 6, 10, 14, 9, 13, 3, 7, 11, 15);
  const auto one = static_cast<__mmask64>(~0ull >> (48 - t));  // 16 + t bytes
  PackedSumStore<Out> sums;
  if constexpr (Sum) sums = PackedSumStore<Out>(head.e);
#pragma GCC unroll 8
  for (int i = 0; i < P / 2; ++i) {
    const int64_t at = y_at + 2 * i * o + o0;  // pixel 2i's first channel
    __m512i bytes;
    if constexpr (Sum) {
      const __m512i q[4] = {head.added(acc[2 * i], 16, at),
                            tail.added_to(mix[i], tail.sum_pair_at(t, at + 16, at + o + 16)),
                            head.added(acc[2 * i + 1], 16, at + o), _mm512_setzero_si512()};
      bytes = sums.pack(q);
    } else {
      const __m512i q[4] = {acc[2 * i], mix[i], acc[2 * i + 1], mix[i]};
      const __m512 mult[4] = {head.mult, tail.mult, head.mult, tail.mult};
      bytes = requant.pack(q, mult);
    }
    bytes = _mm512_permutexvar_epi32(order, bytes);
    int8_t* dst = static_cast<int8_t*>(y) + at;
    if (o == 24) {
      _mm512_mask_storeu_epi8(dst, ~0ull >> 16, bytes);
    } else {
      _mm512_mask_storeu_epi8(dst, one, bytes);
      _mm512_mask_storeu_epi8(dst + o, one, _mm512_alignr_epi64(bytes, bytes, 3));
    }
  }
}

// Pixels [first, last) for output channels [o0, o) with 16 < o - o0 <= 24 (tail_pair_tile).
template <DType Out, bool Sum>
MINNOW_VNNI void tail_pair_block(const ConvGeometry& g, const uint8_t* x, const int8_t* wq,
                                 const int8_t* wtail, int64_t opad, int64_t o0, const Epilogue& e,
                                 void* y, int64_t first, int64_t last) {
  const Requantizer<Out, Sum> head(e, o0);
  // The tail's constants in lanes 0-7 and again in 8-15.
  Requantizer<Out, Sum> tail(e, o0 + 16);
  const __m512i twice = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
  tail.mult = _mm512_permutexvar_ps(twice, tail.mult);
  tail.offset = _mm512_permutexvar_epi32(twice, tail.offset);
  const PackedRequant<Out> requant(e);
  constexpr int P = 8;
  const int64_t c = g.c, o = g.o;
  const bool strided = g.sh != 1 || g.sw != 1;
  StridedPixels walk(g, x, first);
  const uint8_t* xp[P];
  int64_t m = first;
  for (; m + P <= last; m += P) {
    if (!strided) {
      tail_pair_tile<P, Out, Sum, false>(x + m * c, xp, c, wq, wtail, opad, o0, o, head, tail,
                                         requant, y, m * o);
      continue;
    }
    for (int p = 0; p < P; ++p) xp[p] = walk.next();
    tail_pair_tile<P, Out, Sum, true>(x, xp, c, wq, wtail, opad, o0, o, head, tail, requant, y,
                                      m * o);
  }
  for (; m + 2 <= last; m += 2) {
    xp[0] = strided ? walk.next() : x + m * c;
    xp[1] = strided ? walk.next() : x + (m + 1) * c;
    tail_pair_tile<2, Out, Sum, true>(x, xp, c, wq, wtail, opad, o0, o, head, tail, requant, y,
                                      m * o);
  }
  if (m < last) {  // one pixel left: the general tile
    const Requantizer<Out, Sum> rq[2] = {head, Requantizer<Out, Sum>(e, o0 + 16)};
    xp[0] = strided ? walk.next() : x + m * c;
    tile<1, 2, Out, Sum, true>(x, xp, c, wq, opad, o0, o, rq, y, m * o);
  }
}

template <DType Out, bool Sum>
void pixels(const ConvGeometry& g, const uint8_t* x, const int8_t* wq, const int8_t* wtail,
            int64_t opad, const Epilogue& e, bool packed_ok, void* y, int64_t first, int64_t last) {
  constexpr bool kCanPack = Out != DType::kF32 && !Sum;
  for (int64_t m0 = first; m0 < last; m0 += kPixelChunk) {
    const int64_t m1 = std::min(last, m0 + kPixelChunk);
    for (int64_t o0 = 0; o0 < g.o; o0 += 64) {
      switch (std::min<int64_t>(4, (g.o - o0 + 15) / 16)) {
        case 4:
          if (kCanPack && packed_ok && g.o - o0 >= 64) {
            block<4, Out, Sum, kCanPack>(g, x, wq, opad, o0, e, y, m0, m1);
          } else {
            block<4, Out, Sum>(g, x, wq, opad, o0, e, y, m0, m1);
          }
          break;
        case 3:
          block<3, Out, Sum>(g, x, wq, opad, o0, e, y, m0, m1);
          break;
        case 2:
          if constexpr (Out != DType::kF32) {
            if (wtail && g.o - o0 <= 24 && (Sum || packed_ok)) {
              tail_pair_block<Out, Sum>(g, x, wq, wtail, opad, o0, e, y, m0, m1);
              break;
            }
          }
          if (kCanPack && packed_ok) {
            block<2, Out, Sum, kCanPack>(g, x, wq, opad, o0, e, y, m0, m1);
          } else {
            block<2, Out, Sum>(g, x, wq, opad, o0, e, y, m0, m1);
          }
          break;
        default:
          if (kCanPack && packed_ok) {
            block<1, Out, Sum, kCanPack>(g, x, wq, opad, o0, e, y, m0, m1);
          } else {
            block<1, Out, Sum>(g, x, wq, opad, o0, e, y, m0, m1);
          }
      }
    }
  }
}

}  // namespace

bool QConvPointwiseNhwc::supports(const ConvGeometry& g, DType x) {
  return vnni_kernels_supported() && x == DType::kU8 && g.kh == 1 && g.kw == 1 && g.pt == 0 &&
         g.pl == 0 && g.pb == 0 && g.pr == 0 && g.group == 1 && g.c % 4 == 0 && g.c > 0 && g.o > 0;
}

QConvPointwiseNhwc::QConvPointwiseNhwc(const ConvGeometry& g, DType x, DType y)
    : QConvOwnKernel("QConvPointwiseNhwc", y, static_cast<size_t>(g.o * g.c), (g.o + 15) / 16 * 16),
      g_(g),
      y_dtype_(y) {
  if (!supports(g, x)) throw Error("QConvPointwiseNhwc: unsupported geometry or CPU");
  opad_ = (g.o + 15) / 16 * 16;
  wq_.get(g.c * opad_);
  const int64_t tail = g.o % 64;
  tail_pair_ = tail > 16 && tail <= 24;
  if (tail_pair_) wtail_.get(g.c * 16);
}

void QConvPointwiseNhwc::prepare(const QLinearParams& p, const int8_t* w) {
  const bool changed = weights_.changed(w);
  if (changed) {
    int8_t* wq = wq_.data();
    std::fill(wq, wq + g_.c * opad_, int8_t{0});
    for (int64_t o = 0; o < g_.o; ++o) {
      int32_t sum = 0;
      for (int64_t k = 0; k < g_.c; ++k) {
        const int8_t v = w[o * g_.c + k];
        wq[((k / 4) * opad_ + o) * 4 + k % 4] = v;
        sum += v;
      }
      wsum_[static_cast<size_t>(o)] = sum;
    }
    if (tail_pair_) {
      // Channels from o0 = o / 64 * 64 + 16 (the tail of tail_pair_tile) in lanes 0-7, again in
      // 8-15; 0 past o.
      const int64_t o0 = g_.o / 64 * 64 + 16;
      int8_t* wt = wtail_.data();
      std::fill(wt, wt + g_.c * 16, int8_t{0});
      for (int64_t k = 0; k < g_.c; ++k) {
        for (int64_t l = 0; l < 8 && o0 + l < g_.o; ++l) {
          const int8_t v = w[(o0 + l) * g_.c + k];
          wt[(k / 4 * 16 + l) * 4 + k % 4] = v;
          wt[(k / 4 * 16 + 8 + l) * 4 + k % 4] = v;
        }
      }
    }
  }
  if (update_constants(p, p.x_zp, g_.o, changed)) packed_ok_ = packed_requant_exact(g_.c);
}

void QConvPointwiseNhwc::run_pixels(const QLinearParams& p, const uint8_t* x, void* y,
                                    int64_t first, int64_t last) const {
  const Epilogue e = Epilogue::of(p, mult_.data(), offset_.data());
  with_output_dtype(y_dtype_, [&]<DType Out>() {
    const int8_t* wtail = tail_pair_ ? wtail_.data() : nullptr;
    if (p.sum) return pixels<Out, true>(g_, x, wq_.data(), wtail, opad_, e, false, y, first, last);
    pixels<Out, false>(g_, x, wq_.data(), wtail, opad_, e, packed_ok_, y, first, last);
  });
}

void QConvPointwiseNhwc::forward(const QLinearParams& p, const void* x, const int8_t* w, void* y) {
  prepare(p, w);
  const auto* xb = static_cast<const uint8_t*>(x);
  const int64_t pixels = g_.n * g_.ohw();
  const int64_t macs = pixels * g_.c * g_.o;
  // About 8 blocks per thread: enough to even out a slow core, few enough that handing them out
  // costs nothing next to the work. Small layers: about 4 blocks per thread of whole tiles.
  const int threads = omp_get_max_threads();
  const int64_t block =
      pixels >= 8 * threads * kPixelChunk
          ? pixels / (8 * threads * kPixelChunk) * kPixelChunk
          : std::max<int64_t>(16, (pixels + 4 * threads * 16 - 1) / (4 * threads * 16) * 16);
  share_out(pixels, block, macs, threads,
            [&](int64_t first, int64_t last, int) { run_pixels(p, xb, y, first, last); });
}

}  // namespace minnow::kernels
