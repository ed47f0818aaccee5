// Reductions over a set of axes (ONNX ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd,
// ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp), attributes "axes" (absent
// or empty: all axes; negative counts from the end) and "keepdims" (default 1).
//
// One kernel serves all of them. Its plan, made once per shape, lists for every output element
// the input offset of its group's first element, and for every position in a group the offset
// from there; dims of size 1 are dropped and neighbouring dims that are both kept or both
// reduced are merged first, so the common cases (reduce the last axes, reduce the spatial axes of
// NCHW) have one contiguous or one strided run per group. A functor per op reduces one group and
// writes one group's input gradient; every input element is in exactly one group, so backward
// overwrites the whole input gradient. Sums accumulate in double, also for f32 inputs. A group
// over zero elements yields the op's identity (0, 1, -inf, +inf; Mean gives NaN).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "ops/elementwise.h"
#include "ops/op_defs.h"
#include "ops/op_util.h"

namespace minnow::ops {
namespace {

template <class T, class F, class Ix>
double sum_of(const T* x, Ix off, int64_t n, F&& f) {
  // Four independent sums: one running sum is a dependency chain of add latencies.
  double acc[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int k = 0; k < 4; ++k) acc[k] += f(static_cast<double>(x[off[i + k]]));
  }
  for (; i < n; ++i) acc[0] += f(static_cast<double>(x[off[i]]));
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// dx = dy * d(y)/d(x) where the derivative depends on x alone (and the group's y).
template <class T, class F, class Ix>
void pointwise_grad(const T* x, Ix off, int64_t n, T* dx, F&& f) {
  for (int64_t i = 0; i < n; ++i) dx[off[i]] = static_cast<T>(f(static_cast<double>(x[off[i]])));
}

struct SumR {
  template <class T, class Ix>
  T forward(const T* x, Ix off, int64_t n) const {
    return static_cast<T>(sum_of(x, off, n, [](double v) { return v; }));
  }
  template <class T, class Ix>
  void backward(const T* x, Ix off, int64_t n, T, T dy, T* dx) const {
    pointwise_grad(x, off, n, dx, [dy](double) { return dy; });
  }
};

struct MeanR {
  template <class T, class Ix>
  T forward(const T* x, Ix off, int64_t n) const {
    return static_cast<T>(sum_of(x, off, n, [](double v) { return v; }) / static_cast<double>(n));
  }
  template <class T, class Ix>
  void backward(const T* x, Ix off, int64_t n, T, T dy, T* dx) const {
    const double g = static_cast<double>(dy) / static_cast<double>(n);
    pointwise_grad(x, off, n, dx, [g](double) { return g; });
  }
};

struct SumSquareR {
  template <class T, class Ix>
  T forward(const T* x, Ix off, int64_t n) const {
    return static_cast<T>(sum_of(x, off, n, [](double v) { return v * v; }));
  }
  template <class T, class Ix>
  void backward(const T* x, Ix off, int64_t n, T, T dy, T* dx) const {
    pointwise_grad(x, off, n, dx, [dy](double v) { return 2 * v * dy; });
  }
};

struct L1R {
  template <class T, class Ix>
  T forward(const T* x, Ix off, int64_t n) const {
    return static_cast<T>(sum_of(x, off, n, [](double v) { return std::abs(v); }));
  }
  template <class T, class Ix>
  void backward(const T* x, Ix off, int64_t n, T, T dy, T* dx) const {
    pointwise_grad(x, off, n, dx, [dy](double v) { return v > 0 ? dy : (v < 0 ? -dy : 0.0); });
  }
};

// dx = x / y; a zero norm passes no gradient (PyTorch's norm backward).
struct L2R {
  template <class T, class Ix>
  T forward(const T* x, Ix off, int64_t n) const {
    return static_cast<T>(std::sqrt(sum_of(x, off, n, [](double v) { return v * v; })));
  }
  template <class T, class Ix>
  void backward(const T* x, Ix off, int64_t n, T y, T dy, T* dx) const {
    const double g = y > T(0) ? static_cast<double>(dy) / static_cast<double>(y) : 0.0;
    pointwise_grad(x, off, n, dx, [g](double v) { return v * g; });
  }
};

struct LogSumR {
  template <class T, class Ix>
  T forward(const T* x, Ix off, int64_t n) const {
    return static_cast<T>(std::log(sum_of(x, off, n, [](double v) { return v; })));
  }
  template <class T, class Ix>
  void backward(const T* x, Ix off, int64_t n, T, T dy, T* dx) const {
    const double g = static_cast<double>(dy) / sum_of(x, off, n, [](double v) { return v; });
    pointwise_grad(x, off, n, dx, [g](double) { return g; });
  }
};

// log sum exp(x) = m + log sum exp(x - m) with m the group maximum, so nothing overflows.
struct LogSumExpR {
  template <class T, class Ix>
  T forward(const T* x, Ix off, int64_t n) const {
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(x[off[i]]));
    if (std::isinf(m)) return static_cast<T>(m);  // empty, all -inf, or some +inf
    return static_cast<T>(m +
                          std::log(sum_of(x, off, n, [m](double v) { return std::exp(v - m); })));
  }
  template <class T, class Ix>
  void backward(const T* x, Ix off, int64_t n, T y, T dy, T* dx) const {
    const double yd = y, g = dy;
    pointwise_grad(x, off, n, dx, [yd, g](double v) { return g * std::exp(v - yd); });
  }
};

// Max and Min: NaN propagates; the gradient goes to the first extreme element (ties: first).
template <bool kMax>
struct ExtremeR {
  // The extreme value in a loop without early exit (it vectorizes on contiguous groups), then
  // its first position.
  template <class T, class Ix>
  static int64_t pick(const T* x, Ix off, int64_t n) {
    T m = x[off[0]];
    bool nan = m != m;
    for (int64_t i = 1; i < n; ++i) {
      const T v = x[off[i]];
      nan |= v != v;
      m = (kMax ? v > m : v < m) ? v : m;
    }
    for (int64_t i = 0; i < n; ++i) {
      const T v = x[off[i]];
      if (nan ? v != v : v == m) return i;
    }
    return 0;
  }
  template <class T, class Ix>
  T forward(const T* x, Ix off, int64_t n) const {
    if (n == 0) {
      return kMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
    }
    return x[off[pick(x, off, n)]];
  }
  template <class T, class Ix>
  void backward(const T* x, Ix off, int64_t n, T, T dy, T* dx) const {
    for (int64_t i = 0; i < n; ++i) dx[off[i]] = T(0);
    if (n > 0) dx[off[pick(x, off, n)]] = dy;
  }
};

// d/dx_i prod = product of the others, computed without dividing by zero: with one zero only
// that element has a gradient, with two or more none has.
struct ProdR {
  template <class T, class Ix>
  T forward(const T* x, Ix off, int64_t n) const {
    double p = 1;
    for (int64_t i = 0; i < n; ++i) p *= static_cast<double>(x[off[i]]);
    return static_cast<T>(p);
  }
  template <class T, class Ix>
  void backward(const T* x, Ix off, int64_t n, T, T dy, T* dx) const {
    int64_t zeros = 0, zero_at = 0;
    double p = 1;  // product of the non-zero elements
    for (int64_t i = 0; i < n; ++i) {
      const double v = x[off[i]];
      if (v == 0) {
        ++zeros;
        zero_at = i;
      } else {
        p *= v;
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      const double v = x[off[i]];
      dx[off[i]] = zeros == 0 ? static_cast<T>(dy * (p / v)) : T(0);
    }
    if (zeros == 1) dx[off[zero_at]] = static_cast<T>(dy * p);
  }
};

// Per input dim: is it reduced? Validates axes (range, duplicates) and keepdims.
std::vector<bool> reduced_dims(const Node& n, size_t rank) {
  const std::vector<int64_t> axes = n.attrs.get_ints("axes", {});
  const int64_t keepdims = n.attrs.get_int("keepdims", 1);
  if (keepdims != 0 && keepdims != 1) {
    fail(n, "attribute keepdims must be 0 or 1, got " + std::to_string(keepdims));
  }
  if (axes.empty() && n.attrs.get_int("noop_with_empty_axes", 0) != 0) {
    fail(n, "noop_with_empty_axes=1 with empty axes is not supported");
  }
  const int64_t r = static_cast<int64_t>(rank);
  std::vector<bool> red(rank, axes.empty());
  for (int64_t a : axes) {
    if (a < -r || a >= r) {
      fail(n, "axis " + std::to_string(a) + " is out of range for rank " + std::to_string(r));
    }
    const int64_t d = a < 0 ? a + r : a;
    if (red[d]) fail(n, "axis " + std::to_string(a) + " is listed twice in axes");
    red[d] = true;
  }
  return red;
}

void infer_reduce(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  require_float(n, x);
  const std::vector<bool> red = reduced_dims(n, x.shape.size());
  const bool keep = n.attrs.get_int("keepdims", 1) != 0;
  out[0].dtype = x.dtype;
  out[0].shape.clear();
  for (size_t d = 0; d < x.shape.size(); ++d) {
    if (!red[d]) {
      out[0].shape.push_back(x.shape[d]);
    } else if (keep) {
      out[0].shape.push_back(1);
    }
  }
}

// Offsets of every multi-index over (extent, stride) dims, row-major.
std::vector<int64_t> enumerate_offsets(const std::vector<std::pair<int64_t, int64_t>>& dims) {
  int64_t count = 1;
  for (const auto& d : dims) count *= d.first;
  std::vector<int64_t> offs(static_cast<size_t>(count));
  std::vector<int64_t> idx(dims.size(), 0);
  int64_t cur = 0;
  for (int64_t i = 0; i < count; ++i) {
    offs[i] = cur;
    for (size_t d = dims.size(); d-- > 0;) {
      cur += dims[d].second;
      if (++idx[d] < dims[d].first) break;
      cur -= dims[d].second * dims[d].first;
      idx[d] = 0;
    }
  }
  return offs;
}

struct ReducePlan {
  std::vector<int64_t> base;  // per output element: input offset of its group's first element
  std::vector<int64_t> off;   // per group position: offset from the group's base
  int64_t in_numel = 0;

