// Softmax and LogSoftmax along one axis (attr axis, default -1, negative allowed).
//
// x is viewed as [outer, len, inner] around the axis. Both are computed stably from
// x - max; one exp per element. The reference kernel is the only kernel: the common case
// (inner == 1, class scores per row) runs contiguous loops, and for inner > 1 the loops keep
// inner innermost so they stay contiguous too. These ops are tiny next to the layers before them.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops/op_defs.h"
#include "ops/op_util.h"

namespace minnow::ops {
namespace {

// Rows of work below this many elements stay on one thread.
constexpr int64_t kParallelMin = int64_t{1} << 15;

int softmax_axis(const Node& n, int rank) {
  const int64_t axis = n.attrs.get_int("axis", -1);
  if (axis < -rank || axis >= rank) {
    fail(n, "attribute axis " + std::to_string(axis) + " is out of range for rank " +
                std::to_string(rank));
  }
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

void infer_softmax(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  require_float(n, x);
  if (x.shape.empty()) fail(n, "input '" + x.name + "' must have rank >= 1, got a scalar");
  softmax_axis(n, static_cast<int>(x.shape.size()));
  out[0].dtype = x.dtype;
  out[0].shape = x.shape;
}

struct AxisDims {
  int64_t outer = 1, len = 1, inner = 1;
};

AxisDims axis_dims(const Shape& s, int axis) {
  AxisDims d;
  for (int i = 0; i < static_cast<int>(s.size()); ++i) {
    (i < axis ? d.outer : i == axis ? d.len : d.inner) *= s[i];
  }
  return d;
}

template <class T, bool kLog>
class SoftmaxKernel final : public Kernel {
 public:
  explicit SoftmaxKernel(AxisDims d) : d_(d) {
    if (d.inner > 1) {
      max_.resize(d.inner);
      sum_.resize(d.inner);
    }
  }

  void forward(Tensors in, Tensors out, RunContext&) override {
    const T* x = in[0]->data<T>();
    T* y = out[0]->data<T>();
    if (d_.len == 0) return;
    if (d_.inner == 1) {
      const int64_t L = d_.len;
#pragma omp parallel for if (d_.outer * L >= kParallelMin) schedule(static)
      for (int64_t o = 0; o < d_.outer; ++o) row_forward(x + o * L, y + o * L, L);
      return;
    }
    for (int64_t o = 0; o < d_.outer; ++o)
      strided_forward(x + o * d_.len * d_.inner, y + o * d_.len * d_.inner);
  }

  void backward(Tensors, Tensors out, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!grad_in[0]) return;
    T* dx = grad_in[0]->data<T>();
    if (!grad_out[0]) {
      grad_in[0]->fill_zero();
      return;
    }
    const T* y = out[0]->data<T>();
    const T* dy = grad_out[0]->data<T>();
    if (d_.len == 0) return;
    if (d_.inner == 1) {
      const int64_t L = d_.len;
#pragma omp parallel for if (d_.outer * L >= kParallelMin) schedule(static)
      for (int64_t o = 0; o < d_.outer; ++o) row_backward(y + o * L, dy + o * L, dx + o * L, L);
      return;
    }
    const int64_t block = d_.len * d_.inner;
    for (int64_t o = 0; o < d_.outer; ++o) {
      strided_backward(y + o * block, dy + o * block, dx + o * block);
    }
  }

 private:
  static void row_forward(const T* x, T* y, int64_t L) {
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t k = 0; k < L; ++k) m = std::max(m, x[k]);
    // A row of all -inf gives NaN (-inf - -inf), as in PyTorch.
    T s = 0;
    if constexpr (kLog) {
      for (int64_t k = 0; k < L; ++k) s += std::exp(x[k] - m);
      const T shift = m + std::log(s);
      for (int64_t k = 0; k < L; ++k) y[k] = x[k] - shift;
    } else {
      for (int64_t k = 0; k < L; ++k) {
        y[k] = std::exp(x[k] - m);
        s += y[k];
      }
      const T r = T(1) / s;
      for (int64_t k = 0; k < L; ++k) y[k] *= r;
    }
  }

