// BatchNorm over x[N, C, ...] with per-channel scale, bias and running statistics (PyTorch
// semantics): training normalizes with the batch statistics (biased variance) and moves the
// running statistics toward them (unbiased variance), in place in inputs 3 and 4; eval
// normalizes with the running statistics.
//
// Optional attribute activation = "relu" | "relu6" applies that activation to the output (the
// fuse_batchnorm_activation pass sets it): BN -> ReLU6 is then one pass over memory forward and
// one backward instead of two, which is most of an inverted-residual block's memory traffic.
//
// The fast kernel is a hand loop, not oneDNN: for the plain NCHW/NC layouts minnow keeps,
// oneDNN 2.6 only has its generic "ncsp_bnorm" implementation, which measured 5-20x slower than
// these loops (e.g. [64,300] forward 62 us vs 7 us, [64,32,16,16] 5.6 ms vs 0.14 ms, 2 threads).
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "kernels/bn_stream.h"
#include "kernels/prefetch.h"
#include "ops/bn_channel.h"
#include "ops/fused_activation.h"
#include "ops/op_defs.h"
#include "ops/op_util.h"

namespace minnow::ops {

// Per-channel loops over the [N, C, S] view: n runs of s floats, `stride` apart. Compiled per ISA
// and picked at run time (the build targets baseline x86-64). Each run accumulates in float
// (vectorized), runs are combined in double. External linkage: target_clones wants it.
namespace bn_detail {

// The runs of one channel are C * S floats apart, a pattern the hardware prefetchers do not
// follow, and a run is often shorter than a memory round trip: each loop asks for the run about
// 4 KB ahead (cold caches, [64,144,14,14] with ReLU6: forward 0.54 -> 0.36 ms, backward 0.81 ->
// 0.45 ms; 2 KB and 8 KB ahead measured slower).
inline int64_t runs_ahead(int64_t s) {
  return std::max<int64_t>(1, 1024 / std::max<int64_t>(s, 1));
}

using kernels::prefetch_floats;

// s1 += sum (x - k), s2 += sum (x - k)^2.
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void channel_stats(
    const float* x, int64_t n, int64_t stride, int64_t s, float k, double* s1, double* s2) {
  double t1 = 0, t2 = 0;
  const int64_t ahead = runs_ahead(s);
  for (int64_t i = 0; i < n; ++i) {
    const float* p = x + i * stride;
    if (i + ahead < n) prefetch_floats(p + ahead * stride, s);
    float f1 = 0, f2 = 0;
#pragma omp simd reduction(+ : f1, f2)
    for (int64_t j = 0; j < s; ++j) {
      const float v = p[j] - k;
      f1 += v;
      f2 += v * v;
    }
    t1 += f1;
    t2 += f2;
  }
  *s1 = t1;
  *s2 = t2;
}

// s1 = sum dy, s2 = sum dy * (x - m).
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void channel_reduce(
    const float* dy, const float* x, int64_t n, int64_t stride, int64_t s, float m, double* s1,
    double* s2) {
  double t1 = 0, t2 = 0;
  const int64_t ahead = runs_ahead(s);
  for (int64_t i = 0; i < n; ++i) {
    const float* d = dy + i * stride;
    const float* p = x + i * stride;
    if (i + ahead < n) {
      prefetch_floats(d + ahead * stride, s);
      prefetch_floats(p + ahead * stride, s);
    }
    float f1 = 0, f2 = 0;
#pragma omp simd reduction(+ : f1, f2)
    for (int64_t j = 0; j < s; ++j) {
      f1 += d[j];
      f2 += d[j] * (p[j] - m);
    }
    t1 += f1;
    t2 += f2;
  }
  *s1 = t1;
  *s2 = t2;
}

// out = src * a (+ x * b2 when x is given) + sh.
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void channel_affine(
    const float* src, const float* x, float* out, int64_t n, int64_t stride, int64_t s, float a,
    float b2, float sh) {
  const int64_t ahead = runs_ahead(s);
  for (int64_t i = 0; i < n; ++i) {
    const float* __restrict r = src + i * stride;
    float* __restrict o = out + i * stride;
    if (i + ahead < n) prefetch_floats(o + ahead * stride, s, /*for_write=*/true);
    if (x) {
      const float* __restrict q = x + i * stride;
      for (int64_t j = 0; j < s; ++j) o[j] = r[j] * a + q[j] * b2 + sh;
    } else {
      for (int64_t j = 0; j < s; ++j) o[j] = r[j] * a + sh;
    }
  }
}

// out = clamp(src * a + sh, lo, hi).
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void channel_affine_clamp(
    const float* src, float* out, int64_t n, int64_t stride, int64_t s, float a, float sh, float lo,
    float hi) {
  const int64_t ahead = runs_ahead(s);
  for (int64_t i = 0; i < n; ++i) {
    const float* __restrict r = src + i * stride;
    float* __restrict o = out + i * stride;
    if (i + ahead < n) prefetch_floats(o + ahead * stride, s, /*for_write=*/true);
#pragma omp simd
    for (int64_t j = 0; j < s; ++j) o[j] = std::min(std::max(r[j] * a + sh, lo), hi);
  }
}

// The activation's gradient mask, recomputed from the BN input: g = dy where
// lo < x * a + sh < hi, else 0. Then s1 = sum g, s2 = sum g * (x - m).
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void channel_reduce_masked(
    const float* dy, const float* x, int64_t n, int64_t stride, int64_t s, float m, float a,
    float sh, float lo, float hi, double* s1, double* s2) {
  double t1 = 0, t2 = 0;
  const int64_t ahead = runs_ahead(s);
  for (int64_t i = 0; i < n; ++i) {
    const float* d = dy + i * stride;
    const float* p = x + i * stride;
    if (i + ahead < n) {
      prefetch_floats(d + ahead * stride, s);
      prefetch_floats(p + ahead * stride, s);
    }
    float f1 = 0, f2 = 0;
#pragma omp simd reduction(+ : f1, f2)
    for (int64_t j = 0; j < s; ++j) {
      const float t = p[j] * a + sh;
      const float dj = d[j];
      const float g = ((t > lo) & (t < hi)) ? dj : 0.0f;
      f1 += g;
      f2 += g * (p[j] - m);
    }
    t1 += f1;
    t2 += f2;
  }
  *s1 = t1;
  *s2 = t2;
}

// dx = k1 g + k2 x + k3 with g the masked dy as in channel_reduce_masked.
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void channel_dx_masked(
    const float* dy, const float* x, float* dx, int64_t n, int64_t stride, int64_t s, float a,
    float sh, float lo, float hi, float k1, float k2, float k3) {
  const int64_t ahead = runs_ahead(s);
  for (int64_t i = 0; i < n; ++i) {
    const float* __restrict d = dy + i * stride;
    const float* __restrict p = x + i * stride;
    float* __restrict o = dx + i * stride;
    if (i + ahead < n) prefetch_floats(o + ahead * stride, s, /*for_write=*/true);
#pragma omp simd
    for (int64_t j = 0; j < s; ++j) {
      const float t = p[j] * a + sh;
      const float dj = d[j];
      const float g = ((t > lo) & (t < hi)) ? dj : 0.0f;
      o[j] = g * k1 + p[j] * k2 + k3;
    }
  }
}

// Short runs (see BatchNormFast::short_runs): the loops below run over the contiguous runs of
// several channels of one sample at once, with every per-channel value spread out to one per
// element (arrays of the same length), so that nothing restarts at each 49-float run.

// acc1 += x - k, acc2 += (x - k)^2.
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void flat_stats(
    const float* __restrict x, const float* __restrict k, float* __restrict acc1,
    float* __restrict acc2, int64_t len) {
#pragma omp simd
  for (int64_t j = 0; j < len; ++j) {
    const float v = x[j] - k[j];
    acc1[j] += v;
    acc2[j] += v * v;
  }
}

// y = x * a + sh, clamped to [lo, hi] when `clamp`.
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void flat_affine(
    const float* __restrict x, const float* __restrict a, const float* __restrict sh,
    float* __restrict y, int64_t len, bool clamp, float lo, float hi) {
  if (clamp) {
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) y[j] = std::min(std::max(x[j] * a[j] + sh[j], lo), hi);
  } else {
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) y[j] = x[j] * a[j] + sh[j];
  }
}

