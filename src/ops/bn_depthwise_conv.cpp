// BatchNormDepthwiseConv: BatchNorm (with its fused ReLU/ReLU6) followed by a depthwise Conv2d,
// and optionally by a second BatchNorm (+ activation) of the convolution's output, as one node.
// Inputs: x, gamma, beta, running_mean, running_var (the BatchNorm's), weights [C, 1, kh, kw] and
// an optional bias (the convolution's); with the trailing BatchNorm, 11 inputs: the bias' slot
// (may be empty), then that BatchNorm's gamma, beta, running_mean, running_var. Attributes: the
// BatchNorm's (epsilon, momentum, activation), the convolution's (strides, pads, dilations,
// group) and the trailing BatchNorm's as post_epsilon, post_momentum, post_activation. The
// training session makes it (passes/fuse_batchnorm_depthwise.h); it is never stored or exported.
//
// Why: in an inverted-residual block the expansion's BatchNorm + ReLU6 writes an activation six
// times wider than the block's input, and the depthwise convolution reads it back; backward
// does the same with its gradient. MobileNetV2's 28x28 block at batch 64 moves 19 MB per pass.
// The fused fast kernel works channel by channel: the channel's input planes (N of them, a few
// hundred KB at most) are read once for the statistics, then normalized into a scratch buffer
// that the convolution reads right away (plane by plane for the row kernel, all the channel's
// planes for the flat-plane kernel, which takes four at a time), so the normalized activation
// never goes to memory. Backward recomputes that plane from x, runs the convolution's backward on
// it, keeps the channel's gradient planes in a per-thread buffer for BatchNorm's reductions and
// writes dx once. The trailing BatchNorm works on the channel's output planes while they are in
// cache: its statistics and normalization right after the convolution wrote them (they are kept
// for backward), and backward its sums and gradient (into a per-thread buffer the convolution's
// backward reads) before the convolution's backward, so that gradient never goes to memory
// either (MobileNetV2 at batch 64: 7.2 MB per pass in the 144-channel 14x14 block). The
// reference kernel (and the fast kernel where the fused loops do not apply
// or measured slower, see make_fast) runs BatchNorm's and Conv2d's own kernels one after the
// other: the fused loops are tested against exactly the ops they replace.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "kernels/conv_buffer.h"
#include "kernels/conv_depthwise3x3.h"
#include "kernels/conv_depthwise_plane.h"
#include "kernels/prefetch.h"
#include "ops/bn_channel.h"
#include "ops/fused_activation.h"
#include "ops/op_defs.h"
#include "ops/op_util.h"