  // softmax: dx = y (dy - sum dy*y); log-softmax: dx = dy - exp(y) sum dy.
  static void row_backward(const T* y, const T* dy, T* dx, int64_t L) {
    T s = 0;
    if constexpr (kLog) {
      for (int64_t k = 0; k < L; ++k) s += dy[k];
      for (int64_t k = 0; k < L; ++k) dx[k] = dy[k] - std::exp(y[k]) * s;
    } else {
      for (int64_t k = 0; k < L; ++k) s += dy[k] * y[k];
      for (int64_t k = 0; k < L; ++k) dx[k] = y[k] * (dy[k] - s);
    }
  }

  void strided_forward(const T* x, T* y) {
    const int64_t L = d_.len, I = d_.inner;
    T* m = max_.data();
    T* s = sum_.data();
    std::fill(m, m + I, -std::numeric_limits<T>::infinity());
    std::fill(s, s + I, T(0));
    for (int64_t k = 0; k < L; ++k) {
      for (int64_t i = 0; i < I; ++i) m[i] = std::max(m[i], x[k * I + i]);
    }
    for (int64_t k = 0; k < L; ++k) {
      for (int64_t i = 0; i < I; ++i) {
        const T e = std::exp(x[k * I + i] - m[i]);
        s[i] += e;
        if constexpr (!kLog) y[k * I + i] = e;
      }
    }
    if constexpr (kLog) {
      for (int64_t i = 0; i < I; ++i) m[i] += std::log(s[i]);
      for (int64_t k = 0; k < L; ++k) {
        for (int64_t i = 0; i < I; ++i) y[k * I + i] = x[k * I + i] - m[i];
      }
    } else {
      for (int64_t i = 0; i < I; ++i) s[i] = T(1) / s[i];
      for (int64_t k = 0; k < L; ++k) {
        for (int64_t i = 0; i < I; ++i) y[k * I + i] *= s[i];
      }
    }
  }

  void strided_backward(const T* y, const T* dy, T* dx) {
    const int64_t L = d_.len, I = d_.inner;
    T* s = sum_.data();
    std::fill(s, s + I, T(0));
    for (int64_t k = 0; k < L; ++k) {
      for (int64_t i = 0; i < I; ++i) {
        if constexpr (kLog) {
          s[i] += dy[k * I + i];
        } else {
          s[i] += dy[k * I + i] * y[k * I + i];
        }
      }
    }
    for (int64_t k = 0; k < L; ++k) {
      for (int64_t i = 0; i < I; ++i) {
        const int64_t j = k * I + i;
        if constexpr (kLog) {
          dx[j] = dy[j] - std::exp(y[j]) * s[i];
        } else {
          dx[j] = y[j] * (dy[j] - s[i]);
        }
      }
    }
  }

  AxisDims d_;
  std::vector<T> max_, sum_;  // per inner position, for inner > 1
};

template <bool kLog>
std::unique_ptr<Kernel> make_softmax(const Node& n, const InputInfos& in,
                                     const std::vector<ValueInfo>&) {
  const ValueInfo& x = input(n, in, 0);
  AxisDims d = axis_dims(x.shape, softmax_axis(n, static_cast<int>(x.shape.size())));
  return dispatch_float(x.dtype, [&]<class T>() -> std::unique_ptr<Kernel> {
    return std::make_unique<SoftmaxKernel<T, kLog>>(d);
  });
}

}  // namespace

const OpDef kSoftmaxDef = {OpKind::kSoftmax, "Softmax",           1,       1,    1,
                           infer_softmax,    make_softmax<false>, nullptr, true, nullptr};
const OpDef kLogSoftmaxDef = {OpKind::kLogSoftmax, "LogSoftmax",       1,       1,    1,
                              infer_softmax,       make_softmax<true>, nullptr, true, nullptr};

}  // namespace minnow::ops
