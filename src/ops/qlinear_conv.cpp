// QLinearConv: int8 2-d convolution with ONNX QLinearConv's inputs (see qlinear_params.h) and
// Conv2d's attributes (strides, pads [t,l,b,r], dilations, group, fused activation), and an
// optional fused residual QLinearAdd (inputs 9-13, see qlinear_params.h).
// x [N,C,H,W] u8|i8, w [O,C/group,kh,kw] i8 -> y [N,O,OH,OW] u8|i8, or f32 without y_scale.
// Attribute channels_last=1 (set by passes/channels_last.h): x is [N,H,W,C] and y
// [N,OH,OW,O], in the graph's shapes and in memory, which is the layout oneDNN computes int8
// convolutions in, so chains of such nodes pass activations along without reorders.
#include <memory>
#include <string>
#include <vector>

#include "kernels/conv_geometry.h"
#include "kernels/qconv_depthwise_nhwc.h"
#include "kernels/qconv_dnnl.h"
#include "kernels/qconv_one_channel_nhwc.h"
#include "kernels/qconv_pointwise_nhwc.h"
#include "kernels/qlinear_reference.h"
#include "ops/elementwise.h"
#include "ops/op_defs.h"
#include "ops/qlinear_add_u8.h"
#include "ops/qlinear_params.h"

namespace minnow::ops {
namespace {

using kernels::ConvGeometry;
namespace q = qlinear;

// Validates shapes and attributes; the batch may be kDynamic (only infer sees that).
ConvGeometry geometry(const Node& n, const InputInfos& in) {
  const ValueInfo& x = input(n, in, q::kX);
  const ValueInfo& w = input(n, in, q::kW);
  require_rank(n, x, 4);
  require_rank(n, w, 4);
  for (int d = 1; d < 4; ++d) {
    if (x.shape[d] <= 0) {
      fail(n, "input '" + x.name + "' has shape " + shape_str(x.shape) +
                  ": channel and spatial dims must be concrete and positive");
    }
  }
  if (x.shape[0] != kDynamic && x.shape[0] < 0) fail(n, "input '" + x.name + "' has a bad batch");
  for (int64_t d : w.shape) {
    if (d <= 0) fail(n, "weight '" + w.name + "' has shape " + shape_str(w.shape));
  }
  const std::vector<int64_t> s = ints_attr(n, "strides", {1, 1}, 2, 1);
  const std::vector<int64_t> p = ints_attr(n, "pads", {0, 0, 0, 0}, 4, 0);
  const std::vector<int64_t> d = ints_attr(n, "dilations", {1, 1}, 2, 1);
  const bool nhwc = channels_last_attr(n);
  ConvGeometry g;
  g.n = x.shape[0];
  g.c = x.shape[nhwc ? 3 : 1];
  g.h = x.shape[nhwc ? 1 : 2];
  g.w = x.shape[nhwc ? 2 : 3];
  g.o = w.shape[0];
  g.kh = w.shape[2];
  g.kw = w.shape[3];
  g.sh = s[0];
  g.sw = s[1];
  g.pt = p[0];
  g.pl = p[1];
  g.pb = p[2];
  g.pr = p[3];
  g.dh = d[0];
  g.dw = d[1];
  g.group = n.attrs.get_int("group", 1);
  g.has_bias = q::optional(in, q::kBias) != nullptr;
  if (g.group < 1 || g.c % g.group != 0 || g.o % g.group != 0) {
    fail(n, "group " + std::to_string(g.group) + " must divide input channels (" +
                std::to_string(g.c) + ") and output channels (" + std::to_string(g.o) + ")");
  }
  if (w.shape[1] != g.cg()) {
    fail(n, "weight '" + w.name + "' has shape " + shape_str(w.shape) + " but input '" + x.name +
                "' has " + std::to_string(g.c) + " channels and group " + std::to_string(g.group) +
                ": expected dim 1 = " + std::to_string(g.cg()));
  }
  // Compared directly: ConvGeometry::oh() divides a negative extent by the stride, which
  // truncates toward zero and yields 1 for a kernel just too large with stride > 1.
  if (g.h + g.pt + g.pb < g.dh * (g.kh - 1) + 1 || g.w + g.pl + g.pr < g.dw * (g.kw - 1) + 1) {
    fail(n, "kernel " + std::to_string(g.kh) + "x" + std::to_string(g.kw) + " (dilation " +
                std::to_string(g.dh) + "x" + std::to_string(g.dw) +
                ") is larger than the padded input " + std::to_string(g.h + g.pt + g.pb) + "x" +
                std::to_string(g.w + g.pl + g.pr));
  }
  return g;
}

void infer_qconv(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ConvGeometry g = geometry(n, in);
  out[0].dtype = q::validate(n, in, g.o);
  out[0].shape = channels_last_attr(n) ? Shape{in[q::kX]->shape[0], g.oh(), g.ow(), g.o}
                                       : Shape{in[q::kX]->shape[0], g.o, g.oh(), g.ow()};
  if (const ValueInfo* sum = q::optional(in, q::kSum)) {
    bool same = sum->shape.size() == 4;
    for (size_t d = 1; same && d < 4; ++d) same = sum->shape[d] == out[0].shape[d];
    if (!same) {
      fail(n, "sum '" + sum->name + "' has shape " + shape_str(sum->shape) + ", expected " +
                  shape_str(out[0].shape) + " (the output's)");
    }
  }
}

int64_t qconv_macs(const Node& n, const InputInfos& in, const std::vector<ValueInfo>&) {
  return geometry(n, in).macs_per_sample();
}

ConvGeometry concrete_geometry(const Node& n, const InputInfos& in) {
  ConvGeometry g = geometry(n, in);
  if (g.n == kDynamic) fail(n, "kernel needs a concrete batch size");
  return g;
}

void check_input(const Node& n, const ConvGeometry& g, DType x_dtype, Tensors in) {
  const Tensor& x = *in[q::kX];
  const bool nhwc = channels_last_attr(n);
  const Shape want = nhwc ? Shape{g.n, g.h, g.w, g.c} : Shape{g.n, g.c, g.h, g.w};
  if (x.dtype() != x_dtype || x.shape() != want) {
    fail(n, "kernel built for input " + shape_str(want) + " " + q::dtype_str(x_dtype) + ", got " +
                shape_str(x.shape()) + " " + q::dtype_str(x.dtype()));
  }
  if (const Tensor* sum = q::optional(in, q::kSum)) {
    const Shape y = nhwc ? Shape{g.n, g.oh(), g.ow(), g.o} : Shape{g.n, g.o, g.oh(), g.ow()};
    if (sum->shape() != y) {
      fail(n, "kernel built for sum " + shape_str(y) + ", got " + shape_str(sum->shape()));
    }
  }
}

void run_reference(const ConvGeometry& g, const kernels::QLinearParams& p, const Tensor& x,
                   const Tensor& w, Tensor& y, bool nhwc) {
  const auto* wp = static_cast<const int8_t*>(w.raw());
  if (x.dtype() == DType::kU8) {
    kernels::qconv_forward_reference(g, p, static_cast<const uint8_t*>(x.raw()), wp, y.raw(), nhwc);
  } else {
    kernels::qconv_forward_reference(g, p, static_cast<const int8_t*>(x.raw()), wp, y.raw(), nhwc);
  }
}

class QConvReference : public Kernel {
 public:
  QConvReference(const Node& n, const InputInfos& in, const std::vector<ValueInfo>& out)
      : node_(n),
        g_(concrete_geometry(n, in)),
        act_(FusedActivation::of(n)),
        x_dtype_(in[q::kX]->dtype),
        out_(out[0].dtype) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    check_input(node_, g_, x_dtype_, in);
    run_reference(g_, q::read_params(node_, in, out_, act_), *in[q::kX], *in[q::kW], *out[0],
                  channels_last_attr(node_));
  }