// g = dy, or with `mask` dy where lo < x * a + sh < hi and else 0; acc1 += g, acc2 += g (x - m).
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void flat_reduce(
    const float* __restrict dy, const float* __restrict x, const float* __restrict a,
    const float* __restrict sh, const float* __restrict m, bool mask, float lo, float hi,
    float* __restrict acc1, float* __restrict acc2, int64_t len) {
#pragma omp simd
  for (int64_t j = 0; j < len; ++j) {
    const float t = x[j] * a[j] + sh[j];
    const float g = (!mask || ((t > lo) & (t < hi))) ? dy[j] : 0.0f;
    acc1[j] += g;
    acc2[j] += g * (x[j] - m[j]);
  }
}

// dx = k1 g + k2 x + k3 with g as in flat_reduce (x may be null: dx = k1 g + k3, no mask).
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void flat_dx(
    const float* __restrict dy, const float* __restrict x, const float* __restrict a,
    const float* __restrict sh, bool mask, float lo, float hi, const float* __restrict k1,
    const float* __restrict k2, const float* __restrict k3, float* __restrict dx, int64_t len) {
  if (!x) {
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) dx[j] = dy[j] * k1[j] + k3[j];
    return;
  }
#pragma omp simd
  for (int64_t j = 0; j < len; ++j) {
    const float t = x[j] * a[j] + sh[j];
    const float g = (!mask || ((t > lo) & (t < hi))) ? dy[j] : 0.0f;
    dx[j] = g * k1[j] + x[j] * k2[j] + k3[j];
  }
}

}  // namespace bn_detail