namespace minnow::ops {
namespace {

using kernels::ConvDepthwise3x3;
using kernels::ConvGeometry;

constexpr size_t kBatchNormInputs = 5;  // x, gamma, beta, running_mean, running_var
constexpr size_t kBiasInput = 6;
constexpr size_t kPostInput = 7;  // the trailing BatchNorm's gamma; then beta, running stats
constexpr size_t kWithPost = 11;  // inputs with the trailing BatchNorm
// The smallest planes the fused loops take (make_fast).
constexpr int64_t kMinFusedPlaneStride1 = 28 * 28, kMinFusedPlaneStride2 = 14 * 14;
// The depthwise kernels' weight-gradient sums: nine taps and the bias, 16 lanes each.
constexpr int64_t kSumFloats = 10 * 16;

void copy_attrs(const Node& from, Node& to, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    auto it = from.attrs.all().find(key);
    if (it != from.attrs.all().end()) to.attrs.set(key, it->second);
  }
}

bool has_post(const Node& n) { return n.inputs.size() == kWithPost; }

// Where the convolution's inputs end: after the bias, or after the weights when there is none.
size_t conv_end(const Node& n) {
  return n.inputs.size() > kBiasInput && !n.inputs[kBiasInput].empty() ? kBiasInput + 1
                                                                       : kBiasInput;
}

// The nodes this one stands for; the BatchNorm writes "<name>/normalized", the convolution
// reads it and writes "<name>/conv" when the trailing BatchNorm reads that.
Node bn_part(const Node& n) {
  Node b;
  b.name = n.name;
  b.op = OpKind::kBatchNorm;
  b.inputs.assign(n.inputs.begin(), n.inputs.begin() + kBatchNormInputs);
  b.outputs = {n.name + "/normalized"};
  copy_attrs(n, b, {"epsilon", "momentum", "activation"});
  return b;
}

Node conv_part(const Node& n) {
  Node c;
  c.name = n.name;
  c.op = OpKind::kConv2d;
  c.inputs = {n.name + "/normalized"};
  c.inputs.insert(c.inputs.end(), n.inputs.begin() + kBatchNormInputs,
                  n.inputs.begin() + conv_end(n));
  c.outputs = has_post(n) ? std::vector<std::string>{n.name + "/conv"} : n.outputs;
  copy_attrs(n, c, {"strides", "pads", "dilations", "group"});
  return c;
}

Node post_part(const Node& n) {
  Node b;
  b.name = n.name;
  b.op = OpKind::kBatchNorm;
  b.inputs = {n.name + "/conv"};
  b.inputs.insert(b.inputs.end(), n.inputs.begin() + kPostInput, n.inputs.end());
  b.outputs = n.outputs;
  for (const char* key : {"epsilon", "momentum", "activation"}) {
    auto it = n.attrs.all().find(std::string("post_") + key);
    if (it != n.attrs.all().end()) b.attrs.set(key, it->second);
  }
  return b;
}

// The input infos of each part, given the fused node's and the parts' outputs before them.
InputInfos bn_inputs(const InputInfos& in) {
  return InputInfos(in.begin(), in.begin() + std::min(in.size(), kBatchNormInputs));
}
InputInfos conv_inputs(const Node& n, const InputInfos& in, const ValueInfo& z) {
  InputInfos c = {&z};
  const size_t end = std::min(in.size(), conv_end(n));
  if (end > kBatchNormInputs) c.insert(c.end(), in.begin() + kBatchNormInputs, in.begin() + end);
  return c;
}
InputInfos post_inputs(const InputInfos& in, const ValueInfo& y) {
  InputInfos b = {&y};
  b.insert(b.end(), in.begin() + kPostInput, in.end());
  return b;
}

ValueInfo normalized_info(const Node& n, const InputInfos& in) {
  const Node b = bn_part(n);
  std::vector<ValueInfo> z(1);
  z[0].name = b.outputs[0];
  kBatchNormDef.infer(b, bn_inputs(in), z);
  return z[0];
}

// The convolution's output (the trailing BatchNorm's input).
ValueInfo conv_info(const Node& n, const InputInfos& in, const ValueInfo& z) {
  std::vector<ValueInfo> y(1);
  y[0].name = n.name + "/conv";
  kConv2dDef.infer(conv_part(n), conv_inputs(n, in, z), y);
  return y[0];
}

void infer(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  if (in.size() < kBatchNormInputs + 1) fail(n, "expects BatchNorm's 5 inputs and the weights");
  if (in.size() > kBiasInput + 1 && in.size() != kWithPost) {
    fail(n, "expects 6 or 7 inputs, or 11 with a trailing BatchNorm");
  }
  const ValueInfo z = normalized_info(n, in);
  if (has_post(n)) {
    const ValueInfo y = conv_info(n, in, z);
    kBatchNormDef.infer(post_part(n), post_inputs(in, y), out);
  } else {
    kConv2dDef.infer(conv_part(n), conv_inputs(n, in, z), out);
  }
  const ValueInfo& w = input(n, in, kBatchNormInputs);
  if (z.shape.size() != 4 || n.attrs.get_int("group", 1) != z.shape[1] ||
      w.shape[0] != z.shape[1] || w.shape[1] != 1) {
    fail(n, "the convolution must be depthwise (group == channels == outputs)");
  }
}

int64_t macs(const Node& n, const InputInfos& in, const std::vector<ValueInfo>& out) {
  const ValueInfo z = normalized_info(n, in);
  if (!has_post(n)) return kConv2dDef.macs(conv_part(n), conv_inputs(n, in, z), out);
  return kConv2dDef.macs(conv_part(n), conv_inputs(n, in, z), {conv_info(n, in, z)});
}

// The ops' own kernels in sequence (the oracle, and the fallback of the fast kernel).
class BnThenConv final : public Kernel {
 public:
  BnThenConv(const Node& n, const InputInfos& in, const std::vector<ValueInfo>& out,
             KernelChoice choice)
      : z_info_(normalized_info(n, in)), conv_end_(conv_end(n)) {
    bn_ = make_kernel(bn_part(n), bn_inputs(in), {z_info_}, choice);
    z_ = Tensor(z_info_.dtype, z_info_.shape);
    dz_ = Tensor(z_info_.dtype, z_info_.shape);
    if (!has_post(n)) {
      conv_ = make_kernel(conv_part(n), conv_inputs(n, in, z_info_), out, choice);
      return;
    }
    const ValueInfo y = conv_info(n, in, z_info_);
    conv_ = make_kernel(conv_part(n), conv_inputs(n, in, z_info_), {y}, choice);
    post_ = make_kernel(post_part(n), post_inputs(in, y), out, choice);
    y_ = Tensor(y.dtype, y.shape);
    dy_ = Tensor(y.dtype, y.shape);
  }

