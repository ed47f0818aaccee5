// Pieces shared by minnow's own int8 convolutions on AVX-512 VNNI (qconv_depthwise_nhwc.cpp,
// qconv_one_channel_nhwc.cpp, qconv_pointwise_nhwc.cpp): the ISA check and target attribute,
// how work is shared among threads, and the requantization of int32 accumulators with the
// reference's float steps (kernels/qlinear_reference.h). Internal: included by those files.
#pragma once

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <vector>

#include "kernels/conv_geometry.h"
#include "kernels/qlinear_reference.h"
#include "kernels/spin_team.h"

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

// The kernels that slide a 3x3 or 5x5 window over padded input rows (depthwise, one-channel):
// square kernel, dilation 1, padding smaller than the kernel, a non-empty output.
inline bool small_square_window(const ConvGeometry& g) {
  return g.kh == g.kw && (g.kh == 3 || g.kh == 5) && g.dh == 1 && g.dw == 1 &&
         std::max(g.pt, g.pb) < g.kh && std::max(g.pl, g.pr) < g.kw && g.oh() > 0 && g.ow() > 0;
}

// Below this many multiply-adds a layer runs on one thread: handing blocks to the spin team's
// helper and waiting for its last one costs more than it saves. (mobilenet_v2 int8 at batch 1,
// quiet host: 0.035 ms on one thread; sharing layers from 150k multiply-adds 0.030 ms, from 60k
// 0.028 ms, from 30k 0.029 ms.)
constexpr int64_t kParallelMinMacs = 60'000;
// From this many, a layer the spin team declines (kernels/spin_team.h) is shared by an OpenMP
// team instead, whose fork and join (about 1 us) it then pays for.
constexpr int64_t kOpenMpMinMacs = 2'000'000;
constexpr int kMaxTeam = 4;

// Calls body(first, last, thread) over [0, count): at once on one thread below
// kParallelMinMacs, else in blocks of `block` taken in turn by the spin team's threads rather
// than halves fixed up front (on a shared host one core is often slower than the other, and the
// faster must not wait for it). `threads` is how many the caller prepared scratch for.
template <class F>
void share_out(int64_t count, int64_t block, int64_t macs, int threads, F&& body) {
  const int64_t blocks = (count + block - 1) / block;
  if (macs < kParallelMinMacs || threads <= 1 || blocks <= 1) return body(int64_t{0}, count, 0);
  auto run_block = [&](int64_t b, int thread) {
    body(b * block, std::min(count, (b + 1) * block), thread);
  };
  // At most kMaxTeam threads share a small layer: more would mostly contend for the blocks (and
  // keep idle cores spinning) on a many-core machine.
  if (spin_team_run(std::min(threads, kMaxTeam), blocks, run_block)) return;
  if (macs < kOpenMpMinMacs) return body(int64_t{0}, count, 0);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t b = 0; b < blocks; ++b) run_block(b, omp_get_thread_num());
}

// Output rows per block for the kernels that slide a window over rows: about two blocks per
// thread, at most 64 rows. (Each block builds again the input rows it shares with the one
// before, so blocks are not made smaller than sharing needs.)
inline int64_t row_block(int64_t rows, int threads) {
  return std::clamp<int64_t>((rows + 2 * threads - 1) / (2 * threads), 1, 64);
}

// Calls f.template operator()<Out>() with the output dtype (u8, i8 or f32) as a constant.
template <class F>
void with_output_dtype(DType out, F&& f) {
  if (out == DType::kU8) return f.template operator()<DType::kU8>();
  if (out == DType::kI8) return f.template operator()<DType::kI8>();
  f.template operator()<DType::kF32>();
}

// Four consecutive bytes broadcast to every 32-bit lane.
MINNOW_VNNI inline __m512i broadcast_quad(const uint8_t* at) {
  int32_t v;
  std::memcpy(&v, at, sizeof v);
  return _mm512_set1_epi32(v);
}

