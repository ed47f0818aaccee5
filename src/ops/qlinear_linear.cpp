// QLinearLinear: minnow's Linear (y = x W^T + b, W [out,in]) on quantized data, with
// QLinearConv's inputs (see qlinear_params.h). x [..., in] u8|i8 (leading dims flattened into
// rows), w [out,in] i8 -> y [..., out] u8|i8, or f32 without y_scale.
//
// The fast kernel is the int8 convolution of a 1x1 image: rows as the batch, `in` as channels.
// That is the product oneDNN's inner product computes, and its int8 convolution is the primitive
// that takes source and destination zero points (its inner product does not in 2.6).
#include <memory>
#include <string>
#include <vector>

#include "kernels/qconv_dnnl.h"
#include "kernels/qconv_pointwise_nhwc.h"
#include "kernels/qlinear_reference.h"
#include "ops/op_defs.h"
#include "ops/qlinear_params.h"

namespace minnow::ops {
namespace {

namespace q = qlinear;

struct Dims {
  int64_t rows, in, out;
};

void infer_qlinear(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, q::kX);
  const ValueInfo& w = input(n, in, q::kW);
  require_rank(n, w, 2);
  if (w.shape[0] <= 0 || w.shape[1] <= 0) {
    fail(n,
         "weight '" + w.name + "' must have a concrete positive shape, got " + shape_str(w.shape));
  }
  if (x.shape.empty()) fail(n, "input '" + x.name + "' must have rank >= 1, got a scalar");
  if (x.shape.back() != w.shape[1]) {
    fail(n, "input '" + x.name + "' has shape " + shape_str(x.shape) + " but weight '" + w.name +
                "' has shape " + shape_str(w.shape) + ": the last input dim must be " +
                std::to_string(w.shape[1]));
  }
  out[0].dtype = q::validate(n, in, w.shape[0]);
  out[0].shape = x.shape;
  out[0].shape.back() = w.shape[0];
}

int64_t qlinear_macs(const Node&, const InputInfos& in, const std::vector<ValueInfo>& out) {
  return numel_per_sample(out[0].shape) * in[q::kW]->shape[1];
}

Dims concrete_dims(const Node& n, const InputInfos& in) {
  const Shape& x = in[q::kX]->shape;
  const int64_t rows = shape_numel(Shape(x.begin(), x.end() - 1));
  if (rows < 0) fail(n, "kernel needs a concrete batch size");
  return {rows, in[q::kW]->shape[1], in[q::kW]->shape[0]};
}

void check_input(const Node& n, const Shape& shape, DType dtype, const Tensor& x) {
  if (x.dtype() != dtype || x.shape() != shape) {
    fail(n, "kernel built for input " + shape_str(shape) + " " + q::dtype_str(dtype) + ", got " +
                shape_str(x.shape()) + " " + q::dtype_str(x.dtype()));
  }
}

void run_reference(const Dims& d, const kernels::QLinearParams& p, const Tensor& x, const Tensor& w,
                   Tensor& y) {
  const auto* wp = static_cast<const int8_t*>(w.raw());
  if (x.dtype() == DType::kU8) {
    kernels::qlinear_forward_reference(d.rows, d.in, d.out, p, static_cast<const uint8_t*>(x.raw()),
                                       wp, y.raw());
  } else {
    kernels::qlinear_forward_reference(d.rows, d.in, d.out, p, static_cast<const int8_t*>(x.raw()),
                                       wp, y.raw());
  }
}

class QLinearReference : public Kernel {
 public:
  QLinearReference(const Node& n, const InputInfos& in, const std::vector<ValueInfo>& out)
      : node_(n),
        d_(concrete_dims(n, in)),
        act_(FusedActivation::of(n)),
        x_shape_(in[q::kX]->shape),
        x_dtype_(in[q::kX]->dtype),
        out_(out[0].dtype) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    check_input(node_, x_shape_, x_dtype_, *in[q::kX]);
    run_reference(d_, q::read_params(node_, in, out_, act_), *in[q::kX], *in[q::kW], *out[0]);
  }

