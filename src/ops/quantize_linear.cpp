// QuantizeLinear and DequantizeLinear, ONNX opset 13 semantics:
//   QuantizeLinear(x f32, y_scale, [y_zero_point]) -> y = saturate(round_half_even(x / y_scale)
//   + y_zero_point), y's dtype that of the zero point (u8 when absent);
//   DequantizeLinear(x u8|i8|i32, x_scale, [x_zero_point]) -> y f32 = (x - x_zero_point) * x_scale.
// A scalar scale ([] or [1]) quantizes per tensor; a 1-D [C] scale per channel along attribute
// `axis` (default 1, negative counts from the back). Neither op has a gradient: quantization-aware
// training uses its own fake-quant op.
//
// The reference kernels evaluate the formula element by element (quant_util.h's oracle); the
// fast kernels run contiguous branch-free loops per channel segment that the compiler vectorizes,
// in parallel above elementwise.h's threshold. Both compute x / scale as one f32 division (not a
// multiplication by the reciprocal, which rounds differently) so they agree bit for bit.
#include <algorithm>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/elementwise.h"
#include "ops/op_defs.h"
#include "ops/quant_util.h"
#include "ops/shape_util.h"

namespace minnow::ops {
namespace {

using quant::QParams;
using quant::QRange;

// The data layout seen by a per-channel op: [outer, channels, inner].
struct AxisLayout {
  int64_t outer = 1;
  int64_t channels = 1;
  int64_t inner = 1;
};

// Axis of a per-channel scale, validated against x and the scale's length; -1 per tensor.
int channel_axis(const Node& n, const ValueInfo& x, const quant::QParamInfo& q,
                 const std::string& what) {
  if (!q.per_channel) return -1;  // ONNX ignores axis for a per-tensor scale
  if (x.shape.empty()) fail(n, "a per-channel " + what + " needs an input of rank >= 1");
  const int axis = normalize_axis_attr(n, n.attrs.get_int("axis", 1), x.shape.size(), "axis");
  const int64_t dim = x.shape[axis];
  if (dim != kDynamic && dim != q.count) {
    fail(n, what + " has " + std::to_string(q.count) + " values but input '" + x.name + "' has " +
                std::to_string(dim) + " channels along axis " + std::to_string(axis) + " (shape " +
                shape_str(x.shape) + ")");
  }
  return axis;
}

AxisLayout layout_of(const Node& n, const Shape& shape, int axis) {
  AxisLayout l;
  for (int64_t d : shape) {
    if (d == kDynamic) fail(n, "kernel needs a concrete batch size");
  }
  if (axis < 0) {
    l.inner = shape_numel(shape);
    return l;
  }
  for (int d = 0; d < axis; ++d) l.outer *= shape[d];
  l.channels = shape[axis];
  for (size_t d = axis + 1; d < shape.size(); ++d) l.inner *= shape[d];
  return l;
}

void infer_quantize(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  if (x.dtype != DType::kF32) {
    fail(n,
         "input '" + x.name + "' has dtype " + std::string(dtype_name(x.dtype)) + ", expected f32");
  }
  const quant::QParamInfo q = quant::check_qparams(n, in, 1, 2, true, false, "y_scale");
  channel_axis(n, x, q, "y_scale");
  out[0].dtype = q.has_zero_point ? q.zp_dtype : DType::kU8;
  out[0].shape = x.shape;
}

void infer_dequantize(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  if (!quant::is_q8(x.dtype) && x.dtype != DType::kI32) {
    fail(n, "input '" + x.name + "' has dtype " + std::string(dtype_name(x.dtype)) +
                ", expected u8, i8 or i32");
  }
  const quant::QParamInfo q = quant::check_qparams(n, in, 1, 2, true, true, "x_scale");
  if (q.has_zero_point && q.zp_dtype != x.dtype) {
    fail(n, "zero point '" + in[2]->name + "' has dtype " + std::string(dtype_name(q.zp_dtype)) +
                ", expected input '" + x.name + "''s dtype " + std::string(dtype_name(x.dtype)));
  }
  channel_axis(n, x, q, "x_scale");
  out[0].dtype = DType::kF32;
  out[0].shape = x.shape;
}

// Shared by both ops' kernels: the node (for messages), the shape the kernel was built for and
// its channel layout.
class QdqKernelBase : public Kernel {
 protected:
  QdqKernelBase(const Node& n, const Shape& shape, int axis, bool fast)
      : node_(n), shape_(shape), layout_(layout_of(n, shape, axis)), fast_(fast) {}