// Input row iy of sample n (x is [n, h, w, c]) as u8 (i8 codes offset by 128, so the zero point
// is too) into `row`, `positions` pixels of `stride` bytes: pl pixels of the zero point, the w
// pixels, then the zero point to the end; channels past c and rows outside the image hold the
// zero point too (its share is folded into the bias, so padding contributes nothing).
inline void pad_input_row(const ConvGeometry& g, int64_t stride, int64_t positions, const void* x,
                          bool signed_x, uint8_t zp, int64_t n, int64_t iy, uint8_t* row) {
  if (iy < 0 || iy >= g.h) {
    std::memset(row, zp, static_cast<size_t>(positions * stride));
    return;
  }
  std::memset(row, zp, static_cast<size_t>(g.pl * stride));
  std::memset(row + (g.pl + g.w) * stride, zp,
              static_cast<size_t>((positions - g.pl - g.w) * stride));
  const auto* src = static_cast<const uint8_t*>(x) + (n * g.h + iy) * g.w * g.c;
  uint8_t* dst = row + g.pl * stride;
  if (stride == g.c && !signed_x) {
    std::memcpy(dst, src, static_cast<size_t>(g.w * g.c));
    return;
  }
  const uint8_t flip = signed_x ? 0x80 : 0;
  for (int64_t ix = 0; ix < g.w; ++ix, src += g.c, dst += stride) {
    for (int64_t c = 0; c < g.c; ++c) dst[c] = src[c] ^ flip;
    std::memset(dst + g.c, zp, static_cast<size_t>(stride - g.c));
  }
}

// The input rows an output row reads (kh of them, padding rows included), prepared once per
// thread into a ring of kh slots: consecutive output rows share kh - stride of them.
class RowRing {
 public:
  RowRing(const ConvGeometry& g, uint8_t* slots, int64_t slot_bytes)
      : g_(g), slots_(slots), slot_bytes_(slot_bytes), padded_h_(g.pt + g.h + g.pb), oh_(g.oh()) {}

  // The slots of output row r (sample r / oh, row r % oh) in kernel-row order. fill(slot, n, iy)
  // prepares input row iy (< 0 or >= h: padding) of sample n for the rows not held yet.
  template <class Fill>
  const uint8_t* const* rows_for(int64_t r, Fill&& fill) {
    const int64_t k = g_.kh;
    // Callers go through rows in order: the next row's sample, row and first slot follow from
    // the last's without int64 divisions (with the output width no longer computed per row
    // either: mobilenet_v2's 16-channel depthwise layer at batch 26, one thread, 40.4 -> 37.4
    // us, its 1-channel stem 26.2 -> 23.7 us).
    if (r == r_ + 1) {
      if (++oy_ == oh_) {
        oy_ = 0;
        ++n_;
      }
    } else {
      n_ = r / oh_;
      oy_ = r - n_ * oh_;
    }
    const int64_t first = n_ * padded_h_ + oy_ * g_.sh;  // kernel row 0's row in the padded batch
    if (r == r_ + 1) {
      at_ += first - first_;
      while (at_ >= k) at_ -= k;
    } else {
      at_ = first % k;
    }
    r_ = r;
    first_ = first;
    int64_t at = at_;
    for (int64_t ky = 0; ky < k; ++ky, at = at + 1 == k ? 0 : at + 1) {
      uint8_t* slot = slots_ + at * slot_bytes_;
      if (held_[at] != first + ky) {
        fill(slot, n_, oy_ * g_.sh + ky - g_.pt);
        held_[at] = first + ky;
      }
      rows_[ky] = slot;
    }
    return rows_;
  }

 private:
  const ConvGeometry& g_;
  uint8_t* slots_;
  int64_t slot_bytes_, padded_h_, oh_;
  int64_t r_ = -2, n_ = 0, oy_ = 0, first_ = 0, at_ = 0;  // the last row's
  int64_t held_[5] = {-1, -1, -1, -1, -1};                // kh <= 5
  const uint8_t* rows_[5] = {};
};

