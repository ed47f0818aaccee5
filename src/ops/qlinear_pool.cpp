// QLinearGlobalAvgPool(x, x_scale, [x_zero_point], y_scale, [y_zero_point]) -> y [N,C,1,..,1]:
// the mean of each spatial plane of a quantized NCHW (or N,C,D1..Dk) tensor, requantized to y's
// parameters (com.microsoft's contrib op). With attribute channels_last=1 (as com.microsoft's)
// x is [N,D1..Dk,C] and y [N,1,..,1,C]. y's dtype is that of y_zero_point (x's when absent).
// Per-tensor parameters.
//
// Definition (the real-number formula, evaluated in f64 from an exact integer sum):
//   S = sum over the plane of (x - x_zp)               (int64, exact)
//   y = saturate(round_half_even((S * x_scale / HW) / y_scale) + y_zp)
// S * x_scale is exact in f64 for planes below 2^29 / 255 elements, and when the real quotient
// is exactly a half-integer the two f64 divisions reproduce it exactly, so ties round to even
// as the real formula says. Both kernels share this per-plane requantization (it is O(N*C));
// they differ in the summation, which is where the time goes: the fast kernel sums each plane in
// int32 blocks that vectorize, planes in parallel; channels-last, it adds whole rows of C
// channels into int32 per-channel sums (vectorized over channels), samples in parallel.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "ops/elementwise.h"
#include "ops/op_defs.h"
#include "ops/quant_util.h"

