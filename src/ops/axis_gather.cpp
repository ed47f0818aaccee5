#include "ops/axis_gather.h"

#include <cstring>

#include "ops/dtype_dispatch.h"
#include "ops/elementwise.h"
#include "ops/op_util.h"

namespace minnow::ops {

std::vector<int64_t> row_major_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> st(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;) st[d - 1] = st[d] * shape[d];
  return st;
}

namespace {

class AxisGatherKernel final : public Kernel {
 public:
  AxisGatherKernel(AxisMaps maps, DType dtype, double fill) : m_(std::move(maps)), dtype_(dtype) {
    if (m_.offsets.size() != m_.view.size()) throw Error("axis gather: maps do not match view");
    // At least two axes: the inner loop covers the last two, so that views whose last axis is
    // short (DepthToSpace's blocksize) still amortize the outer index arithmetic.
    while (m_.view.size() < 2) {
      m_.view.insert(m_.view.begin(), 1);
      m_.offsets.insert(m_.offsets.begin(), std::vector<int64_t>{0});
    }
    for (size_t d = 0; d < m_.view.size(); ++d) {
      if (static_cast<int64_t>(m_.offsets[d].size()) != m_.view[d])
        throw Error("axis gather: map of axis " + std::to_string(d) + " has the wrong length");
    }
    inner_ = m_.view.back();
    mid_ = m_.view[m_.view.size() - 2];
    for (size_t d = 0; d + 2 < m_.view.size(); ++d) rows_ *= m_.view[d];
    const std::vector<int64_t>& last = m_.offsets.back();
    contiguous_ = !last.empty() && last[0] >= 0;
    for (int64_t j = 1; contiguous_ && j < inner_; ++j) contiguous_ = last[j] == last[0] + j;
    std::memset(fill_, 0, sizeof(fill_));
    dispatch_any(dtype, [&]<class T>() {
      const T v = convert_value<T>(fill);
      std::memcpy(fill_, &v, sizeof(T));
    });
  }

  void forward(Tensors in, Tensors out, RunContext&) override {
    auto* y = static_cast<std::byte*>(out[0]->raw());
    const auto* x = static_cast<const std::byte*>(in[0]->raw());
    switch (dtype_size(dtype_)) {
      case 1:
        return run_forward<1>(y, x);
      case 4:
        return run_forward<4>(y, x);
      default:
        return run_forward<8>(y, x);  // dtypes are 1, 4 or 8 bytes wide
    }
  }

  void backward(Tensors, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!grad_in[0]) return;
    grad_in[0]->fill_zero();
    if (!grad_out[0]) return;
    dispatch_float(dtype_,
                   [&]<class T>() { run_backward(grad_in[0]->data<T>(), grad_out[0]->data<T>()); });
  }

 private:
  // Input offset of output row `row` (all axes but the last two), or kOutside.
  int64_t row_base(int64_t row) const {
    int64_t base = 0;
    for (size_t d = m_.view.size() - 2; d-- > 0;) {
      const int64_t o = m_.offsets[d][row % m_.view[d]];
      row /= m_.view[d];
      if (o < 0) return kOutside;
      base += o;
    }
    return base;
  }

  // Work items are (row, middle index) pairs, so that rank-2 views spread over threads too. A
  // thread's items are consecutive, so it recomputes the row's base only when the row changes.
  template <size_t N>
  void run_forward(std::byte* __restrict y, const std::byte* __restrict x) const {
    const int64_t* mid_off = m_.offsets[m_.view.size() - 2].data();
    const int64_t* last = m_.offsets.back().data();
    const int64_t inner = inner_, mid = mid_, items = rows_ * mid_, n = static_cast<int64_t>(N);
#pragma omp parallel if (items * inner_ >= kParallelMin)
    {
      int64_t row_seen = -1, base = 0;
#pragma omp for schedule(static)
      for (int64_t it = 0; it < items; ++it) {
        const int64_t row = it / mid, i = it - row * mid;
        if (row != row_seen) {
          base = row_base(row);
          row_seen = row;
        }
        std::byte* yr = y + it * inner * n;
        const int64_t b = base < 0 || mid_off[i] < 0 ? kOutside : base + mid_off[i];
        if (b >= 0 && contiguous_) {
          std::memcpy(yr, x + (b + last[0]) * n, static_cast<size_t>(inner) * N);
          continue;
        }
        for (int64_t j = 0; j < inner; ++j) {
          const bool out = b < 0 || last[j] < 0;
          std::memcpy(yr + j * n, out ? fill_ : x + (b + last[j]) * n, N);
        }
      }
    }
  }

  template <class T>
  void run_backward(T* __restrict dx, const T* __restrict dy) const {
    const int64_t* mid_off = m_.offsets[m_.view.size() - 2].data();
    const int64_t* last = m_.offsets.back().data();
    const int64_t inner = inner_, mid = mid_, items = rows_ * mid_;
    // Accumulation into shared input elements is only race-free when the map is injective.
#pragma omp parallel if (m_.injective && items * inner_ >= kParallelMin)
    {
      int64_t row_seen = -1, base = 0;
#pragma omp for schedule(static)
      for (int64_t it = 0; it < items; ++it) {
        const int64_t row = it / mid, i = it - row * mid;
        if (row != row_seen) {
          base = row_base(row);
          row_seen = row;
        }
        if (base < 0 || mid_off[i] < 0) continue;
        const int64_t b = base + mid_off[i];
        const T* dyr = dy + it * inner;
        for (int64_t j = 0; j < inner; ++j) {
          if (last[j] >= 0) dx[b + last[j]] += dyr[j];
        }
      }
    }
  }

  AxisMaps m_;
  DType dtype_;
  int64_t rows_ = 1, mid_ = 1, inner_ = 1;
  bool contiguous_ = false;
  alignas(8) std::byte fill_[8];
};

}  // namespace

std::unique_ptr<Kernel> make_axis_gather_kernel(AxisMaps maps, DType dtype, double fill) {
  return std::make_unique<AxisGatherKernel>(std::move(maps), dtype, fill);
}

}  // namespace minnow::ops
