// Numpy broadcasting shared by the binary op families (binary.cpp: Add/Sub/Mul, math_binary.cpp:
// Div/Pow/Max/Min): shape inference, the collapsed iteration "plan", and the reduction of an
// output-shaped gradient onto a broadcast input.
//
// A kernel turns the broadcast into a plan once, at construction: output dims of size 1 are
// dropped and neighbouring dims that broadcast the same way are merged. The common cases then
// become a single contiguous loop: equal shapes collapse to one dim, a scalar operand to one dim
// with stride 0, a per-channel operand ([N,C,H,W] with [1,C,1,1]) to [N, C, H*W] whose inner
// H*W loop reads one value of the channel operand. Anything else runs the same loops over the
// collapsed dims (the general strided path).
#pragma once

#include <omp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "ops/elementwise.h"
#include "ops/op_util.h"

namespace minnow::ops {

// Numpy broadcasting of two shapes; kDynamic (the batch) broadcasts like an unknown size.
inline Shape broadcast_shapes(const Node& n, const ValueInfo& a, const ValueInfo& b) {
  const size_t r = std::max(a.shape.size(), b.shape.size());
  Shape out(r);
  for (size_t d = 0; d < r; ++d) {
    const size_t da = d + a.shape.size(), db = d + b.shape.size();  // right-aligned (minus r)
    int64_t x = da >= r ? a.shape[da - r] : 1;
    int64_t y = db >= r ? b.shape[db - r] : 1;
    if (x == y || y == 1) {
      out[d] = x;
    } else if (x == 1) {
      out[d] = y;
    } else if (x == kDynamic || y == kDynamic) {
      // Legal only when the batch equals the other size; keep the concrete one.
      out[d] = x == kDynamic ? y : x;
    } else {
      fail(n, "cannot broadcast '" + a.name + "' " + shape_str(a.shape) + " with '" + b.name +
                  "' " + shape_str(b.shape) + ": dimension " + std::to_string(d) + " is " +
                  std::to_string(x) + " vs " + std::to_string(y));
    }
  }
  return out;
}

// Two float inputs of one dtype, broadcast against each other.
inline void infer_binary(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& a = input(n, in, 0);
  const ValueInfo& b = input(n, in, 1);
  require_float(n, a);
  require_float(n, b);
  if (a.dtype != b.dtype) {
    fail(n, "inputs '" + a.name + "' (" + std::string(dtype_name(a.dtype)) + ") and '" + b.name +
                "' (" + std::string(dtype_name(b.dtype)) + ") must have the same dtype");
  }
  out[0].dtype = a.dtype;
  out[0].shape = broadcast_shapes(n, a, b);
}

// The collapsed iteration space. The output is `rows` x `inner` (row-major); operand k's element
// offset is the sum over collapsed dims of index * stride[k][d], with stride 0 where k is
// broadcast. Work is split into items of at most kBlock inner elements so that a single long
// row (equal shapes, scalar operand) still spreads over threads.
struct Plan {
  std::vector<int64_t> ext;
  std::vector<int64_t> stride[2];
  int64_t rows = 1, inner = 1, blocks_per_row = 1, items = 0, numel = 0;
  int inner_stride[2] = {1, 1};

  Plan(const Shape& out, const Shape& a, const Shape& b) {
    const size_t r = out.size();
    auto aligned = [r](const Shape& s, size_t d) {
      return d + s.size() >= r ? s[d + s.size() - r] : int64_t{1};
    };
    std::vector<int> full;  // bit k set: operand k is not broadcast along this dim
    for (size_t d = 0; d < r; ++d) {
      if (out[d] == 1) continue;
      int f = (aligned(a, d) == out[d] ? 1 : 0) | (aligned(b, d) == out[d] ? 2 : 0);
      if (!full.empty() && full.back() == f) {
        ext.back() *= out[d];
      } else {
        ext.push_back(out[d]);
        full.push_back(f);
      }
    }
    if (ext.empty()) {
      ext = {1};
      full = {3};
    }
    for (int k = 0; k < 2; ++k) {
      stride[k].assign(ext.size(), 0);
      int64_t s = 1;
      for (size_t d = ext.size(); d-- > 0;) {
        if (full[d] >> k & 1) {
          stride[k][d] = s;
          s *= ext[d];
        }
      }
      inner_stride[k] = static_cast<int>(stride[k].back());
    }
    inner = ext.back();
    for (size_t d = 0; d + 1 < ext.size(); ++d) rows *= ext[d];
    numel = rows * inner;
    blocks_per_row = std::max<int64_t>(1, (inner + kBlock - 1) / kBlock);
    items = numel == 0 ? 0 : rows * blocks_per_row;
  }

