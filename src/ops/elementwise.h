// Shared pieces of the elementwise op families (activations, binary ops, dropout): the blocked
// parallel loop and the "y = f(x), dx = f'(x, y) * dy" kernel template.
//
// Everything here is a template instantiated per op functor so that the per-element function is
// inlined into a contiguous loop the compiler can vectorize: no virtual call or std::function
// per element, nothing allocated per call.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/kernel.h"
#include "ops/op_util.h"

namespace minnow::ops {

// Below this many elements a loop stays on one thread: waking the OpenMP team costs a few
// microseconds, more than the loop itself.
inline constexpr int64_t kParallelMin = int64_t{1} << 16;
// Blocks are large enough to amortize scheduling and small enough to balance two to a few
// dozen threads on activation-sized tensors.
inline constexpr int64_t kBlock = int64_t{1} << 14;

// Calls body(lo, hi) on consecutive blocks covering [0, n), in parallel for large n. body runs a
// plain contiguous loop, which is where vectorization happens.
template <class F>
inline void for_blocks(int64_t n, F&& body) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  if (blocks <= 1) {
    if (n > 0) body(int64_t{0}, n);
    return;
  }
#pragma omp parallel for if (n >= kParallelMin) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) body(b * kBlock, std::min(n, (b + 1) * kBlock));
}

// Same-shape elementwise input/output: the common validation of unary ops.
inline void infer_same_as_input(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  require_float(n, x);
  out[0].dtype = x.dtype;
  out[0].shape = x.shape;
}

// A unary op functor provides
//   template <class T> T forward(T x) const;
//   template <class T> T backward(T x, T y, T dy) const;   // returns dL/dx
// and is copied into the kernel (it holds the op's attributes, e.g. LeakyRelu's alpha).
template <class T, class Fn>
class UnaryKernel final : public Kernel {
 public:
  explicit UnaryKernel(Fn fn) : fn_(fn) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    const T* __restrict x = in[0]->data<T>();
    T* __restrict y = out[0]->data<T>();
    const Fn fn = fn_;
    for_blocks(in[0]->numel(), [=](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) y[i] = fn.template forward<T>(x[i]);
    });
  }

  void backward(Tensors in, Tensors out, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!grad_in[0]) return;
    T* __restrict dx = grad_in[0]->data<T>();
    const int64_t n = in[0]->numel();
    if (!grad_out[0]) {
      grad_in[0]->fill_zero();
      return;
    }
    const T* __restrict x = in[0]->data<T>();
    const T* __restrict y = out[0]->data<T>();
    const T* __restrict dy = grad_out[0]->data<T>();
    const Fn fn = fn_;
    for_blocks(n, [=](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) dx[i] = fn.template backward<T>(x[i], y[i], dy[i]);
    });
  }

 private:
  Fn fn_;
};

template <class Fn>
std::unique_ptr<Kernel> make_unary_kernel(DType dtype, Fn fn) {
  return dispatch_float(dtype, [&]<class T>() -> std::unique_ptr<Kernel> {
    return std::make_unique<UnaryKernel<T, Fn>>(fn);
  });
}

// Copies n elements of type T, in parallel for large n (activation-sized memcpy is bandwidth
// bound, and two cores move more bytes than one).
template <class T>
inline void parallel_copy(T* dst, const T* src, int64_t n) {
  for_blocks(n, [=](int64_t lo, int64_t hi) {
    std::memcpy(dst + lo, src + lo, static_cast<size_t>(hi - lo) * sizeof(T));
  });
}

// Same bytes, new shape (Reshape, Flatten, Squeeze, Unsqueeze, Identity): the output and the
// input gradient are byte copies, for every dtype.
class ByteCopyKernel final : public Kernel {
 public:
  void forward(Tensors in, Tensors out, RunContext&) override { copy(*out[0], *in[0]); }
  void backward(Tensors, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!grad_in[0]) return;
    if (!grad_out[0]) {
      grad_in[0]->fill_zero();
      return;
    }
    copy(*grad_in[0], *grad_out[0]);
  }

 private:
  static void copy(Tensor& dst, const Tensor& src) {
    if (dst.raw() == src.raw()) return;  // planned in place (runtime/memory_plan.h)
    parallel_copy(static_cast<std::byte*>(dst.raw()), static_cast<const std::byte*>(src.raw()),
                  static_cast<int64_t>(src.nbytes()));
  }
};

inline std::unique_ptr<Kernel> make_byte_copy(const Node&, const InputInfos&,
                                              const std::vector<ValueInfo>&) {
  return std::make_unique<ByteCopyKernel>();
}

}  // namespace minnow::ops
