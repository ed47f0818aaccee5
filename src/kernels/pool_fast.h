// Hand-written f32 pooling kernels (NCHW), parallel over planes with OpenMP. Measured faster
// than oneDNN's pooling on plain NCHW tensors for the shapes that matter here (see
// bench/bench_kernels.cpp); the 2x2 stride-2 tiling case has its own loops.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/pool_geometry.h"

namespace minnow::kernels {

class MaxPoolFast {
 public:
  explicit MaxPoolFast(const PoolGeometry& g);
  // In training the argmax of every window is kept for backward().
  void forward(const float* x, float* y, bool training);
  // Overwrites dx. Uses the argmax kept by a training forward on the same x, else recomputes it.
  void backward(const float* x, const float* dy, float* dx);

 private:
  void compute_argmax(const float* x);

  PoolGeometry g_;
  std::vector<int32_t> argmax_;  // per output element: index within its input plane
  const float* argmax_of_ = nullptr;
};

class AvgPoolFast {
 public:
  explicit AvgPoolFast(const PoolGeometry& g);
  void forward(const float* x, float* y);
  void backward(const float* dy, float* dx);

 private:
  PoolGeometry g_;
  std::vector<float> inv_divisor_;  // per output position (oy, ox)
};

// Mean over each plane: x [planes, hw] -> y [planes]; backward spreads dy / hw.
void global_avg_pool_forward(const float* x, float* y, int64_t planes, int64_t hw);
void global_avg_pool_backward(const float* dy, float* dx, int64_t planes, int64_t hw);
// The same on channels-last data: x [n, hw, c] -> y [n, c], each channel summed in pixel order and
// divided by hw, as the generic loop does.
void global_avg_pool_nhwc_forward(const float* x, float* y, int64_t n, int64_t hw, int64_t c);

}  // namespace minnow::kernels