// The requantization constants of one call, as the loops read them.
struct Epilogue {
  const float* mult;      // [cpad]
  const int32_t* offset;  // [cpad] bias minus the zero point's share
  float lo, hi;           // clamp in output units before rounding
  int32_t y_zp;
  // A fused residual Add (QLinearParams::sum): its codes (same layout as y) or nullptr, and
  // QLinearAdd's parameters; out_lo / out_hi: the one clamp after the division (the
  // activation's and the output range's, see of()).
  const void* sum = nullptr;
  DType sum_dtype = DType::kU8;
  float y_scale = 1, sum_scale = 1, sum_zp = 0, out_scale = 1;
  float out_lo = 0, out_hi = 0;
  int32_t out_zp = 0;

  // The clamp before rounding: the activation's bounds, narrowed to the output's range shifted
  // by the zero point. Rounding is monotone and the range bounds are integers, so this gives
  // the reference's clamp-round-add-saturate exactly, with one clamp. (With a residual the
  // convolution's own output is p.out; the Add's the sum_out.)
  static Epilogue of(const QLinearParams& p, const float* mult, const int32_t* offset) {
    auto range = [](DType t, int32_t zp, float& lo, float& hi) {
      if (t == DType::kF32) return;
      lo = std::max(lo, (t == DType::kU8 ? 0.0f : -128.0f) - static_cast<float>(zp));
      hi = std::min(hi, (t == DType::kU8 ? 255.0f : 127.0f) - static_cast<float>(zp));
    };
    float lo = p.lo(), hi = p.hi();
    range(p.out, p.y_zp, lo, hi);
    Epilogue e{mult, offset, lo, hi, p.y_zp};
    if (p.sum) {
      e.sum = p.sum;
      e.sum_dtype = p.sum_dtype;
      e.y_scale = p.y_scale;
      e.sum_scale = p.sum_scale;
      e.sum_zp = static_cast<float>(p.sum_zp);
      e.out_scale = p.sum_out_scale;
      float out_lo = -INFINITY, out_hi = INFINITY;
      range(p.sum_out, p.sum_out_zp, out_lo, out_hi);
      // One clamp after the division for the activation's and the output range's
      // (QLinearParams checks that every scale is finite and positive).
      std::tie(e.out_lo, e.out_hi) =
          add_quotient_bounds(p.sum_act_lo, p.sum_act_hi, p.sum_out_scale, out_lo, out_hi);
      e.out_zp = p.sum_out_zp;
    }
    return e;
  }
};

// The requantization of one 16-channel block, its constants in registers (the output stores
// may alias anything the compiler would otherwise reload after each). Out: the stored dtype.
//
// With Sum, the convolution's own 8-bit result then goes through QLinearAdd with the residual's
// codes at y's position, with the reference's f32 steps in its order (files using this compile
// with -ffp-contract=off, so no multiply-add is fused).
template <DType Out, bool Sum = false>
struct Requantizer {
  __m512 mult, lo, hi;
  __m512i offset, y_zp;  // offset: every accumulator's start
  Epilogue e;            // the residual's scalars (Sum only)

  Requantizer() = default;
  MINNOW_VNNI Requantizer(const Epilogue& ep, int64_t c0)
      : mult(_mm512_loadu_ps(ep.mult + c0)),
        lo(_mm512_set1_ps(ep.lo)),
        hi(_mm512_set1_ps(ep.hi)),
        offset(_mm512_loadu_si512(ep.offset + c0)),
        y_zp(_mm512_set1_epi32(ep.y_zp)),
        e(ep) {}