 private:
  Node node_;
  ConvGeometry g_;
  FusedActivation act_;
  DType x_dtype_, out_;
};

// oneDNN's int8 convolution, or minnow's own for channels-last depthwise, one-channel and
// pointwise layers (oneDNN's are slower there than its f32 ones or than its own call overhead;
// see kernels/qconv_depthwise_nhwc.h, qconv_one_channel_nhwc.h and qconv_pointwise_nhwc.h). Nonzero
// weight zero points (which neither can apply) take the reference path; the spec's weights are
// symmetric, so that is the exception.
class QConvFast : public Kernel {
 public:
  QConvFast(const Node& n, const InputInfos& in, const std::vector<ValueInfo>& out)
      : node_(n),
        g_(concrete_geometry(n, in)),
        act_(FusedActivation::of(n)),
        x_dtype_(in[q::kX]->dtype),
        out_(out[0].dtype),
        nhwc_(channels_last_attr(n)),
        dnnl_(g_, x_dtype_, conv_output_dtype(in, out_), nhwc_),
        own_(choose_own(in)),
        params_(in) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    const Tensor& x = *in[q::kX];
    check_input(node_, g_, x_dtype_, in);
    const kernels::QLinearParams p = params_.read(node_, in, out_, act_);
    if (!p.w_zp_all_zero() || g_.n == 0) {
      return run_reference(g_, p, x, *in[q::kW], *out[0], nhwc_);
    }
    const auto* w = static_cast<const int8_t*>(in[q::kW]->raw());
    if (own_) return own_->forward(p, x.raw(), w, out[0]->raw());
    if (!p.sum) return dnnl_.forward(p, x.raw(), w, out[0]->raw());
    // A fused residual Add on oneDNN: the convolution's 8-bit output, then QLinearAdd's loop.
    // (oneDNN 2.6's jit int8 convolutions computed wrong results for post-op chains that
    // round the convolution's result before adding the residual.)
    conv_scratch_.resize(static_cast<size_t>(out[0]->numel()));
    dnnl_.forward(p, x.raw(), w, conv_scratch_.data());
    add_residual(p, *out[0]);
  }

