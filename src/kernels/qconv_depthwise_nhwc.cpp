#include "kernels/qconv_depthwise_nhwc.h"

#include <immintrin.h>

// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_* as a "maybe uninitialized"
// merge source); the values are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "kernels/qconv_vnni_common.h"
#include "minnow/error.h"

namespace minnow::kernels {
namespace {

using QuadLayout = QConvDepthwiseNhwc::QuadLayout;

// One input row as the quads read it: position p of the padded row (pl zero-point positions,
// the w pixels, then the zero point again) is `pitch` bytes per position from `pixels` inside
// the image, else the zero point's `fill`. A row outside the image has no pixels.
struct RowSource {
  const uint8_t* pixels;  // position pl, or nullptr: all padding
  const uint8_t* fill;    // cpad bytes of the zero point
  int64_t pitch, pl, w;

  const uint8_t* at(int64_t position) const {
    const int64_t i = position - pl;
    return pixels && i >= 0 && i < w ? pixels + i * pitch : fill;
  }
};

// Where channel ch sits in the quads, weights and constants: channels below `grouped` (a
// multiple of 64) in slot order, the interleaving build_quads gives them (within each group of
// 64, channel 16L + 4b + k at 16b + 4L + k); the rest in order.
inline int64_t slot_of(int64_t ch, int64_t grouped) {
  if (ch >= grouped) return ch;
  const int64_t r = ch % 64, lane = r / 16, b = r % 16 / 4, k = r % 4;
  return ch - r + 16 * b + 4 * lane + k;
}

// The tap quads of one padded row: quad j of column m, channel c, holds bytes
// row[m * pitch + 4j + t][c] for t < taps (0 past that), laid out [j][m][cpad][4]. The layout
// and the source are copied to locals first: the quads are stored through a byte pointer,
// which may alias anything, and the compiler would otherwise reload every field after every
// store (that reloading was a third of the 16-channel layer's time).
MINNOW_VNNI void build_quads(const QuadLayout& layout, int64_t cpad, int64_t grouped,
                             const RowSource& source, uint8_t* out) {
  // Byte 4c + t of a quad vector comes from byte c of the t-th 16-byte lane.
  alignas(64) static constexpr uint8_t kIndex[64] = {
      0,  16, 32, 48, 1,  17, 33, 49, 2,  18, 34, 50, 3,  19, 35, 51, 4,  20, 36, 52, 5,  21,
      37, 53, 6,  22, 38, 54, 7,  23, 39, 55, 8,  24, 40, 56, 9,  25, 41, 57, 10, 26, 42, 58,
      11, 27, 43, 59, 12, 28, 44, 60, 13, 29, 45, 61, 14, 30, 46, 62, 15, 31, 47, 63};
  const __m512i index = _mm512_load_si512(kIndex);
  const QuadLayout q = layout;
  const RowSource row = source;
  // The quads of column m from the taps' pixels at[t] (t < Taps). Taps is a constant, not a
  // run-time count tested per tap: stride-2 layers at batch 26, one thread, 64 channels 28x28
  // 52.9 -> 48.6 us, mobilenet_v2's 96 channels 64.4 -> 62.1 us.
  auto column = [&]<int Taps>(int64_t j, int64_t m, const uint8_t* const* at) MINNOW_VNNI {
    uint8_t* dst = out + (j * q.columns + m) * cpad * 4;
    // Channels [0, grouped): 64 at a time, interleaved within 128-bit lanes, which leaves them
    // in slot order (slot_of).
    for (int64_t c0 = 0; c0 < grouped; c0 += 64) {
      __m512i px[4];
#pragma GCC unroll 4
      for (int t = 0; t < 4; ++t) {
        px[t] = t < Taps ? _mm512_loadu_si512(at[t] + c0) : _mm512_setzero_si512();
      }
      const __m512i a = _mm512_unpacklo_epi8(px[0], px[1]), b = _mm512_unpackhi_epi8(px[0], px[1]);
      const __m512i c = _mm512_unpacklo_epi8(px[2], px[3]), d = _mm512_unpackhi_epi8(px[2], px[3]);
      _mm512_storeu_si512(dst + 4 * c0, _mm512_unpacklo_epi16(a, c));
      _mm512_storeu_si512(dst + 4 * c0 + 64, _mm512_unpackhi_epi16(a, c));
      _mm512_storeu_si512(dst + 4 * c0 + 128, _mm512_unpacklo_epi16(b, d));
      _mm512_storeu_si512(dst + 4 * c0 + 192, _mm512_unpackhi_epi16(b, d));
    }
    for (int64_t c0 = grouped; c0 < cpad; c0 += 16) {
      auto tap = [&](int t) MINNOW_VNNI {
        return _mm_loadu_si128(reinterpret_cast<const __m128i*>(at[t] + c0));
      };
      __m512i lanes = _mm512_zextsi128_si512(tap(0));
      if constexpr (Taps > 1) lanes = _mm512_inserti32x4(lanes, tap(1), 1);
      if constexpr (Taps > 2) lanes = _mm512_inserti32x4(lanes, tap(2), 2);
      if constexpr (Taps > 3) lanes = _mm512_inserti32x4(lanes, tap(3), 3);
      _mm512_storeu_si512(dst + 4 * c0, _mm512_permutexvar_epi8(index, lanes));
    }
  };
  for (int64_t j = 0; j < q.per_row; ++j) {
    const int taps = static_cast<int>(std::min<int64_t>(4, q.row_taps - 4 * j));
    // Columns [inner_begin, inner_end) read pixels only: pl <= m * pitch + 4j and
    // m * pitch + 4j + taps <= pl + w.
    int64_t inner_begin = q.columns, inner_end = q.columns;
    if (row.pixels && row.w >= taps) {
      inner_begin =
          std::min(q.columns, std::max<int64_t>(0, row.pl - 4 * j + q.pitch - 1) / q.pitch);
      const int64_t room = row.pl + row.w - taps - 4 * j;  // the last column's m * pitch
      inner_end =
          room < 0 ? inner_begin : std::clamp<int64_t>(room / q.pitch + 1, inner_begin, q.columns);
    }
    const int64_t step = q.pitch * row.pitch;  // bytes from one column's first tap to the next
    const uint8_t* first = inner_begin < inner_end
                               ? row.pixels + (inner_begin * q.pitch + 4 * j - row.pl) * row.pitch
                               : nullptr;
    if (cpad == 16 && row.pitch == 16 && row.pixels) {
      // One 16-channel block: the taps' pixels are consecutive bytes, one load, edges included:
      // the taps outside the image are masked off (never read) and take the zero point, as do
      // the bytes past `taps` (their weights are 0).
      const __m512i fill = _mm512_set1_epi8(static_cast<char>(row.fill[0]));
      const auto bytes = static_cast<__mmask64>(~0ull >> (64 - 16 * taps));
      const auto base = reinterpret_cast<uintptr_t>(row.pixels);
      uint8_t* dst = out + j * q.columns * 64;
      auto masked = [&](int64_t m) MINNOW_VNNI {
        const int64_t i0 = m * q.pitch + 4 * j - row.pl;  // tap 0's pixel
        __mmask64 mask = bytes;
        if (m < inner_begin || m >= inner_end) {
          const int64_t lo = std::max<int64_t>(0, -i0), hi = std::min<int64_t>(taps, row.w - i0);
          mask =
              hi > lo ? static_cast<__mmask64>((~0ull >> (64 - 16 * (hi - lo))) << (16 * lo)) : 0;
        }
        const auto* at = reinterpret_cast<const void*>(base + static_cast<uintptr_t>(i0 * 16));
        _mm512_storeu_si512(dst + m * 64,
                            _mm512_permutexvar_epi8(index, _mm512_mask_loadu_epi8(fill, mask, at)));
      };
      if (taps < 4) {
        for (int64_t m = 0; m < q.columns; ++m) masked(m);
        continue;
      }
      // Four taps: the columns inside the image read their 64 bytes with a plain load.
      for (int64_t m = 0; m < inner_begin; ++m) masked(m);
      const uint8_t* px = first;
      for (int64_t m = inner_begin; m < inner_end; ++m, px += step) {
        _mm512_storeu_si512(dst + m * 64, _mm512_permutexvar_epi8(index, _mm512_loadu_si512(px)));
      }
      for (int64_t m = inner_end; m < q.columns; ++m) masked(m);
      continue;
    }
    auto sweep = [&]<int Taps>() MINNOW_VNNI {
      auto edge = [&](int64_t m) MINNOW_VNNI {
        const uint8_t* at[4];
        for (int t = 0; t < Taps; ++t) at[t] = row.at(m * q.pitch + 4 * j + t);
        column.template operator()<Taps>(j, m, at);
      };
      for (int64_t m = 0; m < inner_begin; ++m) edge(m);
      const uint8_t* px = first;
      for (int64_t m = inner_begin; m < inner_end; ++m, px += step) {
        const uint8_t* at[4] = {px, px + row.pitch, px + 2 * row.pitch, px + 3 * row.pitch};
        column.template operator()<Taps>(j, m, at);
      }
      for (int64_t m = inner_end; m < q.columns; ++m) edge(m);
    };
    switch (taps) {
      case 4:
        sweep.template operator()<4>();
        break;
      case 3:
        sweep.template operator()<3>();
        break;
      case 2:
        sweep.template operator()<2>();
        break;
      default:
        sweep.template operator()<1>();
    }
  }
}

// One output row from the quad rows of its K input rows. Each 16-channel block keeps its
// weight quads in registers and sweeps the row four outputs at a time (independent
// accumulators hide the latency of vpdpbusd). Paired (3x3, stride 1): quad m covers input
// columns 2m .. 2m + 3, which output 2m reads with weights (w0, w1, w2, 0) and output 2m + 1
// with (0, w0, w1, w2), so the quads are built for every other column only. Four outputs' 8-bit
// channels are requantized together by store_four_pixels when `packed` (it is exact for these
// constants).
template <int K, bool Paired, DType Out>
MINNOW_VNNI void output_row(const ConvGeometry& g, int64_t ow, const QuadLayout& q, int64_t cpad,
                            int64_t c_begin, const uint8_t* const* row_ptrs, const int8_t* wq,
                            const Epilogue& e, bool packed, void* y, int64_t y_at) {
  constexpr int Q = Paired ? 1 : (K + 3) / 4;  // quads per kernel row in the quad rows
  constexpr int W = Paired ? 2 : Q;            // weight quads per kernel row
  const int64_t c = g.c, column = cpad * 4, quad_stride = q.columns * column;
  constexpr bool kEight = Out != DType::kF32;
  PackedRequant<Out> requant;
  if constexpr (kEight) requant = PackedRequant<Out>(e);
  const uint8_t* rows[K];
  for (int ky = 0; ky < K; ++ky) rows[ky] = row_ptrs[ky];
  for (int64_t c0 = c_begin; c0 < c; c0 += 16) {
    const int64_t lanes = std::min<int64_t>(16, c - c0);
    const Requantizer<Out> rq(e, c0);
    __m512i w[K * W];
#pragma GCC unroll 10
    for (int t = 0; t < K * W; ++t) w[t] = _mm512_loadu_si512(wq + (t * cpad + c0) * 4);
    // Output ox reads quad column ox (paired: ox / 2, with weight quad ox % 2) of each quad row.
    // Indices into w are compile-time constants, so the weights stay in registers.
    int64_t ox = 0;
    for (; ox + 4 <= ow; ox += 4) {  // ox is even
      __m512i acc[4] = {rq.offset, rq.offset, rq.offset, rq.offset};
#pragma GCC unroll 5
      for (int ky = 0; ky < K; ++ky) {
#pragma GCC unroll 2
        for (int j = 0; j < Q; ++j) {
          const uint8_t* r = rows[ky] + j * quad_stride + (Paired ? ox / 2 : ox) * column + c0 * 4;
#pragma GCC unroll 4
          for (int i = 0; i < 4; ++i) {
            const int64_t at = Paired ? i / 2 : i;
            const __m512i wv = w[ky * W + (Paired ? i % 2 : j)];
            acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_loadu_si512(r + at * column), wv);
          }
        }
      }
      if constexpr (kEight) {
        if (packed) {
          store_four_pixels(requant, acc, rq.mult, lanes,
                            static_cast<int8_t*>(y) + y_at + ox * c + c0, c);
          continue;
        }
      }
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) rq.store(acc[i], lanes, y, y_at + (ox + i) * c + c0);
    }
    for (; ox < ow; ++ox) {
      __m512i acc = rq.offset;
      const bool odd = Paired && (ox & 1);
#pragma GCC unroll 5
      for (int ky = 0; ky < K; ++ky) {
#pragma GCC unroll 2
        for (int j = 0; j < Q; ++j) {
          const uint8_t* r = rows[ky] + j * quad_stride + (Paired ? ox / 2 : ox) * column + c0 * 4;
          const __m512i wv = odd ? w[ky * W + 1] : w[ky * W + j];
          acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(r), wv);
        }
      }
      rq.store(acc, lanes, y, y_at + ox * c + c0);
    }
  }
}