namespace {

// Tensors below this many elements stay on one thread (team wake-up costs more than the loop).
constexpr int64_t kParallelMin = int64_t{1} << 15;

struct BnParams {
  double epsilon, momentum;
  FusedActivation act;  // attribute activation: a clamp of the output (ops/fused_activation.h)
};

BnParams bn_params(const Node& n) {
  BnParams p{n.attrs.get_float("epsilon", 1e-5), n.attrs.get_float("momentum", 0.1),
             FusedActivation::of(n)};
  if (!std::isfinite(p.epsilon) || p.epsilon < 0) {
    fail(n, "attribute epsilon must be finite and >= 0, got " + std::to_string(p.epsilon));
  }
  if (!(p.momentum >= 0 && p.momentum <= 1)) {
    fail(n, "attribute momentum must be in [0, 1], got " + std::to_string(p.momentum));
  }
  return p;
}

void infer_batch_norm(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  bn_params(n);
  const ValueInfo& x = input(n, in, 0);
  require_float(n, x);
  if (x.shape.size() < 2) {
    fail(n, "input '" + x.name + "' has shape " + shape_str(x.shape) +
                ", expected rank >= 2 [N,C,...]");
  }
  const int64_t channels = x.shape[1];
  if (channels < 0) fail(n, "input '" + x.name + "' must have a concrete channel dim");
  static const char* const kRoles[] = {"scale", "bias", "running_mean", "running_var"};
  for (size_t i = 1; i <= 4; ++i) {
    const ValueInfo& p = input(n, in, i);
    require_float(n, p);
    if (p.dtype != x.dtype) {
      fail(n, std::string(kRoles[i - 1]) + " '" + p.name + "' has dtype " +
                  std::string(dtype_name(p.dtype)) + ", expected " +
                  std::string(dtype_name(x.dtype)) + " like the input");
    }
    if (p.shape != Shape{channels}) {
      fail(n, std::string(kRoles[i - 1]) + " '" + p.name + "' has shape " + shape_str(p.shape) +
                  ", expected [" + std::to_string(channels) + "]");
    }
  }
  out[0].dtype = x.dtype;
  out[0].shape = x.shape;
}

// x viewed as [N, C, S]: S is the product of the spatial dims (1 for rank 2).
struct BnDims {
  int64_t n, c, s;
  int64_t count() const { return n * s; }
};

BnDims bn_dims(const InputInfos& in) {
  const Shape& x = in[0]->shape;
  int64_t s = 1;
  for (size_t i = 2; i < x.size(); ++i) s *= x[i];
  return {x[0], x[1], s};
}

// State and checks shared by both kernels.
class BnBase : public Kernel {
 protected:
  BnBase(const Node& node, BnDims d) : node_(node), d_(d), p_(bn_params(node)) {}

  void check_trainable() const {
    if (d_.count() < 2) {
      fail(node_, "training mode needs more than one value per channel, got N*spatial = " +
                      std::to_string(d_.count()));
    }
  }

  Node node_;
  BnDims d_;
  BnParams p_;
  bool batch_stats_ = false;  // what the last forward normalized with
};

// The oracle: straightforward per-channel loops, statistics accumulated in double.
template <class T>
class BatchNormRef final : public BnBase {
 public:
  BatchNormRef(const Node& node, BnDims d) : BnBase(node, d), mean_(d.c), inv_(d.c) {}