  // Offsets of item `it` in the output and both operands, and its length.
  void locate(int64_t it, int64_t off[3], int64_t& len) const {
    int64_t row = it / blocks_per_row;
    const int64_t j0 = (it % blocks_per_row) * kBlock;
    len = std::min(kBlock, inner - j0);
    off[0] = row * inner + j0;
    off[1] = j0 * inner_stride[0];
    off[2] = j0 * inner_stride[1];
    for (size_t d = ext.size() - 1; d-- > 0 && row > 0;) {
      const int64_t i = row % ext[d];
      row /= ext[d];
      off[1] += i * stride[0][d];
      off[2] += i * stride[1][d];
    }
  }
};

// One contiguous stretch of the output; the stride pair picks a loop the compiler vectorizes.
template <class Op, class T>
void apply_run(T* __restrict y, const T* __restrict a, const T* __restrict b, int64_t n, int sa,
               int sb) {
  if (sa && sb) {
    for (int64_t j = 0; j < n; ++j) y[j] = Op::apply(a[j], b[j]);
  } else if (sa) {
    const T bv = b[0];
    for (int64_t j = 0; j < n; ++j) y[j] = Op::apply(a[j], bv);
  } else if (sb) {
    const T av = a[0];
    for (int64_t j = 0; j < n; ++j) y[j] = Op::apply(av, b[j]);
  } else {
    const T v = Op::apply(a[0], b[0]);
    for (int64_t j = 0; j < n; ++j) y[j] = v;
  }
}

// y = a (op) b over the plan; operands are given in plan order (operand 0, operand 1).
template <class Op, class T>
void apply_plan(const Plan& p, T* y, const T* a, const T* b) {
#pragma omp parallel for if (p.numel >= kParallelMin) schedule(static)
  for (int64_t it = 0; it < p.items; ++it) {
    int64_t off[3], len;
    p.locate(it, off, len);
    apply_run<Op>(y + off[0], a + off[1], b + off[2], len, p.inner_stride[0], p.inner_stride[1]);
  }
}

// Sums with eight independent accumulators: a single running sum is a serial dependency chain
// the compiler may not reorder (no -ffast-math), so it would neither vectorize nor pipeline.
template <class T>
T sum_run(const T* __restrict x, int64_t n) {
  T acc[8] = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += x[j + k];
  }
  T s = 0;
  for (; j < n; ++j) s += x[j];
  for (int k = 0; k < 8; ++k) s += acc[k];
  return s;
}

template <class T>
T dot_run(const T* __restrict x, const T* __restrict y, int64_t n) {
  T acc[8] = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += x[j + k] * y[j + k];
  }
  T s = 0;
  for (; j < n; ++j) s += x[j] * y[j];
  for (int k = 0; k < 8; ++k) s += acc[k];
  return s;
}

// g (shaped like operand k) += sum over broadcast dims of dy (times operand 1-k when `other`),
// for items [i0, i1).
template <class T>
void accumulate_items(const Plan& p, int k, int64_t i0, int64_t i1, T* __restrict g,
                      const T* __restrict dy, const T* __restrict other) {
  const int sg = p.inner_stride[k], so = p.inner_stride[1 - k];
  for (int64_t it = i0; it < i1; ++it) {
    int64_t off[3], len;
    p.locate(it, off, len);
    T* gr = g + off[1 + k];
    const T* d = dy + off[0];
    const T* o = other ? other + off[2 - k] : nullptr;
    if (sg) {
      if (!o) {
        for (int64_t j = 0; j < len; ++j) gr[j] += d[j];
      } else if (so) {
        for (int64_t j = 0; j < len; ++j) gr[j] += d[j] * o[j];
      } else {
        const T ov = o[0];
        for (int64_t j = 0; j < len; ++j) gr[j] += d[j] * ov;
      }
    } else if (!o) {
      gr[0] += sum_run(d, len);
    } else if (so) {
      gr[0] += dot_run(d, o, len);
    } else {
      gr[0] += o[0] * sum_run(d, len);
    }
  }
}

// Writes the gradient of a broadcast input: g = sum over broadcast dims of dy (times the other
// operand when given). On several threads each thread sums into its own partial buffer, made
// once at construction.
template <class T>
class BroadcastReducer {
 public:
  BroadcastReducer(const Plan& plan, const int64_t numel[2]) : numel_{numel[0], numel[1]} {
    // One buffer per extra thread, limited so that all of them together are no larger than the
    // output.
    for (int k = 0; k < 2; ++k) {
      if (numel_[k] == plan.numel || numel_[k] == 0) continue;
      parts_[k] = static_cast<int>(
          std::clamp<int64_t>(plan.numel / numel_[k], 1, std::max(1, omp_get_max_threads())));
      if (plan.numel < kParallelMin) parts_[k] = 1;
      partial_[k].resize(static_cast<size_t>((parts_[k] - 1) * numel_[k]));
    }
  }

  void reduce(const Plan& plan, int k, T* g, const T* dy, const T* other) {
    std::fill(g, g + numel_[k], T(0));
    const int parts = parts_[k];
    if (parts <= 1) {
      accumulate_items(plan, k, 0, plan.items, g, dy, other);
      return;
    }
    T* partial = partial_[k].data();
    const int64_t m = numel_[k];
#pragma omp parallel num_threads(parts)
    {
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      T* mine = t == 0 ? g : partial + (t - 1) * m;
      if (t > 0) std::fill(mine, mine + m, T(0));
      accumulate_items(plan, k, plan.items * t / nt, plan.items * (t + 1) / nt, mine, dy, other);
#pragma omp barrier
#pragma omp for schedule(static)
      for (int64_t i = 0; i < m; ++i) {
        T s = g[i];
        for (int u = 1; u < nt; ++u) s += partial[(u - 1) * m + i];
        g[i] = s;
      }
    }
  }

 private:
  int64_t numel_[2];
  int parts_[2] = {1, 1};
  std::vector<T> partial_[2];
};

}  // namespace minnow::ops