// The same for channels [0, grouped), 64 at a time, whose quads and weights are in slot order
// (slot_of): quad vector b of a group holds channels 16L + 4b + k of its 128-bit lane L. Two
// outputs at a time accumulate in eight registers (the weights: see kHeld); packing the
// four requantized vectors of an output (packs work within 128-bit lanes) puts its 64 channels
// back in order. 8-bit outputs only. The requantization is PackedRequant's when `packed` (it
// is exact for these constants), else Requantizer::store's: clamped in float, so every value
// fits the 16-bit packs exactly.
template <int K, bool Paired, DType Out>
MINNOW_VNNI void output_row_grouped(const ConvGeometry& g, int64_t ow, const QuadLayout& q,
                                    int64_t cpad, int64_t grouped, const uint8_t* const* row_ptrs,
                                    const int8_t* wq, const Epilogue& e, bool packed, void* y,
                                    int64_t y_at) {
  static_assert(Out != DType::kF32);
  constexpr int Q = Paired ? 1 : (K + 3) / 4;
  constexpr int W = Paired ? 2 : Q;
  const int64_t c = g.c, column = cpad * 4, quad_stride = q.columns * column;
  const __m512 lo = _mm512_set1_ps(e.lo), hi = _mm512_set1_ps(e.hi);
  const __m512i zp = _mm512_set1_epi16(static_cast<int16_t>(e.y_zp));
  const PackedRequant<Out> requant(e);
  for (int64_t g0 = 0; g0 < grouped; g0 += 64) {
    __m512 mult[4];
    __m512i offset[4];
    for (int b = 0; b < 4; ++b) {
      mult[b] = _mm512_loadu_ps(e.mult + g0 + 16 * b);
      offset[b] = _mm512_loadu_si512(e.offset + g0 + 16 * b);
    }
    auto store = [&](const __m512i* acc, int64_t ox) MINNOW_VNNI {
      auto* dst = static_cast<int8_t*>(y) + y_at + ox * c + g0;
      if (packed) return _mm512_storeu_si512(dst, requant.pack(acc, mult));
      __m512i v[4];
#pragma GCC unroll 4
      for (int b = 0; b < 4; ++b) {
        __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[b]), mult[b]);
        f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
        v[b] = _mm512_cvtps_epi32(f);
      }
      const __m512i a = _mm512_add_epi16(_mm512_packs_epi32(v[0], v[1]), zp);
      const __m512i b = _mm512_add_epi16(_mm512_packs_epi32(v[2], v[3]), zp);
      const __m512i bytes =
          Out == DType::kU8 ? _mm512_packus_epi16(a, b) : _mm512_packs_epi16(a, b);
      _mm512_storeu_si512(dst, bytes);
    };
    // The group's weight vectors of weight quad 0 (one per kernel row and quad vector: 12 for a
    // 3x3 kernel) fit in registers next to the eight accumulators, and stay there for the row.
    // Paired, the odd output's weight quad 1, (0, w0, w1, w2), is not needed: on a quad
    // (x0, x1, x2, x3) it gives the sum quad 0 gives on (x1, x2, x3, 0), the quad's dwords
    // shifted down a byte (one shift instead of 12 more weight vectors, which did not fit and
    // were read from memory). mobilenet_v2 int8 at batch 26, one thread, three runs each: stride
    // 2 (unpaired) 96 channels 70.9 -> 67.0 us, 144 channels 30.3 -> 28.9 us; paired (the
    // shift) 144 channels 65.5 -> 60.1 us, 192 channels at 7x7 23.2 -> 22.1 us.
    constexpr bool kHeld = K * Q <= 3;
    __m512i held[kHeld ? K * Q : 1][4];
    if constexpr (kHeld) {
      for (int ky = 0; ky < K; ++ky) {
        for (int j = 0; j < Q; ++j) {
          for (int b = 0; b < 4; ++b) {
            held[ky * Q + j][b] = _mm512_loadu_si512(wq + ((ky * W + j) * cpad + g0 + 16 * b) * 4);
          }
        }
      }
    }
    // Weight vector b of kernel row ky's weight quad t (paired: the output's parity, which is 0
    // wherever the weights are held; else the row's quad j).
    auto weight = [&](int ky, int t, int b) MINNOW_VNNI {
      if constexpr (kHeld) return held[ky * Q + t][b];
      return _mm512_loadu_si512(wq + ((ky * W + t) * cpad + g0 + 16 * b) * 4);
    };
    int64_t ox = 0;
    for (; ox + 2 <= ow; ox += 2) {  // ox is even
      __m512i acc[2][4];
      for (int i = 0; i < 2; ++i) {
        for (int b = 0; b < 4; ++b) acc[i][b] = offset[b];
      }
#pragma GCC unroll 5
      for (int ky = 0; ky < K; ++ky) {
#pragma GCC unroll 2
        for (int j = 0; j < Q; ++j) {
          const uint8_t* r = row_ptrs[ky] + j * quad_stride + g0 * 4;
          if constexpr (Paired && kHeld) {
            const uint8_t* at = r + ox / 2 * column;
#pragma GCC unroll 4
            for (int b = 0; b < 4; ++b) {
              const __m512i quad = _mm512_loadu_si512(at + 64 * b);
              acc[0][b] = _mm512_dpbusd_epi32(acc[0][b], quad, weight(ky, 0, b));
              acc[1][b] =
                  _mm512_dpbusd_epi32(acc[1][b], _mm512_srli_epi32(quad, 8), weight(ky, 0, b));
            }
          } else {
#pragma GCC unroll 2
            for (int i = 0; i < 2; ++i) {
              const uint8_t* at = r + (Paired ? ox / 2 : ox + i) * column;
#pragma GCC unroll 4
              for (int b = 0; b < 4; ++b) {
                acc[i][b] = _mm512_dpbusd_epi32(acc[i][b], _mm512_loadu_si512(at + 64 * b),
                                                weight(ky, Paired ? i : j, b));
              }
            }
          }
        }
      }
      store(acc[0], ox);
      store(acc[1], ox + 1);
    }
    if (ox < ow) {  // an odd width's last output (even ox: weight quad 0 when paired)
      __m512i acc[4] = {offset[0], offset[1], offset[2], offset[3]};
      for (int ky = 0; ky < K; ++ky) {
        for (int j = 0; j < Q; ++j) {
          const uint8_t* at =
              row_ptrs[ky] + j * quad_stride + (Paired ? ox / 2 : ox) * column + g0 * 4;
          for (int b = 0; b < 4; ++b) {
            acc[b] = _mm512_dpbusd_epi32(acc[b], _mm512_loadu_si512(at + 64 * b), weight(ky, j, b));
          }
        }
      }
      store(acc, ox);
    }
  }
}

