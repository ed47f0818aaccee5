// Conv2d: x [N,C,H,W], w [O,C/group,kh,kw], optional bias [O] -> [N,O,OH,OW].
// Attributes: strides [sh,sw], pads [top,left,bottom,right], dilations [dh,dw], group, and
// channels_last (0/1): with 1, x is [N,H,W,C] and y [N,OH,OW,O] (weights stay OIHW). Only the
// inference pass passes/channels_last.h sets it; such a node has no gradient.
// Optional input 3, `sum` (set by passes/fuse_residual_add.h): a tensor of y's shape added to
// the convolution before the fused activation, y = act(conv(x) + b + sum) — a residual block's
// Add (and ReLU) in the convolution's epilogue.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kernels/conv_algo.h"
#include "kernels/conv_buffer.h"
#include "kernels/conv_geometry.h"
#include "kernels/conv_nhwc.h"
#include "kernels/conv_reference.h"
#include "ops/fused_activation.h"
#include "ops/op_defs.h"
#include "ops/op_util.h"

namespace minnow::ops {
namespace {

using kernels::ConvGeometry;

// Validates inputs and attributes; the batch may be kDynamic (only infer sees that).
ConvGeometry geometry(const Node& n, const InputInfos& in) {
  const ValueInfo& x = input(n, in, 0);
  const ValueInfo& w = input(n, in, 1);
  const ValueInfo* b = in.size() > 2 ? in[2] : nullptr;
  require_rank(n, x, 4);
  require_rank(n, w, 4);
  require_float(n, x);
  require_float(n, w);
  if (w.dtype != x.dtype)
    fail(n, "weight '" + w.name + "' dtype differs from input '" + x.name + "'");
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
  std::vector<int64_t> s = ints_attr(n, "strides", {1, 1}, 2, 1);
  std::vector<int64_t> p = ints_attr(n, "pads", {0, 0, 0, 0}, 4, 0);
  std::vector<int64_t> d = ints_attr(n, "dilations", {1, 1}, 2, 1);
  int64_t group = n.attrs.get_int("group", 1);
  ConvGeometry g;
  const bool nhwc = channels_last_attr(n);
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
  g.group = group;
  if (group < 1 || g.c % group != 0 || g.o % group != 0) {
    fail(n, "group " + std::to_string(group) + " must divide input channels (" +
                std::to_string(g.c) + ") and output channels (" + std::to_string(g.o) + ")");
  }
  if (w.shape[1] != g.cg()) {
    fail(n, "weight '" + w.name + "' has shape " + shape_str(w.shape) + " but input '" + x.name +
                "' has " + std::to_string(g.c) + " channels and group " + std::to_string(group) +
                ": expected dim 1 = " + std::to_string(g.cg()));
  }
  if (b) {
    require_float(n, *b);
    if (b->dtype != x.dtype) fail(n, "bias '" + b->name + "' dtype differs from the input's");
    if (b->shape != Shape{g.o}) {
      fail(n, "bias '" + b->name + "' has shape " + shape_str(b->shape) + ", expected [" +
                  std::to_string(g.o) + "]");
    }
    g.has_bias = true;
  }
  if (g.oh() < 1 || g.ow() < 1) {
    fail(n, "kernel " + std::to_string(g.kh) + "x" + std::to_string(g.kw) + " (dilation " +
                std::to_string(g.dh) + "x" + std::to_string(g.dw) +
                ") is larger than the padded "
                "input " +
                std::to_string(g.h + g.pt + g.pb) + "x" + std::to_string(g.w + g.pl + g.pr));
  }
  return g;
}

void infer_conv(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  ConvGeometry g = geometry(n, in);
  FusedActivation::of(n);  // validates the attribute
  out[0].dtype = in[0]->dtype;
  out[0].shape = channels_last_attr(n) ? Shape{in[0]->shape[0], g.oh(), g.ow(), g.o}
                                       : Shape{in[0]->shape[0], g.o, g.oh(), g.ow()};
  if (channels_last_attr(n) && in[0]->dtype != DType::kF32) fail(n, "channels_last needs f32 data");
  if (in.size() > 3 && in[3]) {
    if (in[3]->dtype != out[0].dtype || in[3]->shape != out[0].shape) {
      fail(n, "sum input '" + in[3]->name + "' is " + std::string(dtype_name(in[3]->dtype)) + " " +
                  shape_str(in[3]->shape) + ", expected the output's " +
                  std::string(dtype_name(out[0].dtype)) + " " + shape_str(out[0].shape));
    }
  }
}

bool has_sum(Tensors in) { return in.size() > 3 && in[3]; }

// The gradient of the sum input is dy (through the fused activation).
template <class T>
void sum_gradient(Tensors grad_in, const T* dy, int64_t n) {
  if (grad_in.size() > 3 && grad_in[3]) std::copy(dy, dy + n, grad_in[3]->data<T>());
}

int64_t conv_macs(const Node& n, const InputInfos& in, const std::vector<ValueInfo>&) {
  return geometry(n, in).macs_per_sample();
}

// Kernels are built for one concrete shape; a session builds a new one for a new batch size.
void check_batch(const ConvGeometry& g, const Tensor& x, bool nhwc = false) {
  const int64_t c = x.rank() == 4 ? x.dim(nhwc ? 3 : 1) : -1;
  const int64_t h = x.rank() == 4 ? x.dim(nhwc ? 1 : 2) : -1;
  const int64_t w = x.rank() == 4 ? x.dim(nhwc ? 2 : 3) : -1;
  if (x.rank() != 4 || x.dim(0) != g.n || c != g.c || h != g.h || w != g.w) {
    const Shape want = nhwc ? Shape{g.n, g.h, g.w, g.c} : Shape{g.n, g.c, g.h, g.w};
    throw Error("Conv2d kernel built for input " + shape_str(want) + " got " +
                shape_str(x.shape()));
  }
}

void clamp_parallel(float* y, int64_t n, float lo, float hi) {
#pragma omp parallel for if (n >= (int64_t{1} << 16)) schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(y[i], lo), hi);
}

// y = clamp(y + s): without an activation lo/hi are infinite.
void add_clamp_parallel(float* y, const float* s, int64_t n, float lo, float hi) {
#pragma omp parallel for if (n >= (int64_t{1} << 16)) schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(y[i] + s[i], lo), hi);
}

void zero_grads(Tensors grad_in) {
  for (Tensor* t : grad_in) {
    if (t) t->fill_zero();
  }
}

class ConvReference : public Kernel {
 public:
  ConvReference(const ConvGeometry& g, FusedActivation act) : g_(g), act_(act) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    check_batch(g_, *in[0]);
    dispatch_float(in[0]->dtype(), [&]<class T>() {
      const T* b = g_.has_bias ? in[2]->data<T>() : nullptr;
      T* y = out[0]->data<T>();
      kernels::conv_forward_reference<T>(g_, in[0]->data<T>(), in[1]->data<T>(), b, y);
      if (has_sum(in)) {
        const T* s = in[3]->data<T>();
        for (int64_t i = 0; i < out[0]->numel(); ++i) y[i] += s[i];
      }
      act_.apply(y, out[0]->numel());
    });
  }