namespace minnow::ops {
namespace {

using quant::QParams;
using quant::QRange;

enum Input { kX = 0, kXScale, kXZp, kYScale, kYZp };

void infer_qpool(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, kX);
  if (!quant::is_q8(x.dtype)) {
    fail(n, "input '" + x.name + "' has dtype " + std::string(dtype_name(x.dtype)) +
                ", expected u8 or i8");
  }
  if (x.shape.size() < 3) {
    fail(n, "input '" + x.name + "' has shape " + shape_str(x.shape) +
                ", expected rank >= 3 ([N,C,H,W])");
  }
  for (size_t d = 1; d < x.shape.size(); ++d) {
    if (x.shape[d] <= 0) {
      fail(n, "input '" + x.name + "' has shape " + shape_str(x.shape) +
                  ": channel and spatial dims must be concrete and positive");
    }
  }
  const bool nhwc = channels_last_attr(n);
  const quant::QParamInfo xq = quant::check_qparams(n, in, kXScale, kXZp, false, false, "x_scale");
  if (xq.has_zero_point && xq.zp_dtype != x.dtype) {
    fail(n, "zero point '" + in[kXZp]->name + "' has dtype " +
                std::string(dtype_name(xq.zp_dtype)) + ", expected input '" + x.name +
                "''s dtype " + std::string(dtype_name(x.dtype)));
  }
  const quant::QParamInfo yq = quant::check_qparams(n, in, kYScale, kYZp, false, false, "y_scale");
  out[0].dtype = yq.has_zero_point ? yq.zp_dtype : x.dtype;
  out[0].shape = Shape(x.shape.size(), 1);
  out[0].shape[0] = x.shape[0];
  out[0].shape[nhwc ? x.shape.size() - 1 : 1] = x.shape[nhwc ? x.shape.size() - 1 : 1];
}

// The requantization of one plane sum (see the file comment).
int32_t requantize_mean(int64_t sum, int64_t hw, float x_scale, float y_scale, int32_t y_zp,
                        QRange r) {
  const double real = static_cast<double>(sum) * x_scale / static_cast<double>(hw);
  return quant::quantize_scaled(real / y_scale, y_zp, r);
}

// requantize_mean of raw sums[k] - hw * x_zp for k < count, into y: the same double steps in a
// loop the compiler vectorizes, clamped before rounding (the range's bounds are integers, so
// that commutes). One at a time, with two double divisions per channel, they took a sixth of
// the pool's time (resnet8 int8, 64 channels of 7x7: 0.85 -> 0.72 us).
template <class Y>
[[gnu::target_clones("arch=x86-64-v4", "default")]] void requantize_means(
    const int64_t* __restrict sums, int64_t count, int64_t hw, int32_t x_zp, float x_scale,
    float y_scale, int32_t y_zp, QRange r, Y* __restrict y) {
  const double lo = static_cast<double>(r.lo - y_zp), hi = static_cast<double>(r.hi - y_zp);
  const int64_t zero = hw * x_zp;
  for (int64_t k = 0; k < count; ++k) {
    const double real = static_cast<double>(sums[k] - zero) * x_scale / static_cast<double>(hw);
    const double v = std::min(std::max(real / y_scale, lo), hi);
    y[k] = static_cast<Y>(static_cast<int32_t>(std::nearbyint(v)) + y_zp);
  }
}

// Raw per-channel sums of hw rows of c channels: int32 accumulators over blocks of channels
// (kept in registers) and chunks of rows (that cannot overflow), int64 totals in `sums`. Built
// per ISA level, as requantize_means: for baseline x86-64 the widening adds were SSE2, and the
// pool took 9.7 us of int8 mobilenet_v2 at batch 26 (one thread), twice its f32 pool's time.
template <class X>
[[gnu::target_clones("arch=x86-64-v4", "default")]] void rows_sum_fast(const X* __restrict x,
                                                                       int64_t hw, int64_t c,
                                                                       int64_t* sums) {
  constexpr int64_t kChunk = int64_t{1} << 23, kBlock = 64;
  for (int64_t k = 0; k < c; ++k) sums[k] = 0;
  for (int64_t c0 = 0; c0 < c; c0 += kBlock) {
    const int64_t width = std::min(kBlock, c - c0);
    for (int64_t lo = 0; lo < hw; lo += kChunk) {
      const int64_t hi = std::min(hw, lo + kChunk);
      int32_t acc[kBlock] = {};
      for (int64_t i = lo; i < hi; ++i) {
        const X* row = x + i * c + c0;
        for (int64_t k = 0; k < width; ++k) acc[k] += row[k];
      }
      for (int64_t k = 0; k < width; ++k) sums[c0 + k] += acc[k];
    }
  }
}

class QLinearGlobalAvgPoolKernel final : public Kernel {
 public:
  QLinearGlobalAvgPoolKernel(const Node& n, Shape shape, bool fast)
      : node_(n), shape_(std::move(shape)), fast_(fast), nhwc_(channels_last_attr(n)) {
    const size_t r = shape_.size();
    batch_ = shape_[0];
    channels_ = shape_[nhwc_ ? r - 1 : 1];
    for (size_t d = nhwc_ ? 1 : 2; d < (nhwc_ ? r - 1 : r); ++d) hw_ *= shape_[d];
    if (nhwc_ && fast_) sums_.resize(static_cast<size_t>(batch_ * channels_));
  }