  void forward(Tensors in, Tensors out, RunContext& ctx) override {
    const T* x = in[0]->data<T>();
    const T* g = in[1]->data<T>();
    const T* b = in[2]->data<T>();
    T* rm = in[3]->data<T>();
    T* rv = in[4]->data<T>();
    T* y = out[0]->data<T>();
    batch_stats_ = ctx.training;
    if (batch_stats_) check_trainable();
    const double cnt = static_cast<double>(d_.count());
    for (int64_t c = 0; c < d_.c; ++c) {
      double mean, var;
      if (batch_stats_) {
        double sum = 0, sq = 0;
        for_channel(c, [&](int64_t i) { sum += x[i]; });
        mean = sum / cnt;
        for_channel(c, [&](int64_t i) { sq += (x[i] - mean) * (x[i] - mean); });
        var = sq / cnt;
        const double m = p_.momentum;
        rm[c] = static_cast<T>((1 - m) * rm[c] + m * mean);
        rv[c] = static_cast<T>((1 - m) * rv[c] + m * var * cnt / (cnt - 1));
      } else {
        mean = rm[c];
        var = rv[c];
      }
      mean_[c] = mean;
      inv_[c] = 1 / std::sqrt(var + p_.epsilon);
      for_channel(c, [&](int64_t i) {
        double v = (x[i] - mean) * inv_[c] * g[c] + b[c];
        if (p_.act.on) v = std::min(std::max(v, double{p_.act.lo}), double{p_.act.hi});
        y[i] = static_cast<T>(v);
      });
    }
  }

  void backward(Tensors in, Tensors out, Tensors grad_out, Tensors grad_in, RunContext&) override {
    for (Tensor* t : grad_in) {
      if (t) t->fill_zero();
    }
    if (!grad_out[0]) return;
    const T* x = in[0]->data<T>();
    const T* g = in[1]->data<T>();
    const T* dy = grad_out[0]->data<T>();
    if (p_.act.on) {
      // Through the fused activation first: the BN gradient sees dy where y is unclamped.
      const T* y = out[0]->data<T>();
      masked_.resize(out[0]->numel());
      p_.act.mask(dy, y, masked_.data(), out[0]->numel());
      dy = masked_.data();
    }
    const double cnt = static_cast<double>(d_.count());
    for (int64_t c = 0; c < d_.c; ++c) {
      const double mean = mean_[c], inv = inv_[c];
      double sum_dy = 0, sum_dy_xhat = 0;
      for_channel(c, [&](int64_t i) {
        sum_dy += dy[i];
        sum_dy_xhat += dy[i] * (x[i] - mean) * inv;
      });
      if (grad_in[0]) {
        T* dx = grad_in[0]->data<T>();
        for_channel(c, [&](int64_t i) {
          double v = dy[i];
          // With batch statistics, mean and variance depend on every x of the channel.
          if (batch_stats_) v -= sum_dy / cnt + (x[i] - mean) * inv * sum_dy_xhat / cnt;
          dx[i] = static_cast<T>(g[c] * inv * v);
        });
      }
      if (grad_in[1]) grad_in[1]->data<T>()[c] = static_cast<T>(sum_dy_xhat);
      if (grad_in[2]) grad_in[2]->data<T>()[c] = static_cast<T>(sum_dy);
      // Running statistics only influence the output in eval mode.
      if (!batch_stats_ && grad_in.size() > 4) {
        if (grad_in[3]) grad_in[3]->data<T>()[c] = static_cast<T>(-g[c] * inv * sum_dy);
        if (grad_in[4]) {
          grad_in[4]->data<T>()[c] = static_cast<T>(-0.5 * g[c] * inv * inv * sum_dy_xhat);
        }
      }
    }
  }

 private:
  template <class F>
  void for_channel(int64_t c, F&& f) const {
    for (int64_t n = 0; n < d_.n; ++n) {
      const int64_t base = (n * d_.c + c) * d_.s;
      for (int64_t s = 0; s < d_.s; ++s) f(base + s);
    }
  }

  std::vector<double> mean_, inv_;
  std::vector<T> masked_;  // dy through the fused activation
};

// f32 hand loops. Two layouts of the [N, C, S] view:
//  - S == 1 (rank 2): rows of C channels; inner loops run across channels.
//  - S > 1: per channel, N contiguous runs of S; inner loops run along S (bn_detail), and the
//    threads share the channels.
// Inner runs accumulate in float (vectorized), runs are combined in double so long channels do
// not lose precision.
class BatchNormFast final : public BnBase {
 public:
  BatchNormFast(const Node& node, BnDims d)
      : BnBase(node, d),
        mean_(d.c),
        inv_(d.c),
        var_(d.c),
        s1_(d.c),
        s2_(d.c),
        act_a_(d.c),
        act_sh_(d.c),
        stream_(d.s > 1 && d.n * d.c * d.s * int64_t{sizeof(float)} >= kStreamMinBytes &&
                kernels::stream_stores_available()) {}