  void backward(Tensors in, Tensors out, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!grad_out[0]) return zero_grads(grad_in);
    dispatch_float(in[0]->dtype(), [&]<class T>() {
      auto ptr = [&](size_t i) {
        return i < grad_in.size() && grad_in[i] ? grad_in[i]->data<T>() : nullptr;
      };
      const T* dy = grad_out[0]->data<T>();
      std::vector<T> masked;
      if (act_.on) {  // through the fused activation first
        masked.resize(out[0]->numel());
        act_.mask(dy, out[0]->data<T>(), masked.data(), out[0]->numel());
        dy = masked.data();
      }
      sum_gradient<T>(grad_in, dy, out[0]->numel());
      kernels::conv_backward_reference<T>(g_, in[0]->data<T>(), in[1]->data<T>(), dy, ptr(0),
                                          ptr(1), g_.has_bias ? ptr(2) : nullptr);
    });
  }

 private:
  ConvGeometry g_;
  FusedActivation act_;
};

class ConvFast : public Kernel {
 public:
  ConvFast(const ConvGeometry& g, FusedActivation act)
      : g_(g), act_(act), algo_(kernels::choose_conv_algo(g)) {}

  void forward(Tensors in, Tensors out, RunContext& ctx) override {
    check_batch(g_, *in[0]);
    float* y = out[0]->f32();
    algo_->forward(in[0]->f32(), in[1]->f32(), g_.has_bias ? in[2]->f32() : nullptr, y,
                   ctx.training);
    // A separate pass, but over an output just written: at inference batch sizes it is still
    // in cache, which is what saving the activation (and Add) node buys.
    if (has_sum(in)) {
      add_clamp_parallel(y, in[3]->f32(), out[0]->numel(), act_.lo, act_.hi);
    } else if (act_.on) {
      clamp_parallel(y, out[0]->numel(), act_.lo, act_.hi);
    }
  }

