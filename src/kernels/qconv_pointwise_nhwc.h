// int8 1x1 convolution (any stride, no padding) on channels-last (NHWC) u8 data, optionally with
// a fused residual, on CPUs with AVX-512 VNNI (checked at run time).
//
// Why: in a small network at batch 1 the pointwise layers are tiny matrix products (MobileNetV2
// on 28x28: 49 to 784 pixels by 16 to 192 channels) and oneDNN's per-call work costs about as
// much as the arithmetic; its brgemm kernels also do little with a reduction of 16.
//
// How: a pixel's input channels are contiguous, so four of them are one 32-bit load broadcast
// to all lanes, and vpdpbusd multiplies them with four input channels' weights for 16 output
// channels. Tiles of 4 pixels by 64 output channels (8 by 32, 16 by 16) keep 16 accumulators
// in registers. The input's zero point
// times each channel's weight sum is folded into the bias. The int32 accumulator is the
// integer reference's, and the requantization (with the residual, if fused) the reference's
// float steps, so outputs agree bit for bit.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/conv_buffer.h"
#include "kernels/conv_geometry.h"
#include "kernels/qconv_own_kernel.h"
#include "kernels/qlinear_reference.h"
#include "minnow/dtype.h"

namespace minnow::kernels {

class QConvPointwiseNhwc : public QConvOwnKernel {
 public:
  // Whether this CPU and geometry can use it: 1x1, no padding, no groups, input channels a
  // multiple of 4, input u8. (Strided: ResNet's shortcut convolutions.)
  static bool supports(const ConvGeometry& g, DType x);
  // Requires supports(g, x); throws minnow::Error otherwise. y: u8, i8 or f32.
  QConvPointwiseNhwc(const ConvGeometry& g, DType x, DType y);

  // x [n,h,w,c], w [o,c,1,1], y [n,oh,ow,o]; p.sum (if set) y's shape. p.w_zp must be all zero.
  void forward(const QLinearParams& p, const void* x, const int8_t* w, void* y) override;

 private:
  void prepare(const QLinearParams& p, const int8_t* w);
  void run_pixels(const QLinearParams& p, const uint8_t* x, void* y, int64_t first,
                  int64_t last) const;

  ConvGeometry g_;
  DType y_dtype_;
  int64_t opad_;              // output channels rounded up to 16
  AlignedBuffer<int8_t> wq_;  // [c / 4][opad_][4] weights in vpdpbusd's layout
  // Output channels o % 64 in 17..24: the last up to 8 channels' weights twice, [c / 4][16][4]
  // (the .cpp's tail_pair_tile).
  bool tail_pair_ = false;
  AlignedBuffer<int8_t> wtail_;
  bool packed_ok_ = false;  // the 64-channel packed stores are exact (see the .cpp)
};

}  // namespace minnow::kernels