// Calls f.template operator()<K, Paired>() for a k x k kernel: 5x5 unpaired, 3x3 paired or not.
template <class F>
void with_layout(int64_t k, bool paired, F&& f) {
  if (k == 5) return f.template operator()<5, false>();
  if (paired) return f.template operator()<3, true>();
  f.template operator()<3, false>();
}

}  // namespace

bool QConvDepthwiseNhwc::supports(const ConvGeometry& g, DType x) {
  return vnni_kernels_supported() && (x == DType::kU8 || x == DType::kI8) && g.is_depthwise() &&
         small_square_window(g);
}

QConvDepthwiseNhwc::QConvDepthwiseNhwc(const ConvGeometry& g, DType x, DType y)
    : QConvOwnKernel("QConvDepthwiseNhwc", y, static_cast<size_t>(g.c * g.kh * g.kw),
                     (g.c + 15) / 16 * 16),
      g_(g),
      x_dtype_(x),
      y_dtype_(y) {
  if (!supports(g, x)) throw Error("QConvDepthwiseNhwc: unsupported geometry or CPU");
  cpad_ = (g.c + 15) / 16 * 16;
  quads_.paired = g.kw == 3 && g.sw == 1;
  quads_.row_taps = quads_.paired ? 4 : g.kw;
  quads_.per_row = (quads_.row_taps + 3) / 4;
  quads_.columns = quads_.paired ? (g.ow() + 1) / 2 : g.ow();
  quads_.pitch = quads_.paired ? 2 : g.sw;
  ring_row_ = quads_.per_row * quads_.columns * cpad_ * 4;
  const int64_t weight_quads = quads_.paired ? 2 : quads_.per_row;
  wq_size_ = g.kh * weight_quads * cpad_ * 4;
  wq_.get(wq_size_);
  grouped_ = y == DType::kF32 ? 0 : g.c / 64 * 64;
}