  ReducePlan(const Shape& shape, const std::vector<bool>& red) {
    in_numel = shape_numel(shape);
    // Merge neighbouring dims of the same kind (size-1 dims do not matter either way).
    std::vector<std::pair<int64_t, int64_t>> kept, reduced;  // (extent, stride)
    int64_t stride = 1;
    int last = -1;  // 0 kept, 1 reduced
    for (size_t d = shape.size(); d-- > 0;) {
      const int64_t e = shape[d];
      if (e != 1) {
        auto& list = red[d] ? reduced : kept;
        const int kind = red[d] ? 1 : 0;
        if (last == kind) {
          list.back().first *= e;  // directly outside the previous dim: keeps its stride
        } else {
          list.push_back({e, stride});
        }
        last = kind;
      }
      stride *= e;
    }
    std::reverse(kept.begin(), kept.end());
    std::reverse(reduced.begin(), reduced.end());
    base = enumerate_offsets(kept);
    off = enumerate_offsets(reduced);
    if (in_numel == 0) off.clear();  // groups over a zero-size dim are empty
  }
};

// Group positions when the reduced dims are the innermost ones: offset i is i.
struct Contiguous {
  int64_t operator[](int64_t i) const { return i; }
};

template <class T, class Fn>
class ReduceKernel final : public Kernel {
 public:
  ReduceKernel(Fn fn, const Shape& in, const std::vector<bool>& red) : fn_(fn), plan_(in, red) {
    for (size_t i = 0; i < plan_.off.size() && contiguous_; ++i) {
      contiguous_ = plan_.off[i] == static_cast<int64_t>(i);
    }
  }