  // The residual's `lanes` codes at element `at`, as f32.
  MINNOW_VNNI __m512 sum_at(int64_t lanes, int64_t at) const {
    const auto* src = static_cast<const int8_t*>(e.sum) + at;
    const __m128i bytes =
        lanes == 16 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(src))
                    : _mm_maskz_loadu_epi8(static_cast<__mmask16>((1u << lanes) - 1), src);
    return codes_f32(bytes);
  }

  // The residual's `lanes` (at most 8) codes at element `at` in lanes 0-7 and at `at2` in
  // lanes 8-15, as f32.
  MINNOW_VNNI __m512 sum_pair_at(int64_t lanes, int64_t at, int64_t at2) const {
    const auto* src = static_cast<const int8_t*>(e.sum);
    const auto mask = static_cast<__mmask16>((1u << lanes) - 1);
    return codes_f32(_mm_unpacklo_epi64(_mm_maskz_loadu_epi8(mask, src + at),
                                        _mm_maskz_loadu_epi8(mask, src + at2)));
  }

  MINNOW_VNNI __m512 codes_f32(__m128i bytes) const {
    return _mm512_cvtepi32_ps(e.sum_dtype == DType::kU8 ? _mm512_cvtepu8_epi32(bytes)
                                                        : _mm512_cvtepi8_epi32(bytes));
  }

  // The convolution's requantized output before rounding: acc (which started at `offset`)
  // times the multipliers, clamped to lo / hi.
  MINNOW_VNNI __m512 scaled(__m512i acc) const {
    const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), mult);
    return _mm512_min_ps(_mm512_max_ps(v, lo), hi);
  }

  // Sum only: the residual Add's result for the first `lanes` channels of acc, the residual's
  // codes at element `at`, rounded but without out_zp. v = scaled(acc) rounds to q - y_zp of
  // the convolution's 8-bit output q (lo/hi hold its range). Then QLinearAdd:
  // real = (q - y_zp) y_scale + (sum - sum_zp) sum_scale, real / out_scale clamped by the
  // activation and to the output's range (Epilogue::of), rounded.
  MINNOW_VNNI __m512i added(__m512i acc, int64_t lanes, int64_t at) const {
    return added_to(acc, sum_at(lanes, at));
  }
  // The same with the residual's codes as f32 (sum_at, sum_pair_at).
  MINNOW_VNNI __m512i added_to(__m512i acc, __m512 sum) const {
    const __m512 d =
        _mm512_roundscale_ps(scaled(acc), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 s = _mm512_sub_ps(sum, _mm512_set1_ps(e.sum_zp));
    const __m512 real = _mm512_add_ps(_mm512_mul_ps(d, _mm512_set1_ps(e.y_scale)),
                                      _mm512_mul_ps(s, _mm512_set1_ps(e.sum_scale)));
    const __m512 t = _mm512_div_ps(real, _mm512_set1_ps(e.out_scale));
    return _mm512_cvtps_epi32(
        _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(e.out_lo)), _mm512_set1_ps(e.out_hi)));
  }

  // Requantizes accumulator `acc` and stores its first `lanes` channels at y + at.
  MINNOW_VNNI void store(__m512i acc, int64_t lanes, void* y, int64_t at) const {
    __m512i q;
    if constexpr (Out == DType::kF32) {
      _mm512_mask_storeu_ps(static_cast<float*>(y) + at, static_cast<__mmask16>((1u << lanes) - 1),
                            scaled(acc));
      return;
    } else if constexpr (Sum) {
      q = _mm512_add_epi32(added(acc, lanes, at), _mm512_set1_epi32(e.out_zp));
    } else {
      const __m512 v = scaled(acc);
      // lo/hi include the output range (see Epilogue::of), so v rounds (to nearest even, as
      // the reference's nearbyint) to an in-range value and the narrowing below is exact.
      q = _mm512_add_epi32(_mm512_cvtps_epi32(v), y_zp);
    }
    __m128i bytes = Out == DType::kU8 ? _mm512_cvtusepi32_epi8(q) : _mm512_cvtsepi32_epi8(q);
    // Narrowing and store stay two instructions: compilers would merge a masked store into the
    // masked narrowing store (vpmovusdb to memory), which AMD's Zen 4 runs as microcode.
    asm("" : "+v"(bytes));
    auto* dst = static_cast<int8_t*>(y) + at;
    if (lanes == 16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), bytes);
    } else {
      _mm_mask_storeu_epi8(dst, static_cast<__mmask16>((1u << lanes) - 1), bytes);
    }
  }
};

