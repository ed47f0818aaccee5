#include "kernels/qgemm_dynamic.h"

#include <immintrin.h>

// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_* as a merge source); the values
// are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/qconv_vnni_common.h"

namespace minnow::kernels {
namespace {

// Rows of x per register tile, and 16-output vectors per tile (4 x 4 accumulators).
constexpr int kTileRows = 4, kTileVectors = 4;
// From this many multiply-adds a product is shared among OpenMP threads (by tiles of rows).
constexpr int64_t kParallelMin = int64_t{4} << 20;

// The float steps of the result, written once for both paths: float(acc) * (sx * sw) + bias.
inline float dequantized(int32_t acc, float sx, float sw, float bias) {
  return static_cast<float>(acc) * (sx * sw) + bias;
}

// One tile: Rows rows of codes from q (pitch kpad bytes) against V weight vectors from column
// r0, written to y (rows ldy floats apart), the last vector masked to `last_lanes`.
template <int Rows, int V>
MINNOW_VNNI void tile(const uint8_t* q, int64_t kpad, const RowQuant* rq, const int8_t* packed,
                      int64_t rows_pad, const int32_t* wsum, const float* sw, const float* bias,
                      int64_t r0, int last_lanes, float* y, int64_t ldy) {
  __m512i acc[Rows][V];
#pragma GCC unroll 4
  for (int i = 0; i < Rows; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_si512();
  }
  for (int64_t j = 0; j < kpad / 4; ++j) {
    const int8_t* wj = packed + (j * rows_pad + r0) * 4;
    __m512i w[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) w[v] = _mm512_loadu_si512(wj + 64 * v);
#pragma GCC unroll 4
    for (int i = 0; i < Rows; ++i) {
      int32_t quad;
      std::memcpy(&quad, q + i * kpad + 4 * j, 4);
      const __m512i x = _mm512_set1_epi32(quad);
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], x, w[v]);
    }
  }
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v) {
    const int64_t r = r0 + 16 * v;
    const __mmask16 mask = v == V - 1 ? static_cast<__mmask16>((1u << last_lanes) - 1)
                                      : static_cast<__mmask16>(0xFFFF);
    const __m512i sums = _mm512_maskz_loadu_epi32(mask, wsum + r);
    const __m512 scales = _mm512_maskz_loadu_ps(mask, sw + r);
    const __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias + r) : _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int i = 0; i < Rows; ++i) {
      const __m512i exact =
          _mm512_sub_epi32(acc[i][v], _mm512_mullo_epi32(_mm512_set1_epi32(rq[i].zp), sums));
      const __m512 s = _mm512_mul_ps(_mm512_set1_ps(rq[i].scale), scales);
      const __m512 out = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(exact), s), b);
      _mm512_mask_storeu_ps(y + i * ldy + r, mask, out);
    }
  }
}

// All outputs of Rows rows.
template <int Rows>
MINNOW_VNNI void row_block(const uint8_t* q, int64_t kpad, const RowQuant* rq, const int8_t* packed,
                           int64_t rows_pad, const int32_t* wsum, const float* sw,
                           const float* bias, float* y, int64_t rows, int64_t ldy) {
  // Few rows (an LSTM step at batch 1 or 2): more vectors per tile, so that enough independent
  // sums hide vpdpbusd's latency.
  constexpr int V = Rows <= 2 ? 2 * kTileVectors : kTileVectors;
  int64_t r0 = 0;
  for (; r0 + 16 * V <= rows; r0 += 16 * V) {
    tile<Rows, V>(q, kpad, rq, packed, rows_pad, wsum, sw, bias, r0, 16, y, ldy);
  }
  for (; r0 < rows; r0 += 16) {
    const int lanes = static_cast<int>(std::min<int64_t>(16, rows - r0));
    tile<Rows, 1>(q, kpad, rq, packed, rows_pad, wsum, sw, bias, r0, lanes, y, ldy);
  }
}

}  // namespace

