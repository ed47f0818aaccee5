// QLinearAdd(a, a_scale, [a_zero_point], b, b_scale, [b_zero_point], y_scale, [y_zero_point]):
// the elementwise sum of two quantized tensors, requantized to y's parameters (the input order
// and meaning of com.microsoft QLinearAdd; zero points absent mean 0). y's dtype is that of
// y_zero_point (a's when absent). Per-tensor parameters, same-shape inputs only (no
// broadcasting). Attribute `activation` ("relu" | "relu6") clamps the real-valued sum first.
//
// The result is defined as the QDQ graph computes it in f32:
//   real = f32(a - a_zp) * a_scale + f32(b - b_zp) * b_scale,
//   y = saturate(round_half_even(activation(real) / y_scale) + y_zp),
// so lowering DequantizeLinear -> Add -> QuantizeLinear to this op changes no bit. The fast kernel
// runs the same f32 operations in a branch-free loop (see quant::quantize_scaled_fast) and agrees
// with the reference exactly.
#include <immintrin.h>

// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_* as a "maybe uninitialized"
// merge source); the values are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/qlinear_reference.h"
#include "ops/elementwise.h"
#include "ops/fused_activation.h"
#include "ops/op_defs.h"
#include "ops/qlinear_add_u8.h"
#include "ops/quant_util.h"

namespace minnow::ops {

// The loop as written, vectorized by the compiler per ISA level.
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void add_u8_loop(
    const AddU8& k, const uint8_t* __restrict a, const uint8_t* __restrict b, uint8_t* __restrict y,
    int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float real =
        (static_cast<float>(a[i]) - k.azp) * k.as + (static_cast<float>(b[i]) - k.bzp) * k.bs;
    real = real < k.act_lo ? k.act_lo : real;
    real = real > k.act_hi ? k.act_hi : real;
    y[i] = static_cast<uint8_t>(
        static_cast<int32_t>(quant::quantize_scaled_fast(real / k.ys, k.lo_f, k.hi_f, k.zp_f)));
  }
}

namespace {

#define MINNOW_AVX512BW __attribute__((target("avx512f,avx512bw,avx512vl")))

// The AVX-512 loop: 64 values per step, one clamp instead of two, one 64-byte store (1.4-2.1
// -> 1.05 us for 12,544 values on the dev host; the compiled loop narrows and stores 16 bytes
// at a time and clamps twice).
//
// The activation's clamp and the output range's become one after the division
// (kernels::add_quotient_bounds). With finite scales and ys > 0 the quotient is never NaN, the
// only case quantize_scaled_fast treats on its own.
struct AddU8Vector {
  __m512 azp, as, bzp, bs, ys, lo, hi;
  __m512i zp16, zp32;

  MINNOW_AVX512BW explicit AddU8Vector(const AddU8& k)
      : azp(_mm512_set1_ps(k.azp)),
        as(_mm512_set1_ps(k.as)),
        bzp(_mm512_set1_ps(k.bzp)),
        bs(_mm512_set1_ps(k.bs)),
        ys(_mm512_set1_ps(k.ys)) {
    const auto [l, h] = kernels::add_quotient_bounds(k.act_lo, k.act_hi, k.ys, k.lo_f, k.hi_f);
    lo = _mm512_set1_ps(l);
    hi = _mm512_set1_ps(h);
    zp16 = _mm512_set1_epi16(static_cast<int16_t>(k.zp_f));
    zp32 = _mm512_set1_epi32(static_cast<int32_t>(k.zp_f));
  }

  // The 16 quotients at a and b, rounded to nearest even, without the zero point.
  MINNOW_AVX512BW __m512i rounded(const uint8_t* a, const uint8_t* b, __mmask16 m) const {
    const __m512 fa = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, a)));
    const __m512 fb = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, b)));
    const __m512 real = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(fa, azp), as),
                                      _mm512_mul_ps(_mm512_sub_ps(fb, bzp), bs));
    const __m512 q = _mm512_min_ps(_mm512_max_ps(_mm512_div_ps(real, ys), lo), hi);
    return _mm512_cvtps_epi32(q);
  }
};

