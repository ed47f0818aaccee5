#include "kernels/qconv_one_channel_nhwc.h"

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

// One output row from the padded rows of its K input rows: for each block of 16 output
// channels, its K * Q weight quads stay in registers while the row is swept four outputs at a
// time; each tap quad is a broadcast 32-bit load of the row. Four outputs' 8-bit channels are
// requantized together by store_four_pixels when `packed` (it is exact for these constants).
template <int K, DType Out>
MINNOW_VNNI void output_row(const ConvGeometry& g, int64_t ow, int64_t opad,
                            const uint8_t* const* row_ptrs, const int8_t* wq, const Epilogue& e,
                            bool packed, void* y, int64_t y_at) {
  constexpr int Q = (K + 3) / 4;
  const int64_t o = g.o, sw = g.sw;
  PackedRequant<Out> requant;
  if constexpr (Out != DType::kF32) requant = PackedRequant<Out>(e);
  const uint8_t* rows[K];
  for (int ky = 0; ky < K; ++ky) rows[ky] = row_ptrs[ky];
  for (int64_t o0 = 0; o0 < o; o0 += 16) {
    const int64_t lanes = std::min<int64_t>(16, o - o0);
    const Requantizer<Out> rq(e, o0);
    __m512i w[K * Q];
#pragma GCC unroll 10
    for (int t = 0; t < K * Q; ++t) w[t] = _mm512_loadu_si512(wq + (t * opad + o0) * 4);
    int64_t ox = 0;
    for (; ox + 4 <= ow; ox += 4) {
      __m512i acc[4] = {rq.offset, rq.offset, rq.offset, rq.offset};
#pragma GCC unroll 5
      for (int ky = 0; ky < K; ++ky) {
#pragma GCC unroll 2
        for (int j = 0; j < Q; ++j) {
          const uint8_t* r = rows[ky] + ox * sw + 4 * j;
#pragma GCC unroll 4
          for (int i = 0; i < 4; ++i) {
            acc[i] = _mm512_dpbusd_epi32(acc[i], broadcast_quad(r + i * sw), w[ky * Q + j]);
          }
        }
      }
      if constexpr (Out != DType::kF32) {
        if (packed) {
          store_four_pixels(requant, acc, rq.mult, lanes,
                            static_cast<int8_t*>(y) + y_at + ox * o + o0, o);
          continue;
        }
      }
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) rq.store(acc[i], lanes, y, y_at + (ox + i) * o + o0);
    }
    for (; ox < ow; ++ox) {
      __m512i acc = rq.offset;
#pragma GCC unroll 5
      for (int ky = 0; ky < K; ++ky) {
#pragma GCC unroll 2
        for (int j = 0; j < Q; ++j) {
          acc = _mm512_dpbusd_epi32(acc, broadcast_quad(rows[ky] + ox * sw + 4 * j), w[ky * Q + j]);
        }
      }
      rq.store(acc, lanes, y, y_at + ox * o + o0);
    }
  }
}

}  // namespace

bool QConvOneChannelNhwc::supports(const ConvGeometry& g, DType x) {
  return vnni_kernels_supported() && (x == DType::kU8 || x == DType::kI8) && g.c == 1 &&
         g.group == 1 && small_square_window(g);
}

QConvOneChannelNhwc::QConvOneChannelNhwc(const ConvGeometry& g, DType x, DType y)
    : QConvOwnKernel("QConvOneChannelNhwc", y, static_cast<size_t>(g.o * g.kh * g.kw),
                     (g.o + 15) / 16 * 16),
      g_(g),
      x_dtype_(x),
      y_dtype_(y) {
  if (!supports(g, x)) throw Error("QConvOneChannelNhwc: unsupported geometry or CPU");
  opad_ = (g.o + 15) / 16 * 16;
  quads_ = (g.kw + 3) / 4;
  // The last output's last quad reads up to 4 * quads_ - kw bytes past the padded row.
  row_bytes_ = g.pl + g.w + g.pr + 4 * quads_ - g.kw;
  wq_.get(g.kh * quads_ * opad_ * 4);
}

void QConvOneChannelNhwc::prepare(const QLinearParams& p, const int8_t* w) {
  const int64_t k = g_.kh, taps = k * k;
  const bool changed = weights_.changed(w);
  if (changed) {
    int8_t* wq = wq_.data();
    std::fill(wq, wq + k * quads_ * opad_ * 4, int8_t{0});
    for (int64_t o = 0; o < g_.o; ++o) {
      int32_t sum = 0;
      for (int64_t ky = 0; ky < k; ++ky) {
        for (int64_t kx = 0; kx < k; ++kx) {
          const int8_t v = w[o * taps + ky * k + kx];
          wq[((ky * quads_ + kx / 4) * opad_ + o) * 4 + kx % 4] = v;
          sum += v;
        }
      }
      wsum_[static_cast<size_t>(o)] = sum;
    }
  }
  if (update_constants(p, p.x_zp + (x_dtype_ == DType::kI8 ? 128 : 0), g_.o, changed)) {
    packed_ok_ = packed_requant_exact(taps);
  }
}

void QConvOneChannelNhwc::run_rows(const QLinearParams& p, const void* x, void* y, int64_t first,
                                   int64_t last, uint8_t* ring) const {
  const int64_t k = g_.kh;
  const Epilogue e = Epilogue::of(p, mult_.data(), offset_.data());
  const bool signed_x = x_dtype_ == DType::kI8;
  const auto zp = static_cast<uint8_t>(p.x_zp + (signed_x ? 128 : 0));
  RowRing ring_rows(g_, ring, row_bytes_);
  const int64_t ow = g_.ow();
  for (int64_t r = first; r < last; ++r) {
    const uint8_t* const* rows = ring_rows.rows_for(r, [&](uint8_t* slot, int64_t n, int64_t iy) {
      pad_input_row(g_, 1, row_bytes_, x, signed_x, zp, n, iy, slot);
    });
    const int64_t y_at = r * ow * g_.o;
    with_output_dtype(y_dtype_, [&]<DType Out>() {
      if (k == 3) {
        output_row<3, Out>(g_, ow, opad_, rows, wq_.data(), e, packed_ok_, y, y_at);
      } else {
        output_row<5, Out>(g_, ow, opad_, rows, wq_.data(), e, packed_ok_, y, y_at);
      }
    });
  }
}

void QConvOneChannelNhwc::forward(const QLinearParams& p, const void* x, const int8_t* w, void* y) {
  prepare(p, w);
  const int64_t rows = g_.n * g_.oh();
  const int64_t macs = g_.n * g_.macs_per_sample();
  const int threads = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), rows));
  if (static_cast<int>(rings_.size()) < threads) rings_.resize(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) rings_[static_cast<size_t>(t)].get(g_.kh * row_bytes_);
  share_out(rows, row_block(rows, threads), macs, threads, [&](int64_t first, int64_t last, int t) {
    run_rows(p, x, y, first, last, rings_[static_cast<size_t>(t)].data());
  });
}

}  // namespace minnow::kernels
