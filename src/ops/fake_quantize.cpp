// FakeQuantize: quantize and dequantize in one float op, for quantization-aware training
// (compress/qat.h). For x with scale s and zero point zp (per tensor, or per channel along
// attribute `axis`) and the integer range [quant_min, quant_max]:
//   y = (clamp(round_half_even(x / s) + zp, quant_min, quant_max) - zp) * s
// which is exactly what a QuantizeLinear -> DequantizeLinear pair with the same parameters
// computes, so a network trained through it sees the values the int8 graph will see.
//
// Rounding has a zero derivative almost everywhere, so training needs surrogate gradients:
//  - x: straight-through inside the range (qmin <= x/s + zp <= qmax), 0 where it saturates;
//  - scale: Learned Step Size Quantization (Esser et al., 2019): d y / d s is round(v) - v
//    inside the range (v = x / s, rounding treated as the identity only where it is
//    differentiated against v) and qmin - zp / qmax - zp where it saturates, times the attribute
//    grad_scale (LSQ's 1 / sqrt(elements * qmax), chosen by the caller, keeps the step size's
//    update in proportion with the weights');
//  - zero_point: -s where the value saturates, 0 inside (the exact derivative; QAT keeps it
//    fixed, it is there so that the op is complete).
// Where the value saturates these are the true derivatives, which is what the finite-difference
// test checks; inside, the test checks the formulas.
//
// zero_point is f32 (a trainable-graph value) and must lie in [quant_min, quant_max]; scale must
// be finite and > 0 (checked every run: training updates them).
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "ops/op_defs.h"
#include "ops/op_util.h"
#include "ops/shape_util.h"

namespace minnow::ops {
namespace {

// Bounds on quant_min / quant_max: integers exactly representable in f32.
constexpr int64_t kMaxQuantBound = int64_t{1} << 24;

struct FqAttrs {
  int64_t qmin = 0, qmax = 255;
  double grad_scale = 1.0;
};

FqAttrs read_attrs(const Node& n) {
  FqAttrs a;
  a.qmin = n.attrs.get_int("quant_min", 0);
  a.qmax = n.attrs.get_int("quant_max", 255);
  if (a.qmin >= a.qmax) {
    fail(n, "attribute quant_min (" + std::to_string(a.qmin) + ") must be below quant_max (" +
                std::to_string(a.qmax) + ")");
  }
  if (a.qmin < -kMaxQuantBound || a.qmax > kMaxQuantBound) {
    fail(n, "attributes quant_min/quant_max must lie in [-2^24, 2^24]");
  }
  a.grad_scale = n.attrs.get_float("grad_scale", 1.0);
  if (!std::isfinite(a.grad_scale) || a.grad_scale <= 0) {
    fail(n, "attribute grad_scale must be finite and > 0, got " + std::to_string(a.grad_scale));
  }
  return a;
}

// The channel axis of a per-channel scale (-1: per tensor), validated against x.
int channel_axis(const Node& n, const ValueInfo& x, int64_t count) {
  if (count == 1) return -1;
  if (x.shape.empty()) fail(n, "a per-channel scale needs an input of rank >= 1");
  const int axis = normalize_axis_attr(n, n.attrs.get_int("axis", 1), x.shape.size(), "axis");
  const int64_t dim = x.shape[axis];
  if (dim != kDynamic && dim != count) {
    fail(n, "scale has " + std::to_string(count) + " values but input '" + x.name + "' has " +
                std::to_string(dim) + " along axis " + std::to_string(axis) + " (shape " +
                shape_str(x.shape) + ")");
  }
  return axis;
}

int64_t scale_count(const Node& n, const ValueInfo& x, const ValueInfo& s) {
  if (s.dtype != x.dtype) {
    fail(n, "scale '" + s.name + "' has dtype " + std::string(dtype_name(s.dtype)) +
                ", expected the input's " + std::string(dtype_name(x.dtype)));
  }
  if (s.shape.size() > 1 || (s.shape.size() == 1 && s.shape[0] < 1)) {
    fail(n, "scale '" + s.name + "' has shape " + shape_str(s.shape) +
                ", expected a scalar ([] or [1]) or 1-D [C]");
  }
  return s.shape.empty() ? 1 : s.shape[0];
}

void infer_fake_quantize(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  require_float(n, x);
  const ValueInfo& s = input(n, in, 1);
  const int64_t count = scale_count(n, x, s);
  if (in.size() > 2 && in[2]) {
    const ValueInfo& z = *in[2];
    if (z.dtype != x.dtype || shape_numel(z.shape) != count || z.shape.size() > 1) {
      fail(n, "zero_point '" + z.name + "' has " + std::string(dtype_name(z.dtype)) + " " +
                  shape_str(z.shape) + ", expected the scale's shape " + shape_str(s.shape) +
                  " and dtype " + std::string(dtype_name(x.dtype)));
    }
  }
  read_attrs(n);
  channel_axis(n, x, count);
  out[0].dtype = x.dtype;
  out[0].shape = x.shape;
}

template <class T>
class FakeQuantizeKernel final : public Kernel {
 public:
  FakeQuantizeKernel(const Node& n, const InputInfos& in) : node_(n), attrs_(read_attrs(n)) {
    const ValueInfo& x = *in[0];
    for (int64_t d : x.shape) {
      if (d == kDynamic) fail(n, "kernel needs a concrete batch size");
    }
    count_ = scale_count(n, x, *in[1]);
    const int axis = channel_axis(n, x, count_);
    if (axis < 0) {
      inner_ = shape_numel(x.shape);
    } else {
      for (int d = 0; d < axis; ++d) outer_ *= x.shape[d];
      for (size_t d = axis + 1; d < x.shape.size(); ++d) inner_ *= x.shape[d];
    }
  }