  void forward(Tensors in, Tensors out, RunContext& ctx) override {
    bn_->forward(in.subspan(0, kBatchNormInputs), one(z_ptr_, z_), ctx);
    if (!post_) return conv_->forward(conv_in(in), out, ctx);
    conv_->forward(conv_in(in), one(y_ptr_, y_), ctx);
    post_->forward(post_in(in), out, ctx);
  }

  void backward(Tensors in, Tensors out, Tensors grad_out, Tensors grad_in,
                RunContext& ctx) override {
    // Backward runs the parts in reverse: the trailing BatchNorm (if any) gives the
    // convolution's output gradient dy, the convolution gives dz, which every gradient of the
    // first BatchNorm needs.
    Tensors conv_dy = grad_out;
    Tensors conv_y = out;
    if (post_) {
      std::vector<Tensor*> post_grads = {grad_out[0] ? &dy_ : nullptr};
      post_grads.insert(post_grads.end(), grad_in.begin() + kPostInput, grad_in.end());
      post_->backward(post_in(in), out, grad_out, post_grads, ctx);
      dy_ptr_ = grad_out[0] ? &dy_ : nullptr;
      conv_dy = Tensors(&dy_ptr_, 1);
      conv_y = one(y_ptr_, y_);
    }
    std::vector<Tensor*> conv_grads = {conv_dy[0] ? &dz_ : nullptr};
    conv_grads.insert(conv_grads.end(), grad_in.begin() + kBatchNormInputs,
                      grad_in.begin() + std::min(grad_in.size(), conv_end_));
    conv_->backward(conv_in(in), conv_y, conv_dy, conv_grads, ctx);
    Tensor* dz = conv_grads[0];
    bn_->backward(in.subspan(0, kBatchNormInputs), one(z_ptr_, z_),
                  std::span<Tensor* const>(&dz, 1), grad_in.subspan(0, kBatchNormInputs), ctx);
  }

 private:
  static Tensors one(Tensor*& slot, Tensor& t) {
    slot = &t;
    return Tensors(&slot, 1);
  }
  Tensors conv_in(Tensors in) {
    conv_in_.assign(in.begin() + kBatchNormInputs - 1, in.begin() + std::min(in.size(), conv_end_));
    conv_in_[0] = &z_;
    return conv_in_;
  }
  Tensors post_in(Tensors in) {
    post_in_.assign(in.begin() + kPostInput - 1, in.end());
    post_in_[0] = &y_;
    return post_in_;
  }

  ValueInfo z_info_;
  size_t conv_end_;
  std::unique_ptr<Kernel> bn_, conv_, post_;
  Tensor z_, dz_, y_, dy_;
  Tensor *z_ptr_ = nullptr, *y_ptr_ = nullptr, *dy_ptr_ = nullptr;
  std::vector<Tensor*> conv_in_, post_in_;
};

// The per-plane loops of the fused kernel (AVX-512: it runs only where the AVX-512 depthwise
// kernels do).
#define MINNOW_AVX512_LOOP __attribute__((target("avx512f")))

// z = clamp(x * a + sh, lo, hi): BatchNorm's output, one plane. mask_and_sum recomputes the
// same expression for the activation's mask.
MINNOW_AVX512_LOOP void normalize_plane(const float* x, float* z, int64_t s, float a, float sh,
                                        float lo, float hi) {
#pragma omp simd
  for (int64_t i = 0; i < s; ++i) z[i] = std::min(std::max(x[i] * a + sh, lo), hi);
}

// dz = dz where lo < x * a + sh < hi (the activation passed it), else 0, in place;
// returns {sum dz, sum dz * (x - mean)} of the masked plane.
MINNOW_AVX512_LOOP std::pair<double, double> mask_and_sum(const float* x, float* dz, int64_t s,
                                                          float a, float sh, float lo, float hi,
                                                          float mean) {
  float s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t i = 0; i < s; ++i) {
    const float v = x[i] * a + sh;
    const float d = (v > lo && v < hi) ? dz[i] : 0.0f;
    dz[i] = d;
    s1 += d;
    s2 += d * (x[i] - mean);
  }
  return {s1, s2};
}