 private:
  Node node_;
  Dims d_;
  FusedActivation act_;
  Shape x_shape_;
  DType x_dtype_, out_;
};

kernels::ConvGeometry as_conv(const Dims& d, bool bias) {
  kernels::ConvGeometry g;
  g.n = d.rows;
  g.c = d.in;
  g.o = d.out;
  g.has_bias = bias;
  return g;
}

class QLinearFast : public Kernel {
 public:
  static constexpr int64_t kTinyMacs = 4096;
  // Products up to this size with u8 inputs run on minnow's own 1x1 convolution (a Linear is
  // one over `rows` pixels; kernels/qconv_pointwise_nhwc.h), which costs far less per call than
  // oneDNN or the reference loop: mobilenet_v2's 128 -> 10 classifier at batch 1 took 0.72 us in
  // the reference loop.
  static constexpr int64_t kOwnMaxMacs = int64_t{1} << 22;

  QLinearFast(const Node& n, const InputInfos& in, const std::vector<ValueInfo>& out)
      : node_(n),
        d_(concrete_dims(n, in)),
        act_(FusedActivation::of(n)),
        x_shape_(in[q::kX]->shape),
        x_dtype_(in[q::kX]->dtype),
        out_(out[0].dtype),
        dnnl_(as_conv(d_, q::optional(in, q::kBias) != nullptr), x_dtype_, out_),
        params_(in) {
    const kernels::ConvGeometry g = as_conv(d_, q::optional(in, q::kBias) != nullptr);
    if (d_.rows * d_.in * d_.out <= kOwnMaxMacs &&
        kernels::QConvPointwiseNhwc::supports(g, x_dtype_)) {
      own_ = std::make_unique<kernels::QConvPointwiseNhwc>(g, x_dtype_, out_);
    }
  }

  void forward(Tensors in, Tensors out, RunContext&) override {
    const Tensor& x = *in[q::kX];
    check_input(node_, x_shape_, x_dtype_, x);
    const kernels::QLinearParams p = params_.read(node_, in, out_, act_);
    // Neither oneDNN nor minnow's kernel has weight zero points; the spec's weights are
    // symmetric, so this is rare.
    if (!p.w_zp_all_zero()) return run_reference(d_, p, x, *in[q::kW], *out[0]);
    const auto* w = static_cast<const int8_t*>(in[q::kW]->raw());
    if (own_) return own_->forward(p, x.raw(), w, out[0]->raw());
    // Without it, a tiny product (a classifier head at batch 1: 1,280 multiply-adds) costs less
    // in the exact reference loop than oneDNN's per-call overhead (about 1 us).
    if (d_.rows * d_.in * d_.out <= kTinyMacs) return run_reference(d_, p, x, *in[q::kW], *out[0]);
    dnnl_.forward(p, x.raw(), w, out[0]->raw());
  }

  void set_constant_inputs(const std::vector<bool>& constant) override {
    const q::ConstantInputs c = params_.set_constant(constant);
    dnnl_.set_weights_constant(c.weights);
    if (own_) own_->set_constant(c.weights, c.params);
  }

 private:
  Node node_;
  Dims d_;
  FusedActivation act_;
  Shape x_shape_;
  DType x_dtype_, out_;
  kernels::QConvDnnl dnnl_;
  std::unique_ptr<kernels::QConvPointwiseNhwc> own_;  // small u8 products on AVX-512 VNNI
  q::ParamReader params_;
};

std::unique_ptr<Kernel> make_reference(const Node& n, const InputInfos& in,
                                       const std::vector<ValueInfo>& out) {
  return std::make_unique<QLinearReference>(n, in, out);
}

std::unique_ptr<Kernel> make_fast(const Node& n, const InputInfos& in,
                                  const std::vector<ValueInfo>& out) {
  return std::make_unique<QLinearFast>(n, in, out);
}

}  // namespace

const OpDef kQLinearLinearDef = {
    OpKind::kQLinearLinear, "QLinearLinear", 5,         9,     1,
    infer_qlinear,          make_reference,  make_fast, false, qlinear_macs};

}  // namespace minnow::ops