  QParams params(Tensors in, const char* what) const {
    if (in[0]->shape() != shape_) {
      fail(node_,
           "kernel built for input " + shape_str(shape_) + " got " + shape_str(in[0]->shape()));
    }
    return quant::read_qparams(node_, in, 1, 2, layout_.channels, what);
  }

  // Calls seg(begin, end, channel) over [0, numel) in runs of one channel, in parallel for
  // large tensors.
  template <class F>
  void for_segments(F&& seg) const {
    const AxisLayout l = layout_;
    const int64_t rows = l.outer * l.channels;
    if (l.channels == 1 || l.inner >= kBlock) {
      // Per tensor, or long channel runs: blocks of the flat range, split at channel edges.
      for_blocks(rows * l.inner, [&](int64_t lo, int64_t hi) {
        while (lo < hi) {
          const int64_t row = lo / l.inner;
          const int64_t end = std::min(hi, (row + 1) * l.inner);
          seg(lo, end, row % l.channels);
          lo = end;
        }
      });
      return;
    }
#pragma omp parallel for if (rows * l.inner >= kParallelMin) schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      seg(row * l.inner, (row + 1) * l.inner, row % l.channels);
    }
  }

  Node node_;
  Shape shape_;
  AxisLayout layout_;
  bool fast_;
};

// One channel segment's constants: the scale, and the output range and zero point as
// quantize_scaled_fast takes them.
struct QuantizeSpan {
  float scale, lo_f, hi_f, zp_f;
};

// The fast kernels' loop, vectorized by the compiler per ISA level: baseline x86-64 has no
// 16-lane division or narrowing (an int8 mobilenet_v2's input at batch 26: 0.29 us per sample).
template <class Q>
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void quantize_span(
    const QuantizeSpan& k, const float* __restrict x, Q* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    y[i] = static_cast<Q>(
        static_cast<int32_t>(quant::quantize_scaled_fast(x[i] / k.scale, k.lo_f, k.hi_f, k.zp_f)));
  }
}

class QuantizeKernel final : public QdqKernelBase {
 public:
  QuantizeKernel(const Node& n, const Shape& shape, int axis, DType out, bool fast)
      : QdqKernelBase(n, shape, axis, fast), out_(out) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    const QParams p = params(in, "y_scale");
    const float* x = in[0]->data<float>();
    if (out_ == DType::kU8) return run(x, static_cast<uint8_t*>(out[0]->raw()), p);
    run(x, static_cast<int8_t*>(out[0]->raw()), p);
  }

 private:
  template <class Q>
  void run(const float* x, Q* y, const QParams& p) const {
    const QRange r = quant::qrange(out_);
    if (!fast_) {
      const AxisLayout l = layout_;
      for (int64_t i = 0; i < l.outer * l.channels * l.inner; ++i) {
        const int64_t c = (i / l.inner) % l.channels;
        const float v = x[i] / p.scale_at(c);
        y[i] = static_cast<Q>(quant::quantize_scaled(v, p.zero_point_at(c), r));
      }
      return;
    }
    for_segments([&](int64_t lo, int64_t hi, int64_t c) {
      const int32_t zp = p.zero_point_at(c);
      const QuantizeSpan span{p.scale_at(c), static_cast<float>(r.lo - zp),
                              static_cast<float>(r.hi - zp), static_cast<float>(zp)};
      quantize_span(span, x + lo, y + lo, hi - lo);
    });
  }

  DType out_;
};