// The range of a row (finite values only) and its codes: loops the compiler vectorizes per ISA
// level. Rounding half to even by adding and subtracting 1.5 * 2^23, exact for |v| <= 255
// (std::nearbyint is a library call on baseline x86-64: it was a third of an int8 LSTM step).
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void quantize_row_range(
    const float* x, int64_t k, float* lo_out, float* hi_out) {
  float lo = 0, hi = 0;
#pragma omp simd reduction(min : lo) reduction(max : hi)
  for (int64_t i = 0; i < k; ++i) {
    const float v = x[i] - x[i] == 0.0f ? x[i] : 0.0f;  // finite: NaN and inf give NaN
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  *lo_out = lo;
  *hi_out = hi;
}

[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void quantize_row_codes(
    const float* __restrict x, int64_t k, float scale, int32_t zp, uint8_t* __restrict q) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  const auto lo = static_cast<float>(-zp), hi = static_cast<float>(255 - zp);
  const auto zp_f = static_cast<float>(zp);
  for (int64_t i = 0; i < k; ++i) {
    float v = x[i] / scale;
    v = v == v ? v : 0.0f;  // NaN reads as 0
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    q[i] = static_cast<uint8_t>(static_cast<int32_t>(((v + kMagic) - kMagic) + zp_f));
  }
}

RowQuant quantize_row(const float* x, int64_t k, uint8_t* q) {
  float lo = 0, hi = 0;
  quantize_row_range(x, k, &lo, &hi);
  RowQuant r;
  if (hi > lo) {
    r.scale = (hi - lo) / 255.0f;
    r.zp = static_cast<int32_t>(std::clamp(std::nearbyint(-lo / r.scale), 0.0f, 255.0f));
  }
  quantize_row_codes(x, k, r.scale, r.zp, q);
  return r;
}

DynamicInt8Gemm::DynamicInt8Gemm(int64_t rows, int64_t k, bool fast)
    : rows_(rows),
      k_(k),
      quads_((k + 3) / 4),
      rows_pad_((rows + 15) / 16 * 16),
      fast_(fast && vnni_kernels_supported()),
      weights_(static_cast<size_t>(rows * k)),
      wsum_(static_cast<size_t>(rows_pad_), 0) {}

void DynamicInt8Gemm::prepare(const int8_t* w) {
  w_ = w;
  if (!weights_.changed(w)) return;
  for (int64_t r = 0; r < rows_; ++r) {
    int32_t sum = 0;
    for (int64_t k = 0; k < k_; ++k) sum += w[r * k_ + k];
    wsum_[static_cast<size_t>(r)] = sum;
  }
  if (!fast_) return;
  int8_t* p = packed_.get(quads_ * rows_pad_ * 4);
  std::memset(p, 0, static_cast<size_t>(quads_ * rows_pad_ * 4));
  for (int64_t r = 0; r < rows_; ++r) {
    for (int64_t k = 0; k < k_; ++k) p[(k / 4 * rows_pad_ + r) * 4 + k % 4] = w[r * k_ + k];
  }
}

void DynamicInt8Gemm::run(const float* x, int64_t m, const float* sw, const float* bias, float* y,
                          int64_t ldy) {
  if (ldy == 0) ldy = rows_;
  const int64_t kpad = quads_ * 4;
  if (static_cast<int64_t>(q_.size()) < m * kpad) q_.resize(static_cast<size_t>(m * kpad));
  row_.resize(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) {
    uint8_t* q = q_.data() + i * kpad;
    row_[i] = quantize_row(x + i * k_, k_, q);
    std::fill(q + k_, q + kpad, uint8_t{0});  // the last quad's padding (weights 0 there too)
  }
  if (fast_) return run_vnni(m, sw, bias, y, ldy);
  run_reference(m, sw, bias, y, ldy);
}

void DynamicInt8Gemm::run_reference(int64_t m, const float* sw, const float* bias, float* y,
                                    int64_t ldy) {
  const int8_t* w = w_;
  const int64_t kpad = quads_ * 4;
  for (int64_t i = 0; i < m; ++i) {
    const uint8_t* q = q_.data() + i * kpad;
    const RowQuant rq = row_[static_cast<size_t>(i)];
    for (int64_t r = 0; r < rows_; ++r) {
      int32_t acc = 0;
      for (int64_t k = 0; k < k_; ++k) acc += (q[k] - rq.zp) * w[r * k_ + k];
      y[i * ldy + r] = dequantized(acc, rq.scale, sw[r], bias ? bias[r] : 0.0f);
    }
  }
}

void DynamicInt8Gemm::run_vnni(int64_t m, const float* sw, const float* bias, float* y,
                               int64_t ldy) {
  const int64_t kpad = quads_ * 4, blocks = (m + kTileRows - 1) / kTileRows;
  auto block = [&](int64_t b) MINNOW_VNNI {
    const int64_t i = b * kTileRows, count = std::min<int64_t>(kTileRows, m - i);
    const uint8_t* q = q_.data() + i * kpad;
    const RowQuant* rq = row_.data() + i;
    float* yi = y + i * ldy;
    const int8_t* p = packed_.data();
    switch (count) {
      case 4:
        row_block<4>(q, kpad, rq, p, rows_pad_, wsum_.data(), sw, bias, yi, rows_, ldy);
        break;
      case 3:
        row_block<3>(q, kpad, rq, p, rows_pad_, wsum_.data(), sw, bias, yi, rows_, ldy);
        break;
      case 2:
        row_block<2>(q, kpad, rq, p, rows_pad_, wsum_.data(), sw, bias, yi, rows_, ldy);
        break;
      default:
        row_block<1>(q, kpad, rq, p, rows_pad_, wsum_.data(), sw, bias, yi, rows_, ldy);
    }
  };
  // (An OpenMP region costs about a microsecond even when it runs on one thread: an LSTM step's
  // product takes less.)
  if (m * rows_ * k_ < kParallelMin || blocks < 2) {
    for (int64_t b = 0; b < blocks; ++b) block(b);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) block(b);
}

}  // namespace minnow::kernels