  void forward(Tensors in, Tensors out, RunContext&) override {
    check_params(in);
    const T* x = in[0]->data<T>();
    T* y = out[0]->data<T>();
    for_segments(in, [&](int64_t, int64_t begin, T s, T zp) {
      const T lo = T(attrs_.qmin), hi = T(attrs_.qmax);
      if (integral_zero_point(zp)) {
        // Clamping v to [lo - zp, hi - zp] before rounding is the same as clamping after when
        // zp is an integer, and lets the loop round with the add-and-subtract trick (libm's
        // nearbyint is a call per element on baseline x86-64).
        const T vlo = lo - zp, vhi = hi - zp;
        for (int64_t i = begin; i < begin + inner_; ++i) {
          T v = x[i] / s;
          v = v < vlo ? vlo : (v > vhi ? vhi : v);  // NaN passes through (the trainer reports it)
          y[i] = round_small(v) * s;
        }
        return;
      }
      for (int64_t i = begin; i < begin + inner_; ++i) {
        T q = std::nearbyint(x[i] / s) + zp;
        q = q < lo ? lo : (q > hi ? hi : q);
        y[i] = (q - zp) * s;
      }
    });
  }

  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    const T* x = in[0]->data<T>();
    const T* dy = grad_out[0] ? grad_out[0]->data<T>() : nullptr;
    T* dx = grad_in[0] ? grad_in[0]->data<T>() : nullptr;
    T* ds = grad_in.size() > 1 && grad_in[1] ? grad_in[1]->data<T>() : nullptr;
    T* dz = grad_in.size() > 2 && grad_in[2] ? grad_in[2]->data<T>() : nullptr;
    if (ds) std::fill(ds, ds + count_, T(0));
    if (dz) std::fill(dz, dz + count_, T(0));
    if (!dy) {
      if (dx) std::fill(dx, dx + in[0]->numel(), T(0));
      return;
    }
    const T gscale = T(attrs_.grad_scale);
    for_segments(in, [&](int64_t c, int64_t begin, T s, T zp) {
      // v + zp in [qmin, qmax] <=> v in [qmin - zp, qmax - zp].
      const T lo = T(attrs_.qmin) - zp, hi = T(attrs_.qmax) - zp;
      const bool fast = integral_zero_point(zp);
      double sum_s = 0, sum_z = 0;
      for (int64_t i = begin; i < begin + inner_; ++i) {
        const T v = x[i] / s;
        T d_x = 0, d_s;
        if (v < lo) {
          d_s = lo;
          sum_z -= double(dy[i]) * double(s);
        } else if (v > hi) {
          d_s = hi;
          sum_z -= double(dy[i]) * double(s);
        } else {
          d_x = dy[i];
          d_s = (fast ? round_small(v) : std::nearbyint(v)) - v;
        }
        if (dx) dx[i] = d_x;
        sum_s += double(dy[i]) * double(d_s);
      }
      if (ds) ds[c] += T(sum_s) * gscale;
      if (dz) dz[c] += T(sum_z);
    });
  }