  void forward(Tensors in, Tensors out, RunContext&) override {
    if (in[kX]->shape() != shape_) {
      fail(node_,
           "kernel built for input " + shape_str(shape_) + " got " + shape_str(in[kX]->shape()));
    }
    const QParams xq = quant::read_qparams(node_, in, kXScale, kXZp, 1, "x_scale");
    const QParams yq = quant::read_qparams(node_, in, kYScale, kYZp, 1, "y_scale");
    const QRange r = quant::qrange(out[0]->dtype());
    auto go = [&]<class X, class Y>(const X* x, Y* y) {
      const int32_t xzp = xq.zero_point_at(0), yzp = yq.zero_point_at(0);
      const float xs = xq.scale[0], ys = yq.scale[0];
      const int64_t hw = hw_, c = channels_, planes = batch_ * channels_;
      auto put = [&](int64_t p, int64_t sum) {
        y[p] = static_cast<Y>(requantize_mean(sum, hw, xs, ys, yzp, r));
      };
      if (nhwc_ && fast_) {
        int64_t* sums = sums_.data();
#pragma omp parallel for if (planes * hw >= kParallelMin) schedule(static)
        for (int64_t n = 0; n < batch_; ++n) {
          rows_sum_fast(x + n * hw * c, hw, c, sums + n * c);
          requantize_means(sums + n * c, c, hw, xzp, xs, ys, yzp, r, y + n * c);
        }
      } else if (nhwc_) {
        for (int64_t p = 0; p < planes; ++p) {
          const int64_t n = p / c, k = p % c;
          put(p, strided_sum(x + n * hw * c + k, hw, c, xzp));
        }
      } else {
        const bool fast = fast_;
#pragma omp parallel for if (fast && planes * hw >= kParallelMin) schedule(static)
        for (int64_t p = 0; p < planes; ++p) {
          const X* plane = x + p * hw;
          put(p, fast ? plane_sum_fast(plane, hw) - hw * xzp : strided_sum(plane, hw, 1, xzp));
        }
      }
    };
    const DType xt = in[kX]->dtype(), yt = out[0]->dtype();
    const void* x = in[kX]->raw();
    void* y = out[0]->raw();
    if (xt == DType::kU8 && yt == DType::kU8) {
      go(static_cast<const uint8_t*>(x), static_cast<uint8_t*>(y));
    } else if (xt == DType::kU8) {
      go(static_cast<const uint8_t*>(x), static_cast<int8_t*>(y));
    } else if (yt == DType::kU8) {
      go(static_cast<const int8_t*>(x), static_cast<uint8_t*>(y));
    } else {
      go(static_cast<const int8_t*>(x), static_cast<int8_t*>(y));
    }
  }

 private:
  // The oracle: one element at a time, int64 throughout; elements `stride` apart.
  template <class X>
  static int64_t strided_sum(const X* x, int64_t hw, int64_t stride, int32_t zp) {
    int64_t s = 0;
    for (int64_t i = 0; i < hw; ++i) s += static_cast<int64_t>(x[i * stride]) - zp;
    return s;
  }

  // Raw sum in int32 chunks that cannot overflow (2^23 * 255 < 2^31) and vectorize.
  template <class X>
  static int64_t plane_sum_fast(const X* __restrict x, int64_t hw) {
    constexpr int64_t kChunk = int64_t{1} << 23;
    int64_t total = 0;
    for (int64_t lo = 0; lo < hw; lo += kChunk) {
      const int64_t hi = std::min(hw, lo + kChunk);
      int32_t s = 0;
      for (int64_t i = lo; i < hi; ++i) s += x[i];
      total += s;
    }
    return total;
  }

  Node node_;
  Shape shape_;
  bool fast_, nhwc_;
  int64_t batch_ = 0, channels_ = 0, hw_ = 1;
  std::vector<int64_t> sums_;  // channels-last fast kernel: [batch, channels]
};

std::unique_ptr<Kernel> make_qpool(const Node& n, const InputInfos& in, bool fast) {
  const Shape& s = input(n, in, kX).shape;
  if (s.empty() || s[0] == kDynamic) fail(n, "kernel needs a concrete batch size");
  return std::make_unique<QLinearGlobalAvgPoolKernel>(n, s, fast);
}
std::unique_ptr<Kernel> make_qpool_reference(const Node& n, const InputInfos& in,
                                             const std::vector<ValueInfo>&) {
  return make_qpool(n, in, false);
}
std::unique_ptr<Kernel> make_qpool_fast(const Node& n, const InputInfos& in,
                                        const std::vector<ValueInfo>&) {
  return make_qpool(n, in, true);
}

}  // namespace

const OpDef kQLinearGlobalAvgPoolDef = {
    OpKind::kQLinearGlobalAvgPool, "QLinearGlobalAvgPool", 4,     5,      1, infer_qpool,
    make_qpool_reference,          make_qpool_fast,        false, nullptr};

}  // namespace minnow::ops