// dx = k1 dz + k2 x + k3.
MINNOW_AVX512_LOOP void dx_plane(const float* dz, const float* x, float* dx, int64_t s, float k1,
                                 float k2, float k3) {
#pragma omp simd
  for (int64_t i = 0; i < s; ++i) dx[i] = dz[i] * k1 + x[i] * k2 + k3;
}

// The trailing BatchNorm's backward, one plane: out = k1 g + k2 y + k3 with g = dz where
// lo < y * a + sh < hi (its activation passed it), else 0.
MINNOW_AVX512_LOOP void post_dx_plane(const float* dz, const float* y, float* out, int64_t s,
                                      float a, float sh, float lo, float hi, float k1, float k2,
                                      float k3) {
#pragma omp simd
  for (int64_t i = 0; i < s; ++i) {
    const float t = y[i] * a + sh;
    const float g = (t > lo && t < hi) ? dz[i] : 0.0f;
    out[i] = g * k1 + y[i] * k2 + k3;
  }
}

// The loops walk a channel's planes, C planes apart in memory, and ask for the planes two
// samples ahead (kernels/prefetch.h), output planes too: without that every output line of the
// forward waited for its read-for-ownership (28x28 stride 2: 1.29 -> 0.95 ms in a training step).
using kernels::prefetch_floats;

class BnDepthwiseFused final : public Kernel {
 public:
  BnDepthwiseFused(const Node& n, const ConvGeometry& g)
      : node_(n),
        g_(g),
        eps_(n.attrs.get_float("epsilon", 1e-5)),
        momentum_(n.attrs.get_float("momentum", 0.1)),
        act_(FusedActivation::of(n)),
        ch_(g.c) {
    if (kernels::ConvDepthwisePlane::supports(g)) {
      planes_ = std::make_unique<kernels::ConvDepthwisePlane>(g);
    } else {
      rows_ = std::make_unique<ConvDepthwise3x3>(g);
    }
    if (has_post(n)) {
      const Node b = post_part(n);
      post_ = true;
      post_eps_ = b.attrs.get_float("epsilon", 1e-5);
      post_momentum_ = b.attrs.get_float("momentum", 0.1);
      post_act_ = FusedActivation::of(b);
      post_ch_.resize(g.c);
      y_ = Tensor(DType::kF32, {g.n, g.c, g.oh(), g.ow()});
    }
  }