 private:
  // Round half to even for |v| < 2^(digits - 2) (in the default rounding mode, which minnow
  // never changes): adding 1.5 * 2^(digits - 1) leaves no fraction bits.
  static T round_small(T v) {
    constexpr T magic = T(1.5) * T(uint64_t{1} << (std::numeric_limits<T>::digits - 1));
    return (v + magic) - magic;
  }
  // Whether round_small may be used on [qmin - zp, qmax - zp].
  bool integral_zero_point(T zp) const {
    constexpr T limit = T(uint64_t{1} << (std::numeric_limits<T>::digits - 2));
    return zp == std::nearbyint(zp) && std::fabs(T(attrs_.qmin) - zp) < limit &&
           std::fabs(T(attrs_.qmax) - zp) < limit;
  }

  // Calls f(channel, first index, scale, zero point) for every contiguous [outer, channel] run.
  template <class F>
  void for_segments(Tensors in, F&& f) const {
    const T* s = in[1]->data<T>();
    const T* z = in.size() > 2 && in[2] ? in[2]->data<T>() : nullptr;
    for (int64_t o = 0; o < outer_; ++o) {
      for (int64_t c = 0; c < count_; ++c) {
        f(c, (o * count_ + c) * inner_, s[c], z ? z[c] : T(0));
      }
    }
  }

  // Training moves scale and zero point: their values are checked on every run.
  void check_params(Tensors in) const {
    const T* s = in[1]->data<T>();
    const T* z = in.size() > 2 && in[2] ? in[2]->data<T>() : nullptr;
    for (int64_t c = 0; c < count_; ++c) {
      if (!(s[c] > T(0)) || !std::isfinite(double(s[c]))) {
        fail(node_, "scale value " + std::to_string(double(s[c])) + " at index " +
                        std::to_string(c) + " is not a finite positive number");
      }
      if (z && !(z[c] >= T(attrs_.qmin) && z[c] <= T(attrs_.qmax))) {
        fail(node_, "zero_point value " + std::to_string(double(z[c])) + " at index " +
                        std::to_string(c) + " is outside [quant_min, quant_max] = [" +
                        std::to_string(attrs_.qmin) + ", " + std::to_string(attrs_.qmax) + "]");
      }
    }
  }

  Node node_;
  FqAttrs attrs_;
  int64_t count_ = 1, outer_ = 1, inner_ = 1;
};

std::unique_ptr<Kernel> make_fake_quantize(const Node& n, const InputInfos& in,
                                           const std::vector<ValueInfo>&) {
  const ValueInfo& x = input(n, in, 0);
  input(n, in, 1);
  return dispatch_float(x.dtype, [&]<class T>() -> std::unique_ptr<Kernel> {
    return std::make_unique<FakeQuantizeKernel<T>>(n, in);
  });
}

}  // namespace

const OpDef kFakeQuantizeDef = {OpKind::kFakeQuantize, "FakeQuantize",     2,       3,    1,
                                infer_fake_quantize,   make_fake_quantize, nullptr, true, nullptr};

}  // namespace minnow::ops