// Requantizes four accumulators of 16 channels (acc[v], multipliers mult[v]) to 64 8-bit
// outputs: each rounded in int32, narrowed with saturation to int16, shifted by the zero point
// (saturating), narrowed with saturation to bytes, and there clamped to the rounded bounds of
// Requantizer's clamp plus the zero point, where those are narrower than the byte's range (not
// for a linear layer's output). Rounding commutes with clamping to integers and every narrowing
// saturates, so this is Requantizer::store's result in 15 to 17 instructions and one store
// instead of 36 instructions, as long as no accumulator times its multiplier reaches 2^31
// (QConvOwnKernel::packed_requant_exact). The packs work within 128-bit lanes: dword 4L + d of
// the result holds channels 16d + 4L .. 16d + 4L + 3.
template <DType Out>  // u8 or i8
struct PackedRequant {
  static constexpr int kMin = Out == DType::kU8 ? 0 : -128, kMax = Out == DType::kU8 ? 255 : 127;
  __m512i lo, hi, zp;
  bool clamp_lo = false, clamp_hi = false;

  PackedRequant() = default;
  MINNOW_VNNI explicit PackedRequant(const Epilogue& e) {
    const int low = static_cast<int>(std::nearbyint(e.lo)) + e.y_zp;
    const int high = static_cast<int>(std::nearbyint(e.hi)) + e.y_zp;
    lo = _mm512_set1_epi8(static_cast<char>(low));
    hi = _mm512_set1_epi8(static_cast<char>(high));
    zp = _mm512_set1_epi16(static_cast<int16_t>(e.y_zp));
    clamp_lo = low > kMin;
    clamp_hi = high < kMax;
  }

  MINNOW_VNNI __m512i pack(const __m512i* acc, const __m512* mult) const {
    __m512i q[4];
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      q[v] = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[v]), mult[v]));
    }
    const __m512i a = _mm512_adds_epi16(_mm512_packs_epi32(q[0], q[1]), zp);
    const __m512i b = _mm512_adds_epi16(_mm512_packs_epi32(q[2], q[3]), zp);
    __m512i bytes;
    if constexpr (Out == DType::kU8) {
      bytes = _mm512_packus_epi16(a, b);
      if (clamp_lo) bytes = _mm512_max_epu8(bytes, lo);
      if (clamp_hi) bytes = _mm512_min_epu8(bytes, hi);
    } else {
      bytes = _mm512_packs_epi16(a, b);
      if (clamp_lo) bytes = _mm512_max_epi8(bytes, lo);
      if (clamp_hi) bytes = _mm512_min_epi8(bytes, hi);
    }
    return bytes;
  }
};

// The permute that takes PackedRequant's (and the residual packs') output, dword 4L + d holding
// vector d's lanes 4L .. 4L + 3, to vector d's 16 bytes at 16d .. 16d + 15.
MINNOW_VNNI inline __m512i packed_vector_order() {
  return _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
}

// Requantizes one 16-channel block of four output pixels, acc[i] pixel i's (multipliers
// `mult`), with one PackedRequant (exact when QConvOwnKernel::packed_requant_exact holds), and
// stores each pixel's first `lanes` channels at dst + i * pitch: one 64-byte store when the
// pixels are adjacent, else four 16-byte ones. Four Requantizer::store calls take about twice
// the instructions.
template <DType Out>  // u8 or i8
MINNOW_VNNI inline void store_four_pixels(const PackedRequant<Out>& requant, const __m512i* acc,
                                          __m512 mult, int64_t lanes, int8_t* dst, int64_t pitch) {
  const __m512 mults[4] = {mult, mult, mult, mult};
  const __m512i bytes = _mm512_permutexvar_epi32(packed_vector_order(), requant.pack(acc, mults));
  if (pitch == 16 && lanes == 16) return _mm512_storeu_si512(dst, bytes);
  const auto mask = static_cast<__mmask16>((1u << lanes) - 1);
  _mm_mask_storeu_epi8(dst, mask, _mm512_castsi512_si128(bytes));
  _mm_mask_storeu_epi8(dst + pitch, mask, _mm512_extracti32x4_epi32(bytes, 1));
  _mm_mask_storeu_epi8(dst + 2 * pitch, mask, _mm512_extracti32x4_epi32(bytes, 2));
  _mm_mask_storeu_epi8(dst + 3 * pitch, mask, _mm512_extracti32x4_epi32(bytes, 3));
}

}  // namespace minnow::kernels