  void forward(Tensors in, Tensors out, RunContext&) override {
    const T* x = in[0]->data<T>();
    T* y = out[0]->data<T>();
    if (contiguous_) {
      forward_groups(x, y, Contiguous{});
    } else {
      forward_groups(x, y, plan_.off.data());
    }
  }

  void backward(Tensors in, Tensors out, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!grad_in[0]) return;
    if (!grad_out[0]) {
      grad_in[0]->fill_zero();
      return;
    }
    const T* x = in[0]->data<T>();
    const T* y = out[0]->data<T>();
    const T* dy = grad_out[0]->data<T>();
    T* dx = grad_in[0]->data<T>();
    if (contiguous_) {
      backward_groups(x, y, dy, dx, Contiguous{});
    } else {
      backward_groups(x, y, dy, dx, plan_.off.data());
    }
  }

 private:
  template <class Ix>
  void forward_groups(const T* x, T* y, Ix off) const {
    const int64_t m = static_cast<int64_t>(plan_.base.size());
    const int64_t n = static_cast<int64_t>(plan_.off.size());
    const int64_t* base = plan_.base.data();
#pragma omp parallel for if (plan_.in_numel >= kParallelMin && m > 1) schedule(static)
    for (int64_t o = 0; o < m; ++o) y[o] = fn_.forward(x + base[o], off, n);
  }