  void forward(Tensors in, Tensors out, RunContext& ctx) override {
    batch_stats_ = ctx.training;
    if (batch_stats_ && g_.n * g_.h * g_.w < 2) {
      fail(node_, "training mode needs more than one value per channel");
    }
    const float* x = in[0]->f32();
    const float* gamma = in[1]->f32();
    const float* beta = in[2]->f32();
    float* rm = in[3]->f32();
    float* rv = in[4]->f32();
    const float* w = in[5]->f32();
    const float* bias = in.size() > kBiasInput && in[kBiasInput] ? in[kBiasInput]->f32() : nullptr;
    // The convolution's output: the node's, or kept for the trailing BatchNorm's backward.
    float* y = post_ ? y_.f32() : out[0]->f32();
    const int64_t hw = g_.h * g_.w, ohw = g_.ohw(), sample = g_.c * hw, count = g_.n * hw;
    for_channel_ranges([&](int64_t c0, int64_t c1, Scratch& s) {
      for (int64_t c = c0; c < c1; ++c) {
        const float* xc = x + c * hw;
        double t1 = 0, t2 = 0;
        if (batch_stats_) bn_detail::channel_stats(xc, g_.n, sample, hw, xc[0], &t1, &t2);
        const BnChannel ch = ch_[c] = bn_channel(batch_stats_, t1, t2, xc[0], count, gamma[c],
                                                 beta[c], momentum_, eps_, rm + c, rv + c);
        const float b = bias ? bias[c] : 0.0f;
        if (planes_) {
          // Normalize every plane of the channel (asking for its output planes meanwhile),
          // then the convolution four planes at a time.
          float* zc = s.z.data();
          for (int64_t i = 0; i < g_.n; ++i) {
            prefetch_floats(y + (i * g_.c + c) * ohw, ohw, /*for_write=*/true);
            normalize_plane(xc + i * sample, zc + i * hw, hw, ch.a, ch.sh, act_.lo, act_.hi);
          }
          planes_->forward_channel(zc, hw, w + 9 * c, b, y + c * ohw, g_.c * ohw, g_.n);
        } else {
          for (int64_t i = 0; i < g_.n; ++i) {
            if (i + 2 < g_.n) {
              prefetch_floats(xc + (i + 2) * sample, hw);
              prefetch_floats(y + ((i + 2) * g_.c + c) * ohw, ohw, /*for_write=*/true);
            }
            normalize_plane(xc + i * sample, s.z.data(), hw, ch.a, ch.sh, act_.lo, act_.hi);
            rows_->forward_plane(s.z.data(), w + 9 * c, b, y + (i * g_.c + c) * ohw);
          }
        }
        if (post_) post_forward(c, in, out[0]->f32());
      }
    });
  }

  // The trailing BatchNorm of channel c, whose convolution output planes were just written:
  // statistics, then its output z.
  void post_forward(int64_t c, Tensors in, float* z) {
    const int64_t ohw = g_.ohw(), stride = g_.c * ohw;
    const float* yc = y_.f32() + c * ohw;
    double t1 = 0, t2 = 0;
    if (batch_stats_) bn_detail::channel_stats(yc, g_.n, stride, ohw, yc[0], &t1, &t2);
    const BnChannel ch = post_ch_[c] =
        bn_channel(batch_stats_, t1, t2, yc[0], g_.n * ohw, in[kPostInput]->f32()[c],
                   in[kPostInput + 1]->f32()[c], post_momentum_, post_eps_,
                   in[kPostInput + 2]->f32() + c, in[kPostInput + 3]->f32() + c);
    for (int64_t i = 0; i < g_.n; ++i) {
      if (i + 2 < g_.n) prefetch_floats(z + (i + 2) * stride + c * ohw, ohw, /*for_write=*/true);
      normalize_plane(yc + i * stride, z + i * stride + c * ohw, ohw, ch.a, ch.sh, post_act_.lo,
                      post_act_.hi);
    }
  }