  void set_constant_inputs(const std::vector<bool>& constant) override {
    const q::ConstantInputs c = params_.set_constant(constant);
    dnnl_.set_weights_constant(c.weights);
    if (own_) own_->set_constant(c.weights, c.params);
  }

 private:
  // minnow's own kernel for this layer, if one applies on this CPU (channels-last only).
  std::unique_ptr<kernels::QConvOwnKernel> choose_own(const InputInfos& in) const {
    if (!nhwc_) return nullptr;
    const bool sum = q::optional(in, q::kSum) != nullptr;
    if (!sum && kernels::QConvDepthwiseNhwc::supports(g_, x_dtype_)) {
      return std::make_unique<kernels::QConvDepthwiseNhwc>(g_, x_dtype_, out_);
    }
    if (!sum && kernels::QConvOneChannelNhwc::supports(g_, x_dtype_)) {
      return std::make_unique<kernels::QConvOneChannelNhwc>(g_, x_dtype_, out_);
    }
    // 1x1 layers: faster than oneDNN's at batch 1 (whose per-call work costs as much as the
    // arithmetic) and at batch 256 (mobilenet_v2 6.4 -> 5.9 ms), with a fused residual Add too
    // since the evening of 2026-11-24 (it was limited to small products, for which oneDNN
    // then QLinearAdd's loop had been faster; now batch 256, 2 threads: mobilenet_v2 4.92 ->
    // 4.72 ms, resnet8 4.05 -> 4.00; 1 thread: 9.22 -> 8.71, 8.75 -> 7.92).
    if (kernels::QConvPointwiseNhwc::supports(g_, x_dtype_)) {
      return std::make_unique<kernels::QConvPointwiseNhwc>(g_, x_dtype_, out_);
    }
    return nullptr;
  }

  // The dtype of the convolution's own output: with a fused residual Add that of y_zero_point
  // (u8 when absent), else the op's.
  static DType conv_output_dtype(const InputInfos& in, DType out) {
    if (!q::optional(in, q::kSum)) return out;
    const ValueInfo* yz = q::optional(in, q::kYZp);
    return yz ? yz->dtype : DType::kU8;
  }

  // out = QLinearAdd(conv_scratch_, p.sum), as ops/qlinear_add.cpp computes it.
  void add_residual(const kernels::QLinearParams& p, Tensor& out) const {
    const int64_t count = out.numel();
    if (p.out == DType::kU8 && p.sum_dtype == DType::kU8 && p.sum_out == DType::kU8) {
      const ops::AddU8 k{p.y_scale,
                         p.sum_scale,
                         p.sum_out_scale,
                         static_cast<float>(p.y_zp),
                         static_cast<float>(p.sum_zp),
                         p.sum_act_lo,
                         p.sum_act_hi,
                         static_cast<float>(0 - p.sum_out_zp),
                         static_cast<float>(255 - p.sum_out_zp),
                         static_cast<float>(p.sum_out_zp)};
      const uint8_t* a = conv_scratch_.data();
      const auto* b = static_cast<const uint8_t*>(p.sum);
      auto* y = static_cast<uint8_t*>(out.raw());
      // Two threads from 8k values: oneDNN ran the convolution on an OpenMP team just before,
      // whose threads still spin, so sharing costs about 0.5 us (resnet8 int8 at batch 1: the
      // 12,544-value Add after its first 3x3 layer 2.2 -> 1.9 us).
      const int64_t blocks = (count + 4095) / 4096;
#pragma omp parallel for if (count >= 8192) schedule(static)
      for (int64_t i = 0; i < blocks; ++i) {
        const int64_t lo = i * 4096, n = std::min<int64_t>(4096, count - lo);
        ops::add_u8(k, a + lo, b + lo, y + lo, n);
      }
      return;
    }
    for (int64_t i = 0; i < count; ++i) {
      const uint8_t c = conv_scratch_[static_cast<size_t>(i)];
      const int32_t q = p.out == DType::kU8 ? int32_t{c} : int32_t{static_cast<int8_t>(c)};
      kernels::add_residual_one(p, q, out.raw(), i);
    }
  }

  Node node_;
  ConvGeometry g_;
  FusedActivation act_;
  DType x_dtype_, out_;
  bool nhwc_;
  kernels::QConvDnnl dnnl_;
  std::unique_ptr<kernels::QConvOwnKernel> own_;
  q::ParamReader params_;
  std::vector<uint8_t> conv_scratch_;  // the convolution's output, fused residual on oneDNN only
};

std::unique_ptr<Kernel> make_reference(const Node& n, const InputInfos& in,
                                       const std::vector<ValueInfo>& out) {
  return std::make_unique<QConvReference>(n, in, out);
}

std::unique_ptr<Kernel> make_fast(const Node& n, const InputInfos& in,
                                  const std::vector<ValueInfo>& out) {
  return std::make_unique<QConvFast>(n, in, out);
}

}  // namespace

const OpDef kQLinearConvDef = {OpKind::kQLinearConv, "QLinearConv",  5,         14,    1,
                               infer_qconv,          make_reference, make_fast, false, qconv_macs};

}  // namespace minnow::ops