void QConvDepthwiseNhwc::prepare(const QLinearParams& p, const int8_t* w) {
  const int64_t k = g_.kh, taps = k * k;
  const bool changed = weights_.changed(w);
  if (changed) {
    int8_t* wq = wq_.data();
    std::fill(wq, wq + wq_size_, int8_t{0});
    for (int64_t c = 0; c < g_.c; ++c) {
      const int64_t at = slot_of(c, grouped_);
      int32_t sum = 0;
      for (int64_t ky = 0; ky < k; ++ky) {
        for (int64_t kx = 0; kx < k; ++kx) {
          const int8_t v = w[c * taps + ky * k + kx];
          // Paired: quads (w0, w1, w2, 0) and (0, w0, w1, w2); else kx / 4, byte kx % 4.
          if (quads_.paired) {
            wq[((ky * 2 + 0) * cpad_ + at) * 4 + kx] = v;
            wq[((ky * 2 + 1) * cpad_ + at) * 4 + kx + 1] = v;
          } else {
            wq[((ky * quads_.per_row + kx / 4) * cpad_ + at) * 4 + kx % 4] = v;
          }
          sum += v;
        }
      }
      wsum_[static_cast<size_t>(c)] = sum;
    }
  }
  if (update_constants(p, p.x_zp + (x_dtype_ == DType::kI8 ? 128 : 0), g_.c, changed,
                       [this](int64_t c) { return slot_of(c, grouped_); })) {
    packed_ok_ = packed_requant_exact(taps);
  }
}