  // The trailing BatchNorm's backward of channel c: its parameter gradients, and the gradient of
  // the convolution's output planes into `dy` (the channel's planes back to back).
  void post_backward(int64_t c, Tensors in, const float* dz, Tensors grad_in, float* dy) {
    const int64_t ohw = g_.ohw(), stride = g_.c * ohw;
    const BnChannel& ch = post_ch_[c];
    const float* yc = y_.f32() + c * ohw;
    const float* dzc = dz + c * ohw;
    auto grad = [&](size_t i) {
      return grad_in.size() > i && grad_in[i] ? grad_in[i]->f32() + c : nullptr;
    };
    double sum_dz = 0, sum_dz_ym = 0;
    bn_detail::channel_reduce_masked(dzc, yc, g_.n, stride, ohw, ch.mean, ch.a, ch.sh, post_act_.lo,
                                     post_act_.hi, &sum_dz, &sum_dz_ym);
    const auto [k1, k2, k3] = bn_backward_channel(
        ch, batch_stats_, sum_dz, sum_dz_ym, g_.n * ohw, in[kPostInput]->f32()[c], grad(kPostInput),
        grad(kPostInput + 1), grad(kPostInput + 2), grad(kPostInput + 3));
    for (int64_t i = 0; i < g_.n; ++i) {
      post_dx_plane(dzc + i * stride, yc + i * stride, dy + i * ohw, ohw, ch.a, ch.sh, post_act_.lo,
                    post_act_.hi, k1, k2, k3);
    }
  }

  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    for (size_t i = 0; i < grad_in.size(); ++i) {
      const bool running = i == 3 || i == 4 || i == kPostInput + 2 || i == kPostInput + 3;
      if (grad_in[i] && (!grad_out[0] || running)) grad_in[i]->fill_zero();
    }
    if (!grad_out[0]) return;
    auto grad = [&](size_t i) {
      return grad_in.size() > i && grad_in[i] ? grad_in[i]->f32() : nullptr;
    };
    const float* x = in[0]->f32();
    const float* gamma = in[1]->f32();
    const float* w = in[5]->f32();
    const float* dy = grad_out[0]->f32();
    float *dx = grad(0), *dgamma = grad(1), *dbeta = grad(2), *drm = grad(3), *drv = grad(4);
    float *dw = grad(5), *db = grad(kBiasInput);
    const int64_t hw = g_.h * g_.w, ohw = g_.ohw(), sample = g_.c * hw, count = g_.n * hw;
    for_channel_ranges([&](int64_t c0, int64_t c1, Scratch& s) {
      float* dz = s.dz.data();
      for (int64_t c = c0; c < c1; ++c) {
        const BnChannel& ch = ch_[c];
        const float* xc = x + c * hw;
        // The convolution's output gradient: the node's, or the trailing BatchNorm's into this
        // thread's buffer.
        const float* dyc = dy + c * ohw;
        int64_t dy_stride = g_.c * ohw;
        if (post_) {
          post_backward(c, in, dy, grad_in, s.dy.data());
          dyc = s.dy.data();
          dy_stride = ohw;
        }
        std::fill_n(s.sums.data(), kSumFloats, 0.0f);
        double sum_dy = 0, sum_dy_xm = 0;
        if (planes_) {
          // Normalize every plane (asking for dy's planes meanwhile), the convolution's
          // backward four planes at a time, then the activation's mask and BatchNorm's sums.
          float* zc = s.z.data();
          for (int64_t i = 0; i < g_.n; ++i) {
            if (i + 2 < g_.n) prefetch_floats(xc + (i + 2) * sample, hw);
            if (!post_) prefetch_floats(dyc + i * dy_stride, ohw);
            normalize_plane(xc + i * sample, zc + i * hw, hw, ch.a, ch.sh, act_.lo, act_.hi);
          }
          planes_->backward_channel(zc, hw, dyc, dy_stride, w + 9 * c, dz, hw, g_.n, s.sums.data());
          for (int64_t i = 0; i < g_.n; ++i) {
            const auto [s1, s2] = mask_and_sum(xc + i * sample, dz + i * hw, hw, ch.a, ch.sh,
                                               act_.lo, act_.hi, ch.mean);
            sum_dy += s1;
            sum_dy_xm += s2;
          }
        } else {
          for (int64_t i = 0; i < g_.n; ++i) {
            if (i + 2 < g_.n) {
              prefetch_floats(xc + (i + 2) * sample, hw);
              if (!post_) prefetch_floats(dyc + (i + 2) * dy_stride, ohw);
            }
            const float* xp = xc + i * sample;
            normalize_plane(xp, s.z.data(), hw, ch.a, ch.sh, act_.lo, act_.hi);
            rows_->backward_plane(s.z.data(), dyc + i * dy_stride, w + 9 * c, dz + i * hw,
                                  s.sums.data());
            const auto [s1, s2] =
                mask_and_sum(xp, dz + i * hw, hw, ch.a, ch.sh, act_.lo, act_.hi, ch.mean);
            sum_dy += s1;
            sum_dy_xm += s2;
          }
        }
        if (dw) ConvDepthwise3x3::reduce_sums(s.sums.data(), dw + 9 * c, db ? db + c : nullptr);
        const auto [k1, k2, k3] = bn_backward_channel(
            ch, batch_stats_, sum_dy, sum_dy_xm, count, gamma[c], dgamma ? dgamma + c : nullptr,
            dbeta ? dbeta + c : nullptr, drm ? drm + c : nullptr, drv ? drv + c : nullptr);
        if (!dx) continue;
        for (int64_t i = 0; i < g_.n; ++i) {
          if (i + 2 < g_.n) prefetch_floats(dx + c * hw + (i + 2) * sample, hw, /*for_write=*/true);
          dx_plane(dz + i * hw, xc + i * sample, dx + c * hw + i * sample, hw, k1, k2, k3);
        }
      }
    });
  }

 private:
  struct Scratch {
    // Normalized input (the channel's planes for the flat-plane kernel, else one plane), the
    // channel's gradient planes, the weight gradient's 10 x 16 sums, and with the trailing
    // BatchNorm the channel's output gradient planes.
    kernels::FloatBuffer z, dz, sums, dy;
  };

  // Runs fn(c0, c1, scratch) for each thread's contiguous range of channels. (No vector types
  // here: the OpenMP region is outlined into a function without the AVX-512 target.)
  template <class F>
  void for_channel_ranges(F&& fn) {
    const int threads = std::max(1, omp_get_max_threads());
    if (static_cast<int>(scratch_.size()) < threads) {
      scratch_.resize(threads);
      for (Scratch& s : scratch_) {
        s.z.get(planes_ ? g_.n * g_.h * g_.w : g_.h * g_.w);
        s.dz.get(g_.n * g_.h * g_.w);
        s.sums.get(kSumFloats);
        if (post_) s.dy.get(g_.n * g_.ohw());
      }
    }
    const bool parallel = threads > 1 && g_.c > 1 && g_.n * g_.c * g_.h * g_.w >= (1 << 15);
#pragma omp parallel num_threads(threads) if (parallel)
    {
      const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
      const int64_t c0 = g_.c * id / nt, c1 = g_.c * (id + 1) / nt;
      if (c1 > c0) fn(c0, c1, scratch_[id]);
    }
  }

  Node node_;
  ConvGeometry g_;
  std::unique_ptr<kernels::ConvDepthwisePlane> planes_;  // one of the two
  std::unique_ptr<ConvDepthwise3x3> rows_;
  double eps_, momentum_;
  FusedActivation act_;
  std::vector<BnChannel> ch_;  // forward's statistics and affine form, per channel
  bool batch_stats_ = false;
  // The trailing BatchNorm, if any: its constants, per-channel forms, and its input (the
  // convolution's output), kept from forward for backward.
  bool post_ = false;
  double post_eps_ = 1e-5, post_momentum_ = 0.1;
  FusedActivation post_act_;
  std::vector<BnChannel> post_ch_;
  Tensor y_;
  std::vector<Scratch> scratch_;
};

