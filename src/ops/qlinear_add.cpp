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
#include <algorithm>
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

[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void add_u8(
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
