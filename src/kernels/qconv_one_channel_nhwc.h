// int8 convolution of a one-channel image (a network's stem: Fashion-MNIST, MNIST, any
// grayscale input) to channels-last output, 3x3 or 5x5 kernels, any stride and padding
// (dilation 1), on CPUs with AVX-512 VNNI (checked at run time).
//
// Why: with one input channel oneDNN's int8 convolution has a reduction of only kh*kw and runs
// slower than its f32 one (MobileNetV2's and ResNet-8's stems at batch 1: 2.6 us int8, 2.0 us
// f32).
//
// How: a kernel row's taps read consecutive bytes of one input row, so four of them are one
// 32-bit load broadcast to all lanes, and vpdpbusd multiplies them with four taps of 16 output
// channels' weights. A 3x3 output is three broadcasts and three instructions per 16 channels.
// Input rows are copied once into a per-thread ring of kh rows padded with the zero point, whose
// share (x_zp * sum(w)) is folded into the bias; i8 inputs are offset by 128 to u8. The int32
// accumulator is the integer reference's and the requantization the reference's float steps,
// so outputs agree bit for bit.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/conv_buffer.h"
#include "kernels/conv_geometry.h"
#include "kernels/qconv_own_kernel.h"
#include "kernels/qlinear_reference.h"
#include "minnow/dtype.h"

namespace minnow::kernels {

class QConvOneChannelNhwc : public QConvOwnKernel {
 public:
  // Whether this CPU and geometry can use it: one input channel, no groups, kernel 3x3 or 5x5,
  // dilation 1, padding smaller than the kernel, input u8 or i8.
  static bool supports(const ConvGeometry& g, DType x);
  // Requires supports(g, x); throws minnow::Error otherwise. y: u8, i8 or f32.
  QConvOneChannelNhwc(const ConvGeometry& g, DType x, DType y);

  // x [n,h,w,1], w [o,1,kh,kw], y [n,oh,ow,o]. p.w_zp must be all zero (weights symmetric).
  void forward(const QLinearParams& p, const void* x, const int8_t* w, void* y) override;

 private:
  void prepare(const QLinearParams& p, const int8_t* w);
  void run_rows(const QLinearParams& p, const void* x, void* y, int64_t first, int64_t last,
                uint8_t* ring) const;

  ConvGeometry g_;
  DType x_dtype_, y_dtype_;
  int64_t opad_;              // output channels rounded up to 16
  int64_t quads_;             // weight quads per kernel row: ceil(kw / 4)
  int64_t row_bytes_;         // one padded input row, with slack for the last quad's unused taps
  AlignedBuffer<int8_t> wq_;  // [kh][quads_][opad_][4] weight quads
  bool packed_ok_ = false;    // PackedRequant is exact for the current constants
  std::vector<AlignedBuffer<uint8_t>> rings_;  // per thread: kh padded input rows
};

}  // namespace minnow::kernels