  void backward(Tensors in, Tensors out, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!grad_out[0]) return zero_grads(grad_in);
    const float* dy = grad_out[0]->f32();
    if (act_.on) {
      float* m = masked_.get(out[0]->numel());
      act_.mask(dy, out[0]->f32(), m, out[0]->numel());
      dy = m;
    }
    sum_gradient<float>(grad_in, dy, out[0]->numel());
    // The first layer's input needs no gradient: skipping backward-data there saves about a
    // third of its backward time.
    float* dx = grad_in[0] ? grad_in[0]->f32() : nullptr;
    Tensor* dw = grad_in.size() > 1 ? grad_in[1] : nullptr;
    Tensor* db = g_.has_bias && grad_in.size() > 2 ? grad_in[2] : nullptr;
    if (!dw && !db) {
      if (dx) algo_->backward_data(dy, in[1]->f32(), dx);
      return;
    }
    float* dw_ptr = dw ? dw->f32() : unused_dw_.get(g_.o * g_.col_rows());
    algo_->backward(in[0]->f32(), dy, in[1]->f32(), dx, dw_ptr, db ? db->f32() : nullptr);
  }

 private:
  ConvGeometry g_;
  FusedActivation act_;
  std::unique_ptr<kernels::ConvAlgo> algo_;
  kernels::FloatBuffer unused_dw_;  // weight-gradient target when only db is wanted
  kernels::FloatBuffer masked_;     // dy through the fused activation
};

// channels_last = 1 (inference only): the fast kernel is oneDNN on NHWC data with the
// activation as a post-op; the reference transposes to NCHW around the reference convolution.
class ConvChannelsLast : public Kernel {
 public:
  ConvChannelsLast(const Node& n, const ConvGeometry& g, FusedActivation act, bool fast)
      : node_(n), g_(g), act_(act) {
    const bool sum = n.inputs.size() > 3 && !n.inputs[3].empty();
    if (fast) nhwc_ = std::make_unique<kernels::ConvNhwc>(g, sum, act.on, act.lo, act.hi);
  }

  void forward(Tensors in, Tensors out, RunContext& ctx) override {
    if (ctx.training) fail(node_, "a channels_last Conv2d runs in inference only");
    check_batch(g_, *in[0], true);
    const float* b = g_.has_bias ? in[2]->f32() : nullptr;
    const float* sum = has_sum(in) ? in[3]->f32() : nullptr;
    if (nhwc_) return nhwc_->forward(in[0]->f32(), in[1]->f32(), b, sum, out[0]->f32());
    const int64_t hw = g_.h * g_.w, ohw = g_.oh() * g_.ow();
    float* x = x_.get(g_.n * g_.c * hw);
    float* y = y_.get(g_.n * g_.o * ohw);
    const float* xs = in[0]->f32();
    for (int64_t s = 0; s < g_.n; ++s) {
      for (int64_t p = 0; p < hw; ++p) {
        for (int64_t c = 0; c < g_.c; ++c) x[(s * g_.c + c) * hw + p] = xs[(s * hw + p) * g_.c + c];
      }
    }
    kernels::conv_forward_reference<float>(g_, x, in[1]->f32(), b, y);
    float* ys = out[0]->f32();
    for (int64_t s = 0; s < g_.n; ++s) {
      for (int64_t p = 0; p < ohw; ++p) {
        for (int64_t o = 0; o < g_.o; ++o)
          ys[(s * ohw + p) * g_.o + o] = y[(s * g_.o + o) * ohw + p];
      }
    }
    if (sum) {
      for (int64_t i = 0; i < out[0]->numel(); ++i) ys[i] += sum[i];
    }
    act_.apply(ys, out[0]->numel());
  }

  void backward(Tensors, Tensors, Tensors, Tensors, RunContext&) override {
    fail(node_, "a channels_last Conv2d has no gradient (it is made for inference only)");
  }

 private:
  Node node_;
  ConvGeometry g_;
  FusedActivation act_;
  std::unique_ptr<kernels::ConvNhwc> nhwc_;
  kernels::FloatBuffer x_, y_;  // reference: NCHW copies
};

ConvGeometry concrete_geometry(const Node& n, const InputInfos& in) {
  ConvGeometry g = geometry(n, in);
  if (g.n == kDynamic) fail(n, "kernel needs a concrete batch size");
  return g;
}

std::unique_ptr<Kernel> make_reference(const Node& n, const InputInfos& in,
                                       const std::vector<ValueInfo>&) {
  if (channels_last_attr(n)) {
    return std::make_unique<ConvChannelsLast>(n, concrete_geometry(n, in), FusedActivation::of(n),
                                              false);
  }
  return std::make_unique<ConvReference>(concrete_geometry(n, in), FusedActivation::of(n));
}

std::unique_ptr<Kernel> make_fast(const Node& n, const InputInfos& in,
                                  const std::vector<ValueInfo>&) {
  if (channels_last_attr(n)) {
    return std::make_unique<ConvChannelsLast>(n, concrete_geometry(n, in), FusedActivation::of(n),
                                              true);
  }
  return std::make_unique<ConvFast>(concrete_geometry(n, in), FusedActivation::of(n));
}

}  // namespace

ConvGeometry conv_geometry(const Node& n, const InputInfos& in) { return concrete_geometry(n, in); }

const OpDef kConv2dDef = {OpKind::kConv2d, "Conv2d",       2,         4,    1,
                          infer_conv,      make_reference, make_fast, true, conv_macs};

}  // namespace minnow::ops