MINNOW_AVX512BW void add_u8_avx512(const AddU8& k, const uint8_t* a, const uint8_t* b, uint8_t* y,
                                   int64_t n) {
  const AddU8Vector v(k);
  // packs work within 128-bit lanes: dword 4L + d of the packed bytes holds values 16d + 4L ..
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m512i q[4];
    for (int j = 0; j < 4; ++j) q[j] = v.rounded(a + i + 16 * j, b + i + 16 * j, 0xffff);
    // Every value is within the output's range minus the zero point: no pack saturates.
    const __m512i lo = _mm512_add_epi16(_mm512_packs_epi32(q[0], q[1]), v.zp16);
    const __m512i hi = _mm512_add_epi16(_mm512_packs_epi32(q[2], q[3]), v.zp16);
    _mm512_storeu_si512(y + i, _mm512_permutexvar_epi32(order, _mm512_packus_epi16(lo, hi)));
  }
  for (; i < n; i += 16) {
    const auto m = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
    const __m512i q = _mm512_add_epi32(v.rounded(a + i, b + i, m), v.zp32);
    _mm_mask_storeu_epi8(y + i, m, _mm512_cvtepi32_epi8(q));
  }
}

}  // namespace

void add_u8(const AddU8& k, const uint8_t* __restrict a, const uint8_t* __restrict b,
            uint8_t* __restrict y, int64_t n) {
  static const bool avx512 = __builtin_cpu_supports("avx512f") &&
                             __builtin_cpu_supports("avx512bw") &&
                             __builtin_cpu_supports("avx512vl");
  const bool finite = std::isfinite(k.as) && std::isfinite(k.bs) && std::isfinite(k.ys) &&
                      k.ys > 0 && std::isfinite(k.azp) && std::isfinite(k.bzp);
  if (avx512 && finite) return add_u8_avx512(k, a, b, y, n);
  add_u8_loop(k, a, b, y, n);
}

namespace {

using quant::QParams;
using quant::QRange;

enum Input { kA = 0, kAScale, kAZp, kB, kBScale, kBZp, kYScale, kYZp };

const ValueInfo& q8_input(const Node& n, const InputInfos& in, size_t i, size_t zi,
                          const std::string& scale_name) {
  const ValueInfo& x = input(n, in, i);
  if (!quant::is_q8(x.dtype)) {
    fail(n, "input '" + x.name + "' has dtype " + std::string(dtype_name(x.dtype)) +
                ", expected u8 or i8");
  }
  const quant::QParamInfo q = quant::check_qparams(n, in, i + 1, zi, false, false, scale_name);
  if (q.has_zero_point && q.zp_dtype != x.dtype) {
    fail(n, "zero point '" + in[zi]->name + "' has dtype " + std::string(dtype_name(q.zp_dtype)) +
                ", expected input '" + x.name + "''s dtype " + std::string(dtype_name(x.dtype)));
  }
  return x;
}

void infer_qadd(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& a = q8_input(n, in, kA, kAZp, "a_scale");
  const ValueInfo& b = q8_input(n, in, kB, kBZp, "b_scale");
  if (a.shape != b.shape) {
    fail(n, "inputs '" + a.name + "' " + shape_str(a.shape) + " and '" + b.name + "' " +
                shape_str(b.shape) + " must have the same shape (QLinearAdd does not broadcast)");
  }
  const quant::QParamInfo y = quant::check_qparams(n, in, kYScale, kYZp, false, false, "y_scale");
  FusedActivation::of(n);
  out[0].dtype = y.has_zero_point ? y.zp_dtype : a.dtype;
  out[0].shape = a.shape;
}

class QLinearAddKernel final : public Kernel {
 public:
  QLinearAddKernel(const Node& n, Shape shape, bool fast)
      : node_(n), shape_(std::move(shape)), act_(FusedActivation::of(n)), fast_(fast) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    if (in[kA]->shape() != shape_ || in[kB]->shape() != shape_) {
      fail(node_, "kernel built for inputs " + shape_str(shape_) + " got " +
                      shape_str(in[kA]->shape()) + " and " + shape_str(in[kB]->shape()));
    }
    const Params p{quant::read_qparams(node_, in, kAScale, kAZp, 1, "a_scale"),
                   quant::read_qparams(node_, in, kBScale, kBZp, 1, "b_scale"),
                   quant::read_qparams(node_, in, kYScale, kYZp, 1, "y_scale"),
                   quant::qrange(out[0]->dtype())};
    dispatch_q8(in[kA]->dtype(), [&]<class A>() {
      dispatch_q8(in[kB]->dtype(), [&]<class B>() {
        dispatch_q8(out[0]->dtype(), [&]<class Y>() {
          run(static_cast<const A*>(in[kA]->raw()), static_cast<const B*>(in[kB]->raw()),
              static_cast<Y*>(out[0]->raw()), in[kA]->numel(), p);
        });
      });
    });
  }