  template <class Ix>
  void backward_groups(const T* x, const T* y, const T* dy, T* dx, Ix off) const {
    const int64_t m = static_cast<int64_t>(plan_.base.size());
    const int64_t n = static_cast<int64_t>(plan_.off.size());
    const int64_t* base = plan_.base.data();
#pragma omp parallel for if (plan_.in_numel >= kParallelMin && m > 1) schedule(static)
    for (int64_t o = 0; o < m; ++o) {
      fn_.backward(x + base[o], off, n, y[o], dy[o], dx + base[o]);
    }
  }

  Fn fn_;
  ReducePlan plan_;
  bool contiguous_ = true;
};

template <class Fn>
std::unique_ptr<Kernel> make_reduce(const Node& n, const InputInfos& in,
                                    const std::vector<ValueInfo>&) {
  const ValueInfo& x = input(n, in, 0);
  const std::vector<bool> red = reduced_dims(n, x.shape.size());
  return dispatch_float(x.dtype, [&]<class T>() -> std::unique_ptr<Kernel> {
    return std::make_unique<ReduceKernel<T, Fn>>(Fn{}, x.shape, red);
  });
}

template <class Fn>
constexpr OpDef reduce_def(OpKind kind, const char* name) {
  return {kind, name, 1, 1, 1, infer_reduce, make_reduce<Fn>, nullptr, true, nullptr};
}

}  // namespace

const OpDef kReduceMeanDef = reduce_def<MeanR>(OpKind::kReduceMean, "ReduceMean");
const OpDef kReduceSumDef = reduce_def<SumR>(OpKind::kReduceSum, "ReduceSum");
const OpDef kReduceMaxDef = reduce_def<ExtremeR<true>>(OpKind::kReduceMax, "ReduceMax");
const OpDef kReduceMinDef = reduce_def<ExtremeR<false>>(OpKind::kReduceMin, "ReduceMin");
const OpDef kReduceProdDef = reduce_def<ProdR>(OpKind::kReduceProd, "ReduceProd");
const OpDef kReduceL1Def = reduce_def<L1R>(OpKind::kReduceL1, "ReduceL1");
const OpDef kReduceL2Def = reduce_def<L2R>(OpKind::kReduceL2, "ReduceL2");
const OpDef kReduceSumSquareDef =
    reduce_def<SumSquareR>(OpKind::kReduceSumSquare, "ReduceSumSquare");
const OpDef kReduceLogSumDef = reduce_def<LogSumR>(OpKind::kReduceLogSum, "ReduceLogSum");
const OpDef kReduceLogSumExpDef =
    reduce_def<LogSumExpR>(OpKind::kReduceLogSumExp, "ReduceLogSumExp");

}  // namespace minnow::ops
