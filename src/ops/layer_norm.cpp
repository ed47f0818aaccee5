// LayerNorm over the last dim (PyTorch nn.LayerNorm(D), ONNX LayerNormalization axis=-1):
// y = (x - mean) / sqrt(var + epsilon) * scale + bias, with the biased variance of each row.
//
// The fast kernel is hand loops (rows shared by threads, vectorized inner loops): oneDNN 2.6 has
// a layer-normalization primitive, but it needs its own stats buffers and one primitive per
// direction; these loops are already memory-bound. Row statistics are two-pass (mean, then the
// squared deviations), so rows far from zero do not cancel in float.
#include <cmath>
#include <string>
#include <vector>

#include "ops/op_defs.h"
#include "ops/op_util.h"

namespace minnow::ops {
namespace {

constexpr int64_t kParallelMin = int64_t{1} << 15;

double ln_epsilon(const Node& n) {
  const double eps = n.attrs.get_float("epsilon", 1e-5);
  if (!std::isfinite(eps) || eps < 0) {
    fail(n, "attribute epsilon must be finite and >= 0, got " + std::to_string(eps));
  }
  return eps;
}

void infer_layer_norm(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  ln_epsilon(n);
  const ValueInfo& x = input(n, in, 0);
  require_float(n, x);
  if (x.shape.empty()) fail(n, "input '" + x.name + "' must have rank >= 1, got a scalar");
  const int64_t d = x.shape.back();
  if (d < 1) {
    fail(n, "input '" + x.name + "' has shape " + shape_str(x.shape) +
                ": the normalized (last) dim must be concrete and >= 1");
  }
  static const char* const kRoles[] = {"scale", "bias"};
  for (size_t i = 1; i <= 2; ++i) {
    const ValueInfo& p = input(n, in, i);
    if (p.dtype != x.dtype) {
      fail(n, std::string(kRoles[i - 1]) + " '" + p.name + "' has dtype " +
                  std::string(dtype_name(p.dtype)) + ", expected " +
                  std::string(dtype_name(x.dtype)) + " like the input");
    }
    if (p.shape != Shape{d}) {
      fail(n, std::string(kRoles[i - 1]) + " '" + p.name + "' has shape " + shape_str(p.shape) +
                  ", expected [" + std::to_string(d) + "]");
    }
  }
  out[0].dtype = x.dtype;
  out[0].shape = x.shape;
}

struct LnDims {
  int64_t rows, d;
};

LnDims ln_dims(const InputInfos& in) {
  const Shape& x = in[0]->shape;
  const int64_t d = x.back();
  return {d ? shape_numel(x) / d : 0, d};
}

// The oracle: statistics and row sums in double.
template <class T>
class LayerNormRef final : public Kernel {
 public:
  LayerNormRef(const Node& node, LnDims d)
      : d_(d), eps_(ln_epsilon(node)), mean_(d.rows), inv_(d.rows) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    const T* x = in[0]->data<T>();
    const T* g = in[1]->data<T>();
    const T* b = in[2]->data<T>();
    T* y = out[0]->data<T>();
    const int64_t D = d_.d;
    for (int64_t r = 0; r < d_.rows; ++r) {
      const T* xr = x + r * D;
      double sum = 0, sq = 0;
      for (int64_t j = 0; j < D; ++j) sum += xr[j];
      const double mean = sum / D;
      for (int64_t j = 0; j < D; ++j) sq += (xr[j] - mean) * (xr[j] - mean);
      const double inv = 1 / std::sqrt(sq / D + eps_);
      mean_[r] = mean;
      inv_[r] = inv;
      for (int64_t j = 0; j < D; ++j)
        y[r * D + j] = static_cast<T>((xr[j] - mean) * inv * g[j] + b[j]);
    }
  }

  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    for (Tensor* t : grad_in) {
      if (t) t->fill_zero();
    }
    if (!grad_out[0]) return;
    const T* x = in[0]->data<T>();
    const T* g = in[1]->data<T>();
    const T* dy = grad_out[0]->data<T>();
    const int64_t D = d_.d;
    std::vector<double> dscale(D, 0.0), dbias(D, 0.0);
    for (int64_t r = 0; r < d_.rows; ++r) {
      const T* xr = x + r * D;
      const T* dr = dy + r * D;
      const double mean = mean_[r], inv = inv_[r];
      double s1 = 0, s2 = 0;  // sum of g*dy and of g*dy*xhat over the row
      for (int64_t j = 0; j < D; ++j) {
        const double xhat = (xr[j] - mean) * inv;
        s1 += g[j] * dr[j];
        s2 += g[j] * dr[j] * xhat;
        dscale[j] += dr[j] * xhat;
        dbias[j] += dr[j];
      }
      if (grad_in[0]) {
        T* dx = grad_in[0]->data<T>() + r * D;
        for (int64_t j = 0; j < D; ++j) {
          const double xhat = (xr[j] - mean) * inv;
          dx[j] = static_cast<T>(inv * (g[j] * dr[j] - s1 / D - xhat * s2 / D));
        }
      }
    }
    for (int64_t j = 0; j < D; ++j) {
      if (grad_in[1]) grad_in[1]->data<T>()[j] = static_cast<T>(dscale[j]);
      if (grad_in[2]) grad_in[2]->data<T>()[j] = static_cast<T>(dbias[j]);
    }
  }