 private:
  struct Params {
    QParams a, b, y;
    QRange range;
  };

  template <class F>
  void dispatch_q8(DType t, F&& f) const {
    if (t == DType::kU8) return f.template operator()<uint8_t>();
    if (t == DType::kI8) return f.template operator()<int8_t>();
    fail(node_, "expected u8 or i8 data, got " + std::string(dtype_name(t)));
  }

  template <class A, class B, class Y>
  void run(const A* a, const B* b, Y* y, int64_t count, const Params& p) const {
    const float as = p.a.scale[0], bs = p.b.scale[0], ys = p.y.scale[0];
    const int32_t azp = p.a.zero_point_at(0), bzp = p.b.zero_point_at(0);
    const int32_t yzp = p.y.zero_point_at(0);
    const float act_lo = act_.lo, act_hi = act_.hi;
    if (!fast_) {
      const DType out = std::is_same_v<Y, uint8_t> ? DType::kU8 : DType::kI8;
      for (int64_t i = 0; i < count; ++i) {
        y[i] = static_cast<Y>(
            kernels::qlinear_add_one(a[i], azp, as, b[i], bzp, bs, act_lo, act_hi, ys, yzp, out));
      }
      return;
    }
    const float lo_f = static_cast<float>(p.range.lo - yzp);
    const float hi_f = static_cast<float>(p.range.hi - yzp);
    const float zp_f = static_cast<float>(yzp);
    if constexpr (std::is_same_v<A, uint8_t> && std::is_same_v<B, uint8_t> &&
                  std::is_same_v<Y, uint8_t>) {
      const AddU8 k{
          as,   bs,   ys,  static_cast<float>(azp), static_cast<float>(bzp), act_lo, act_hi,
          lo_f, hi_f, zp_f};
      for_blocks(count,
                 [&](int64_t lo, int64_t hi) { add_u8(k, a + lo, b + lo, y + lo, hi - lo); });
      return;
    }
    for_blocks(count, [=](int64_t lo, int64_t hi) {
      const A* __restrict as_ = a;
      const B* __restrict bs_ = b;
      Y* __restrict ys_ = y;
      for (int64_t i = lo; i < hi; ++i) {
        float real = static_cast<float>(as_[i] - azp) * as + static_cast<float>(bs_[i] - bzp) * bs;
        // Without an activation the bounds are infinite and these selects pass everything.
        real = real < act_lo ? act_lo : real;
        real = real > act_hi ? act_hi : real;
        ys_[i] = static_cast<Y>(
            static_cast<int32_t>(quant::quantize_scaled_fast(real / ys, lo_f, hi_f, zp_f)));
      }
    });
  }

  Node node_;
  Shape shape_;
  FusedActivation act_;
  bool fast_;
};

std::unique_ptr<Kernel> make_qadd(const Node& n, const InputInfos& in, bool fast) {
  const Shape& s = input(n, in, kA).shape;
  for (int64_t d : s) {
    if (d == kDynamic) fail(n, "kernel needs a concrete batch size");
  }
  return std::make_unique<QLinearAddKernel>(n, s, fast);
}
std::unique_ptr<Kernel> make_qadd_reference(const Node& n, const InputInfos& in,
                                            const std::vector<ValueInfo>&) {
  return make_qadd(n, in, false);
}
std::unique_ptr<Kernel> make_qadd_fast(const Node& n, const InputInfos& in,
                                       const std::vector<ValueInfo>&) {
  return make_qadd(n, in, true);
}

}  // namespace

const OpDef kQLinearAddDef = {OpKind::kQLinearAdd, "QLinearAdd",   7,     8,      1, infer_qadd,
                              make_qadd_reference, make_qadd_fast, false, nullptr};

}  // namespace minnow::ops