void QConvDepthwiseNhwc::run_rows(const QLinearParams& p, const void* x, void* y, int64_t first,
                                  int64_t last, Scratch& s) const {
  const int64_t k = g_.kh;
  const Epilogue e = Epilogue::of(p, mult_.data(), offset_.data());
  const bool signed_x = x_dtype_ == DType::kI8;
  const auto zp = static_cast<uint8_t>(p.x_zp + (signed_x ? 128 : 0));
  RowRing ring(g_, s.ring.data(), ring_row_);
  std::memset(s.fill.data(), zp, static_cast<size_t>(cpad_));
  // The quads read u8 inputs of whole 16-channel blocks where they are instead of from a padded
  // copy: mobilenet_v2's depthwise layers at batch 1, one thread, 96 channels stride 2: 4.0 ->
  // 3.4 us; 144 channels 3.2 -> 3.0 us, stride 2 1.55 -> 1.35 us. (16 channels went from 1.8 to
  // 2.0 us, copied or not: the per-column pointer work weighs on one block.)
  const bool direct = !signed_x && g_.c == cpad_;
  const int64_t ow = g_.ow();
  for (int64_t r = first; r < last; ++r) {
    const uint8_t* const* rows = ring.rows_for(r, [&](uint8_t* slot, int64_t n, int64_t iy) {
      if (iy < 0 || iy >= g_.h) {
        // A padding row: every tap is the zero point (and the bytes with weight 0 may be too).
        std::memset(slot, zp, static_cast<size_t>(ring_row_));
        return;
      }
      if (direct) {
        const uint8_t* pixels = static_cast<const uint8_t*>(x) + (n * g_.h + iy) * g_.w * g_.c;
        build_quads(quads_, cpad_, grouped_, RowSource{pixels, s.fill.data(), g_.c, g_.pl, g_.w},
                    slot);
        return;
      }
      // One position more than the padded width: see forward().
      const int64_t positions = g_.pl + g_.w + g_.pr + 1;
      pad_input_row(g_, cpad_, positions, x, signed_x, zp, n, iy, s.padded.data());
      build_quads(quads_, cpad_, grouped_,
                  RowSource{s.padded.data(), s.fill.data(), cpad_, 0, positions}, slot);
    });
    const int64_t y_at = r * ow * g_.c;
    const int8_t* wq = wq_.data();
    with_output_dtype(y_dtype_, [&]<DType Out>() {
      with_layout(k, quads_.paired, [&]<int K, bool Paired>() {
        if constexpr (Out != DType::kF32) {
          output_row_grouped<K, Paired, Out>(g_, ow, quads_, cpad_, grouped_, rows, wq, e,
                                             packed_ok_, y, y_at);
        }
        output_row<K, Paired, Out>(g_, ow, quads_, cpad_, grouped_, rows, wq, e, packed_ok_, y,
                                   y_at);
      });
    });
  }
}

void QConvDepthwiseNhwc::forward(const QLinearParams& p, const void* x, const int8_t* w, void* y) {
  prepare(p, w);
  const int64_t rows = g_.n * g_.oh();
  const int64_t macs = g_.n * g_.macs_per_sample();
  const int threads = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), rows));
  if (static_cast<int>(scratch_.size()) < threads) {
    scratch_.resize(static_cast<size_t>(threads));
    for (Scratch& s : scratch_) {
      // One position more than the padded width: a paired quad of the last column of an odd
      // output width reads it (with weight 0).
      s.padded.get((g_.pl + g_.w + g_.pr + 1) * cpad_);
      s.fill.get(cpad_);
      s.ring.get(g_.kh * ring_row_);
    }
  }
  // (Each block of rows widens its first kh - stride input rows again.)
  share_out(rows, row_block(rows, threads), macs, threads, [&](int64_t first, int64_t last, int t) {
    run_rows(p, x, y, first, last, scratch_[static_cast<size_t>(t)]);
  });
}

}  // namespace minnow::kernels
