// Depthwise 3x3 convolution, stride 1, "same" padding (1 on every side), for small planes
// (up to 256 pixels, e.g. MobileNetV2's 7x7 and 14x14 stages) on CPUs with AVX-512F (checked at
// run time).
//
// Why: a 7-wide row fills 7 of a vector's 16 lanes, so row kernels (conv_depthwise3x3.h) waste
// more than half of every load and FMA, and oneDNN's jit_dw needs blocked layouts and pays a
// reorder on every pass. Here a plane is treated as one flat array: with "same" padding, tap
// (ky, kx) of output pixel p reads input pixel p + (ky - 1) w + (kx - 1), a constant shift, so
// a 16-lane vector covers 16 consecutive pixels across rows and every tap is one masked
// unaligned load (the mask drops pixels whose tap falls outside the plane or wraps to the
// neighbouring row). A 7x7 plane is 4 vectors instead of 7 rows.
//
// Backward-data is the same loop on dy with the kernel rotated by 180 degrees (the transposed
// convolution of a stride-1 "same" convolution is one), and backward-weights keeps ten vector
// accumulators per channel (nine taps and the bias). The threads share the channels, so none
// shares a weight gradient; each sweeps its channels sample by sample (adjacent planes). Four
// planes at a time share each tap's mask and address, and the loops prefetch planes ahead:
// masked loads from memory that is not cached yet are slow.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/conv_algo.h"
#include "kernels/conv_buffer.h"
#include "kernels/conv_geometry.h"

namespace minnow::kernels {

class ConvDepthwisePlane : public ConvAlgo {
 public:
  static constexpr int64_t kMaxPixels = 256;
  // Whether this CPU and geometry can use it: depthwise 3x3, stride 1, dilation 1, pads all 1,
  // planes of at most kMaxPixels pixels.
  static bool supports(const ConvGeometry& g);
  // Requires supports(g); throws minnow::Error otherwise.
  explicit ConvDepthwisePlane(const ConvGeometry& g);

  void forward(const float* x, const float* w, const float* b, float* y, bool training) override;
  void backward_data(const float* dy, const float* w, float* dx) override;
  void backward_weights(const float* x, const float* dy, float* dw, float* db) override;
  void backward(const float* x, const float* dy, const float* w, float* dx, float* dw,
                float* db) override;
  std::string name() const override { return "depthwise-plane-avx512"; }

  // `count` planes of one channel (they share its 9 weights), for callers that make the input
  // planes themselves (ops/bn_depthwise_conv.cpp): plane i of x at x + i * xs, and so on.
  // forward_channel: y = conv(x) + bias. backward_channel: dx (when set) and the weight and
  // bias gradient terms, added to `sums` (10 x 16 floats, 64-byte aligned, the layout
  // ConvDepthwise3x3::reduce_sums reads).
  void forward_channel(const float* x, int64_t xs, const float* w9, float bias, float* y,
                       int64_t ys, int64_t count) const;
  void backward_channel(const float* x, int64_t xs, const float* dy, int64_t ds, const float* w9,
                        float* dx, int64_t dxs, int64_t count, float* sums) const;

 private:
  ConvGeometry g_;
  int vectors_ = 0;               // 16-pixel vectors per plane
  std::vector<int> shift_;        // [9]: flat offset of tap (ky, kx)
  std::vector<uint16_t> masks_;   // [vectors_ * 9]: lanes whose tap lies inside the plane
  std::vector<uint16_t> pixels_;  // [vectors_]: lanes that are pixels of the plane
  FloatBuffer acc_;               // backward's per-channel vector sums
  FloatBuffer rotated_;           // the kernels turned by 180 degrees, for backward-data
};

}  // namespace minnow::kernels