  void forward(Tensors in, Tensors out, RunContext& ctx) override {
    batch_stats_ = ctx.training;
    if (batch_stats_) check_trainable();
    if (d_.s > 1) return short_runs() ? forward_short_runs(in, out) : forward_planes(in, out);
    if (batch_stats_) {
      batch_statistics(in[0]->f32());
      const float m = static_cast<float>(p_.momentum);
      const double unbias = static_cast<double>(d_.count()) / static_cast<double>(d_.count() - 1);
      float* rm = in[3]->f32();
      float* rv = in[4]->f32();
      for (int64_t c = 0; c < d_.c; ++c) {
        rm[c] = (1 - m) * rm[c] + m * mean_[c];
        rv[c] = (1 - m) * rv[c] + m * static_cast<float>(var_[c] * unbias);
      }
      for (int64_t c = 0; c < d_.c; ++c) {
        inv_[c] = static_cast<float>(1.0 / std::sqrt(var_[c] + p_.epsilon));
      }
    } else {
      const float* rm = in[3]->f32();
      const float* rv = in[4]->f32();
      for (int64_t c = 0; c < d_.c; ++c) {
        mean_[c] = rm[c];
        inv_[c] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(rv[c]) + p_.epsilon));
      }
    }
    // y = x * a + shift with a = scale * inv, shift = bias - mean * a.
    const float* g = in[1]->f32();
    const float* b = in[2]->f32();
    std::vector<float>& a = a_;
    std::vector<float>& shift = shift_;
    a.resize(d_.c);
    shift.resize(d_.c);
    for (int64_t c = 0; c < d_.c; ++c) {
      a[c] = g[c] * inv_[c];
      shift[c] = b[c] - mean_[c] * a[c];
    }
    float* y = out[0]->f32();
    affine(in[0]->f32(), nullptr, y, a.data(), nullptr, shift.data());
    p_.act.apply(y, d_.n * d_.c);
  }

  void backward(Tensors in, Tensors out, Tensors grad_out, Tensors grad_in, RunContext&) override {
    // Everything but the running-statistics gradients is overwritten below: zeroing the
    // activation-sized dx first would only add a pass over memory.
    for (size_t i = 0; i < grad_in.size(); ++i) {
      if (grad_in[i] && (i >= 3 || !grad_out[0])) grad_in[i]->fill_zero();
    }
    if (!grad_out[0]) return;
    if (d_.s > 1) {
      return short_runs() ? backward_short_runs(in, grad_out, grad_in)
                          : backward_planes(in, grad_out, grad_in);
    }
    const float* x = in[0]->f32();
    const float* dy = grad_out[0]->f32();
    if (p_.act.on) {
      // Through the fused activation first (rank 2 is small: a separate pass is fine).
      const float* y = out[0]->f32();
      masked_.resize(d_.n * d_.c);
      p_.act.mask(dy, y, masked_.data(), d_.n * d_.c);
      dy = masked_.data();
    }
    // s1 = sum dy, s2 = sum dy * (x - mean), per channel.
    reduce(dy, x, mean_.data());
    // dx = k1 dy + k2 x + k3 per channel.
    std::vector<float>& k1 = a_;
    std::vector<float>& k2 = k2_;
    std::vector<float>& k3 = shift_;
    k1.resize(d_.c);
    k2.resize(d_.c);
    k3.resize(d_.c);
    for (int64_t c = 0; c < d_.c; ++c) {
      const std::array<float, 3> k = backward_channel(c, s1_[c], s2_[c], in, grad_in);
      k1[c] = k[0];
      k2[c] = k[1];
      k3[c] = k[2];
    }
    if (grad_in[0]) {
      affine(dy, batch_stats_ ? x : nullptr, grad_in[0]->f32(), k1.data(), k2.data(), k3.data());
    }
  }

 private:
  bool parallel() const { return d_.n * d_.c * d_.s >= kParallelMin; }

  // Channel c's statistics and forward coefficients (S > 1), from t1 = sum (x - k) and
  // t2 = sum (x - k)^2 around the shift k in training, from the running statistics otherwise:
  // sets mean_, var_, inv_ and y = x * act_a_ + act_sh_ (which backward also reads), and moves
  // the running statistics in training.
  void finish_channel(int64_t c, double t1, double t2, float k, Tensors in) {
    const BnChannel ch =
        bn_channel(batch_stats_, t1, t2, k, d_.count(), in[1]->f32()[c], in[2]->f32()[c],
                   p_.momentum, p_.epsilon, in[3]->f32() + c, in[4]->f32() + c);
    mean_[c] = ch.mean;
    var_[c] = ch.var;
    inv_[c] = ch.inv;
    act_a_[c] = ch.a;
    act_sh_[c] = ch.sh;
  }

  // Channel c's parameter gradients from sum_dy and sum_dy_xm = sum dy (x - mean), and
  // the coefficients of dx = k[0] dy + k[1] x + k[2] (ops/bn_channel.h).
  std::array<float, 3> backward_channel(int64_t c, double sum_dy, double sum_dy_xm, Tensors in,
                                        Tensors grad_in) const {
    BnChannel ch;
    ch.mean = mean_[c];
    ch.inv = inv_[c];
    auto grad = [&](size_t i) {
      return grad_in.size() > i && grad_in[i] ? grad_in[i]->f32() + c : nullptr;
    };
    return bn_backward_channel(ch, batch_stats_, sum_dy, sum_dy_xm, d_.count(), in[1]->f32()[c],
                               grad(1), grad(2), grad(3), grad(4));
  }

  // Runs of S floats shorter than kShortRunBytes (MobileNetV2's 7x7 planes): loops per channel
  // and run would spend more time starting and finishing each run (alignment, remainders,
  // reductions) than in it, which made the 7x7 BatchNorms of a MobileNetV2 training step run at
  // a quarter of the memory's speed. Instead, the threads share the channels, and each thread
  // sweeps sample by sample over its channels' runs, which lie next to each other in memory,
  // with per-channel values spread to one per element (flat_* below). Streaming stores are not
  // used: short runs leave few aligned 64-byte blocks.
  bool short_runs() const { return d_.s * int64_t{sizeof(float)} < kShortRunBytes; }

  // This thread's channels [c0, c1) (called inside a parallel region).
  std::pair<int64_t, int64_t> thread_channels() const {
    const int64_t threads = omp_get_num_threads(), id = omp_get_thread_num();
    return {d_.c * id / threads, d_.c * (id + 1) / threads};
  }

  // dst[c S + s] = v[c] for the channels [c0, c1).
  template <class V>
  void spread(float* dst, const V& v, int64_t c0, int64_t c1) const {
    for (int64_t c = c0; c < c1; ++c) std::fill_n(dst + c * d_.s, d_.s, static_cast<float>(v[c]));
  }

  // Sums of the per-element accumulators of channel c, in double.
  std::pair<double, double> channel_sums(int64_t c) const {
    double t1 = 0, t2 = 0;
    for (int64_t s = 0; s < d_.s; ++s) {
      t1 += acc1_[c * d_.s + s];
      t2 += acc2_[c * d_.s + s];
    }
    return {t1, t2};
  }

  void forward_short_runs(Tensors in, Tensors out) {
    const int64_t N = d_.n, C = d_.c, S = d_.s, stride = C * S;
    const float* x = in[0]->f32();
    float* y = out[0]->f32();
    const bool train = batch_stats_;
    for (auto* v : {&flat_a_, &flat_sh_, &flat_m_, &acc1_, &acc2_}) v->resize(C * S);
#pragma omp parallel if (parallel())
    {
      const auto [c0, c1] = thread_channels();
      const int64_t j0 = c0 * S, len = (c1 - c0) * S;
      if (train) {
        // Sums around one sample of each channel (the shift) keep the cancellation small.
        for (int64_t c = c0; c < c1; ++c) std::fill_n(flat_m_.data() + c * S, S, x[c * S]);
        std::fill_n(acc1_.data() + j0, len, 0.0f);
        std::fill_n(acc2_.data() + j0, len, 0.0f);
        for (int64_t n = 0; n < N; ++n) {
          bn_detail::flat_stats(x + n * stride + j0, flat_m_.data() + j0, acc1_.data() + j0,
                                acc2_.data() + j0, len);
        }
      }
      for (int64_t c = c0; c < c1; ++c) {
        const auto [t1, t2] = train ? channel_sums(c) : std::pair<double, double>{0, 0};
        finish_channel(c, t1, t2, x[c * S], in);
      }
      // Kept for backward: the activation's mask is recomputed from x with a and sh.
      spread(flat_a_.data(), act_a_, c0, c1);
      spread(flat_sh_.data(), act_sh_, c0, c1);
      for (int64_t n = 0; n < N; ++n) {
        bn_detail::flat_affine(x + n * stride + j0, flat_a_.data() + j0, flat_sh_.data() + j0,
                               y + n * stride + j0, len, p_.act.on, p_.act.lo, p_.act.hi);
      }
    }
  }

  void backward_short_runs(Tensors in, Tensors grad_out, Tensors grad_in) {
    const int64_t N = d_.n, C = d_.c, S = d_.s, stride = C * S;
    const float* x = in[0]->f32();
    const float* dy = grad_out[0]->f32();
    float* dx = grad_in[0] ? grad_in[0]->f32() : nullptr;
    // Sized by forward already; a backward without one sees zeros, not a bad address.
    for (auto* v : {&flat_a_, &flat_sh_, &flat_m_, &acc1_, &acc2_, &k2_}) v->resize(C * S);
#pragma omp parallel if (parallel())
    {
      const auto [c0, c1] = thread_channels();
      const int64_t j0 = c0 * S, len = (c1 - c0) * S;
      // flat_a_, flat_sh_ still hold forward's a and sh (for the activation's mask).
      spread(flat_m_.data(), mean_, c0, c1);
      std::fill_n(acc1_.data() + j0, len, 0.0f);
      std::fill_n(acc2_.data() + j0, len, 0.0f);
      for (int64_t n = 0; n < N; ++n) {
        const int64_t off = n * stride + j0;
        bn_detail::flat_reduce(dy + off, x + off, flat_a_.data() + j0, flat_sh_.data() + j0,
                               flat_m_.data() + j0, p_.act.on, p_.act.lo, p_.act.hi,
                               acc1_.data() + j0, acc2_.data() + j0, len);
      }
      // The sums are spent: acc1_, k2_ and flat_m_ hold dx's coefficients from here on.
      for (int64_t c = c0; c < c1; ++c) {
        const auto [sum_dy, sum_dy_xm] = channel_sums(c);
        const std::array<float, 3> k = backward_channel(c, sum_dy, sum_dy_xm, in, grad_in);
        std::fill_n(acc1_.data() + c * S, S, k[0]);
        std::fill_n(k2_.data() + c * S, S, k[1]);
        std::fill_n(flat_m_.data() + c * S, S, k[2]);
      }
      if (dx) {
        for (int64_t n = 0; n < N; ++n) {
          const int64_t off = n * stride + j0;
          bn_detail::flat_dx(dy + off, batch_stats_ || p_.act.on ? x + off : nullptr,
                             flat_a_.data() + j0, flat_sh_.data() + j0, p_.act.on, p_.act.lo,
                             p_.act.hi, acc1_.data() + j0, k2_.data() + j0, flat_m_.data() + j0,
                             dx + off, len);
        }
      }
    }
  }

  // S > 1: each channel's statistics and its normalization run back to back, so the second pass
  // over the channel's N runs (at most a few hundred KB) reads from cache instead of memory.
  void forward_planes(Tensors in, Tensors out) {
    const int64_t N = d_.n, C = d_.c, S = d_.s, stride = C * S;
    const float* x = in[0]->f32();
    float* y = out[0]->f32();
#pragma omp parallel for if (parallel()) schedule(static)
    for (int64_t c = 0; c < C; ++c) {
      const float* xc = x + c * S;
      // Sums around one sample of the channel (the shift) keep the cancellation small.
      double t1 = 0, t2 = 0;
      if (batch_stats_) bn_detail::channel_stats(xc, N, stride, S, xc[0], &t1, &t2);
      finish_channel(c, t1, t2, xc[0], in);
      const float a = act_a_[c], sh = act_sh_[c];
      if (stream_ && p_.act.on) {
        kernels::stream_affine_clamp(xc, y + c * S, N, stride, S, a, sh, p_.act.lo, p_.act.hi);
      } else if (stream_) {
        kernels::stream_affine(xc, nullptr, y + c * S, N, stride, S, a, 0.0f, sh);
      } else if (p_.act.on) {
        bn_detail::channel_affine_clamp(xc, y + c * S, N, stride, S, a, sh, p_.act.lo, p_.act.hi);
      } else {
        bn_detail::channel_affine(xc, nullptr, y + c * S, N, stride, S, a, 0.0f, sh);
      }
    }
  }

  void backward_planes(Tensors in, Tensors grad_out, Tensors grad_in) {
    const int64_t N = d_.n, C = d_.c, S = d_.s, stride = C * S;
    const float* x = in[0]->f32();
    const float* dy = grad_out[0]->f32();
    float* dx = grad_in[0] ? grad_in[0]->f32() : nullptr;
    const bool train = batch_stats_;
#pragma omp parallel for if (parallel()) schedule(static)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t off = c * S;
      double sum_dy, sum_dy_xm;
      if (p_.act.on) {
        bn_detail::channel_reduce_masked(dy + off, x + off, N, stride, S, mean_[c], act_a_[c],
                                         act_sh_[c], p_.act.lo, p_.act.hi, &sum_dy, &sum_dy_xm);
      } else {
        bn_detail::channel_reduce(dy + off, x + off, N, stride, S, mean_[c], &sum_dy, &sum_dy_xm);
      }
      const auto [a, c2, c3] = backward_channel(c, sum_dy, sum_dy_xm, in, grad_in);
      if (dx && p_.act.on && stream_) {
        kernels::stream_dx_masked(dy + off, x + off, dx + off, N, stride, S, act_a_[c], act_sh_[c],
                                  p_.act.lo, p_.act.hi, a, c2, c3);
      } else if (dx && p_.act.on) {
        bn_detail::channel_dx_masked(dy + off, x + off, dx + off, N, stride, S, act_a_[c],
                                     act_sh_[c], p_.act.lo, p_.act.hi, a, c2, c3);
      } else if (dx && stream_) {
        kernels::stream_affine(dy + off, train ? x + off : nullptr, dx + off, N, stride, S, a, c2,
                               c3);
      } else if (dx) {
        bn_detail::channel_affine(dy + off, train ? x + off : nullptr, dx + off, N, stride, S, a,
                                  c2, c3);
      }
    }
  }

  // Batch mean and biased variance into mean_, var_. The sums are taken around one sample of
  // the channel (the shift), which keeps the sum-of-squares cancellation small.
  void batch_statistics(const float* x) {
    const int64_t N = d_.n, C = d_.c, S = d_.s;
    const double cnt = static_cast<double>(d_.count());
    for (int64_t c = 0; c < C; ++c) mean_[c] = x[c * S];  // the shift
    std::vector<float> f1(C, 0.0f), f2(C, 0.0f);
    const float* k = mean_.data();
    for (int64_t n = 0; n < N; ++n) {
      const float* r = x + n * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const float v = r[c] - k[c];
        f1[c] += v;
        f2[c] += v * v;
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      s1_[c] = f1[c];
      s2_[c] = f2[c];
    }
    for (int64_t c = 0; c < C; ++c) {
      const double m1 = s1_[c] / cnt;
      var_[c] = std::max(0.0, s2_[c] / cnt - m1 * m1);
      mean_[c] = static_cast<float>(mean_[c] + m1);
    }
  }

  // s1_ = sum dy, s2_ = sum dy * (x - mean), per channel (rank 2: rows of C channels).
  void reduce(const float* dy, const float* x, const float* mean) {
    const int64_t N = d_.n, C = d_.c;
    std::vector<float> f1(C, 0.0f), f2(C, 0.0f);
    for (int64_t n = 0; n < N; ++n) {
      const float* d = dy + n * C;
      const float* r = x + n * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        f1[c] += d[c];
        f2[c] += d[c] * (r[c] - mean[c]);
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      s1_[c] = f1[c];
      s2_[c] = f2[c];
    }
  }

  // out = src * k1[c] (+ x * k2[c] when x is given) + k3[c] (rank 2: rows of C channels).
  void affine(const float* src, const float* x, float* out, const float* k1, const float* k2,
              const float* k3) const {
    const int64_t N = d_.n, C = d_.c;
#pragma omp parallel for if (parallel()) schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const float* r = src + n * C;
      float* o = out + n * C;
      if (x) {
        const float* q = x + n * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) o[c] = r[c] * k1[c] + q[c] * k2[c] + k3[c];
      } else {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) o[c] = r[c] * k1[c] + k3[c];
      }
    }
  }

  std::vector<float> mean_, inv_;
  std::vector<double> var_, s1_, s2_;
  std::vector<float> a_, shift_, k2_;  // per-channel coefficients, reused every call
  std::vector<float> act_a_, act_sh_;  // forward's y = x * a + sh per channel (fused activation)
  std::vector<float> masked_;          // rank 2: dy through the fused activation
  // Outputs beyond the caches are written with streaming stores (kernels/bn_stream.h). From
  // 8 MB, not 4: a MobileNetV2 training step's 7.2 MB outputs (14x14 x 144) then stay in the
  // cache for the convolutions that read them, which gained more (0.2-0.7 ms per step in two
  // measurements) than the BatchNorms lost.
  static constexpr int64_t kStreamMinBytes = int64_t{8} << 20;
  static constexpr int64_t kShortRunBytes = 512;  // see short_runs()
  // Short runs: per-element copies of forward's a, sh and of the mean, and the accumulators.
  std::vector<float> flat_a_, flat_sh_, flat_m_, acc1_, acc2_;
  bool stream_ = false;
};

std::unique_ptr<Kernel> make_bn_ref(const Node& n, const InputInfos& in,
                                    const std::vector<ValueInfo>&) {
  BnDims d = bn_dims(in);
  return dispatch_float(input(n, in, 0).dtype, [&]<class T>() -> std::unique_ptr<Kernel> {
    return std::make_unique<BatchNormRef<T>>(n, d);
  });
}

std::unique_ptr<Kernel> make_bn_fast(const Node& n, const InputInfos& in,
                                     const std::vector<ValueInfo>&) {
  return std::make_unique<BatchNormFast>(n, bn_dims(in));
}

}  // namespace

const OpDef kBatchNormDef = {OpKind::kBatchNorm, "BatchNorm",  5,    5,      1, infer_batch_norm,
                             make_bn_ref,        make_bn_fast, true, nullptr};

}  // namespace minnow::ops