 private:
  LnDims d_;
  double eps_;
  std::vector<double> mean_, inv_;
};

class LayerNormFast final : public Kernel {
 public:
  LayerNormFast(const Node& node, LnDims d)
      : d_(d), eps_(ln_epsilon(node)), mean_(d.rows), inv_(d.rows) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    const float* x = in[0]->f32();
    const float* g = in[1]->f32();
    const float* b = in[2]->f32();
    float* y = out[0]->f32();
    const int64_t D = d_.d;
#pragma omp parallel for if (parallel()) schedule(static)
    for (int64_t r = 0; r < d_.rows; ++r) {
      const float* xr = x + r * D;
      float* yr = y + r * D;
      float sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < D; ++j) sum += xr[j];
      const float mean = sum / static_cast<float>(D);
      float sq = 0;
#pragma omp simd reduction(+ : sq)
      for (int64_t j = 0; j < D; ++j) sq += (xr[j] - mean) * (xr[j] - mean);
      const float inv = static_cast<float>(1.0 / std::sqrt(static_cast<double>(sq) / D + eps_));
      mean_[r] = mean;
      inv_[r] = inv;
#pragma omp simd
      for (int64_t j = 0; j < D; ++j) yr[j] = (xr[j] - mean) * inv * g[j] + b[j];
    }
  }

  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    for (Tensor* t : grad_in) {
      if (t) t->fill_zero();
    }
    if (!grad_out[0]) return;
    const float* x = in[0]->f32();
    const float* g = in[1]->f32();
    const float* dy = grad_out[0]->f32();
    const int64_t D = d_.d;
    if (grad_in[0]) {
      float* dx = grad_in[0]->f32();
      const float inv_d = 1.0f / static_cast<float>(D);
#pragma omp parallel for if (parallel()) schedule(static)
      for (int64_t r = 0; r < d_.rows; ++r) {
        const float* xr = x + r * D;
        const float* dr = dy + r * D;
        float* o = dx + r * D;
        const float mean = mean_[r], inv = inv_[r];
        float s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
        for (int64_t j = 0; j < D; ++j) {
          const float gd = g[j] * dr[j];
          s1 += gd;
          s2 += gd * (xr[j] - mean) * inv;
        }
        const float m1 = s1 * inv_d, m2 = s2 * inv_d;
#pragma omp simd
        for (int64_t j = 0; j < D; ++j) {
          o[j] = inv * (g[j] * dr[j] - m1 - (xr[j] - mean) * inv * m2);
        }
      }
    }
    // Column sums over rows, one row at a time so the inner loop is contiguous; the fixed order
    // keeps the parameter gradients independent of the thread count.
    float* ds = grad_in[1] ? grad_in[1]->f32() : nullptr;
    float* db = grad_in[2] ? grad_in[2]->f32() : nullptr;
    if (!ds && !db) return;
    for (int64_t r = 0; r < d_.rows; ++r) {
      const float* xr = x + r * D;
      const float* dr = dy + r * D;
      const float mean = mean_[r], inv = inv_[r];
      if (ds) {
#pragma omp simd
        for (int64_t j = 0; j < D; ++j) ds[j] += dr[j] * (xr[j] - mean) * inv;
      }
      if (db) {
#pragma omp simd
        for (int64_t j = 0; j < D; ++j) db[j] += dr[j];
      }
    }
  }

 private:
  bool parallel() const { return d_.rows * d_.d >= kParallelMin && d_.rows > 1; }

  LnDims d_;
  double eps_;
  std::vector<float> mean_, inv_;
};

std::unique_ptr<Kernel> make_ln_ref(const Node& n, const InputInfos& in,
                                    const std::vector<ValueInfo>&) {
  LnDims d = ln_dims(in);
  return dispatch_float(input(n, in, 0).dtype, [&]<class T>() -> std::unique_ptr<Kernel> {
    return std::make_unique<LayerNormRef<T>>(n, d);
  });
}

std::unique_ptr<Kernel> make_ln_fast(const Node& n, const InputInfos& in,
                                     const std::vector<ValueInfo>&) {
  return std::make_unique<LayerNormFast>(n, ln_dims(in));
}

}  // namespace

const OpDef kLayerNormDef = {OpKind::kLayerNorm, "LayerNorm",  3,    3,      1, infer_layer_norm,
                             make_ln_ref,        make_ln_fast, true, nullptr};

}  // namespace minnow::ops