class DequantizeKernel final : public QdqKernelBase {
 public:
  DequantizeKernel(const Node& n, const Shape& shape, int axis, bool fast)
      : QdqKernelBase(n, shape, axis, fast) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    const QParams p = params(in, "x_scale");
    float* y = out[0]->data<float>();
    switch (in[0]->dtype()) {
      case DType::kU8:
        return run(static_cast<const uint8_t*>(in[0]->raw()), y, p);
      case DType::kI8:
        return run(static_cast<const int8_t*>(in[0]->raw()), y, p);
      case DType::kI32:
        return run(static_cast<const int32_t*>(in[0]->raw()), y, p);
      default:
        fail(node_, "input must be u8, i8 or i32");
    }
  }

 private:
  // x - zp is exact in int32 for 8-bit data; i32 data needs int64.
  template <class Q>
  using Wide = std::conditional_t<std::is_same_v<Q, int32_t>, int64_t, int32_t>;

  template <class Q>
  void run(const Q* x, float* y, const QParams& p) const {
    if (!fast_) {
      const AxisLayout l = layout_;
      for (int64_t i = 0; i < l.outer * l.channels * l.inner; ++i) {
        const int64_t c = (i / l.inner) % l.channels;
        const int64_t d = static_cast<int64_t>(x[i]) - p.zero_point_at(c);
        y[i] = static_cast<float>(d) * p.scale_at(c);
      }
      return;
    }
    for_segments([&](int64_t lo, int64_t hi, int64_t c) {
      const float s = p.scale_at(c);
      const Wide<Q> zp = p.zero_point_at(c);
      const Q* __restrict xs = x;
      float* __restrict ys = y;
      for (int64_t i = lo; i < hi; ++i) ys[i] = static_cast<float>(xs[i] - zp) * s;
    });
  }
};

std::unique_ptr<Kernel> make_quantize(const Node& n, const InputInfos& in,
                                      const std::vector<ValueInfo>& out, bool fast) {
  const quant::QParamInfo q = quant::check_qparams(n, in, 1, 2, true, false, "y_scale");
  const int axis = channel_axis(n, input(n, in, 0), q, "y_scale");
  return std::make_unique<QuantizeKernel>(n, in[0]->shape, axis, out[0].dtype, fast);
}
std::unique_ptr<Kernel> make_dequantize(const Node& n, const InputInfos& in, bool fast) {
  const quant::QParamInfo q = quant::check_qparams(n, in, 1, 2, true, true, "x_scale");
  const int axis = channel_axis(n, input(n, in, 0), q, "x_scale");
  return std::make_unique<DequantizeKernel>(n, in[0]->shape, axis, fast);
}

std::unique_ptr<Kernel> make_quantize_reference(const Node& n, const InputInfos& in,
                                                const std::vector<ValueInfo>& out) {
  return make_quantize(n, in, out, false);
}
std::unique_ptr<Kernel> make_quantize_fast(const Node& n, const InputInfos& in,
                                           const std::vector<ValueInfo>& out) {
  return make_quantize(n, in, out, true);
}
std::unique_ptr<Kernel> make_dequantize_reference(const Node& n, const InputInfos& in,
                                                  const std::vector<ValueInfo>&) {
  return make_dequantize(n, in, false);
}
std::unique_ptr<Kernel> make_dequantize_fast(const Node& n, const InputInfos& in,
                                             const std::vector<ValueInfo>&) {
  return make_dequantize(n, in, true);
}

}  // namespace

const OpDef kQuantizeLinearDef = {
    OpKind::kQuantizeLinear, "QuantizeLinear",   2,     3,      1, infer_quantize,
    make_quantize_reference, make_quantize_fast, false, nullptr};
const OpDef kDequantizeLinearDef = {
    OpKind::kDequantizeLinear, "DequantizeLinear",   2,     3,      1, infer_dequantize,
    make_dequantize_reference, make_dequantize_fast, false, nullptr};

}  // namespace minnow::ops