std::unique_ptr<Kernel> make_reference(const Node& n, const InputInfos& in,
                                       const std::vector<ValueInfo>& out) {
  return std::make_unique<BnThenConv>(n, in, out, KernelChoice::kReference);
}

std::unique_ptr<Kernel> make_fast(const Node& n, const InputInfos& in,
                                  const std::vector<ValueInfo>& out) {
  const ValueInfo z = normalized_info(n, in);
  const ConvGeometry g = conv_geometry(conv_part(n), conv_inputs(n, in, z));
  // Fused where it measured faster than BatchNorm's loops plus the convolution's own strategy
  // (kernels/conv_algo.h). Cold caches, batch 64, 2 threads, forward / backward in ms, fused
  // vs the two ops:
  //   96 x 28x28 stride 2 (row kernel):   1.04 / 2.20 vs 1.25-1.68 / 2.27-2.83
  //   144 x 14x14 stride 2 (row kernel):  0.68 / 1.13 vs 0.76 / 1.11
  //   144 x 14x14 stride 1 (flat-plane):  0.61-0.65 / 1.32-1.35 vs 0.70-0.75 / 1.26-1.39
  //   192 x 7x7 stride 1 (flat-plane):    0.27 / 0.71 vs 0.37 / 0.65
  // The row kernel plane by plane lost on small stride-1 planes (144 x 14x14: 0.83 / 1.26).
  const int64_t min_plane = g.sh == 2 ? kMinFusedPlaneStride2 : kMinFusedPlaneStride1;
  if (kernels::ConvDepthwisePlane::supports(g) ||
      (ConvDepthwise3x3::supports(g) && g.h * g.w >= min_plane)) {
    return std::make_unique<BnDepthwiseFused>(n, g);
  }
  return std::make_unique<BnThenConv>(n, in, out, KernelChoice::kFast);
}

}  // namespace

const OpDef kBatchNormDepthwiseConvDef = {OpKind::kBatchNormDepthwiseConv,
                                          "BatchNormDepthwiseConv",
                                          6,
                                          11,
                                          1,
                                          infer,
                                          make_reference,
                                          make_fast,
                                          true,
                                          macs};

}  // namespace minnow::ops
