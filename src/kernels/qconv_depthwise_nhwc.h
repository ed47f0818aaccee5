// int8 depthwise convolution on channels-last (NHWC) data, 3x3 or 5x5 kernels, any stride and
// padding (dilation 1), on CPUs with AVX-512 F/BW/VL/VBMI/VNNI (checked at run time).
//
// Why: oneDNN 2.6's int8 depthwise kernels (brdgmm_dw, jit_int8) were the slowest layers of an
// int8 MobileNetV2, slower than its f32 depthwise layers (14x14x144 at batch 1: 5.7 us int8,
// 2.9 us f32, one thread), which left int8 no faster than f32 for the whole network.
//
// How: VNNI's vpdpbusd adds four u8 x s8 products into each int32 lane. Here a lane is a
// channel and its four bytes are four horizontal taps of one kernel row, so a 3x3 output is
// three instructions per 16 channels (nine FMAs in f32). Those tap quads are built once per
// input row into a small per-thread ring of kh rows, which consecutive output rows share: for
// 8-bit outputs, 64 channels at a time with byte and word interleaves within 128-bit lanes
// (which leaves the channels in a fixed shuffled order that the weights share and packing the
// outputs undoes), else and for the channels past the last 64, one byte permute per 16
// channels and output column. u8 inputs of whole 16-channel blocks are read where they are;
// others through a padded copy of the row. Padding is filled with the zero point, so
// every output uses every tap and the zero point's share, x_zp * sum(w), is one per-channel
// constant folded into the bias; i8 inputs are offset by 128 to u8 the same way. The int32
// accumulator is the integer reference's exactly, and the requantization performs the
// reference's float steps (kernels/qlinear_reference.h), so outputs agree bit for bit.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/conv_buffer.h"
#include "kernels/conv_geometry.h"
#include "kernels/qconv_own_kernel.h"
#include "kernels/qlinear_reference.h"
#include "minnow/dtype.h"

namespace minnow::kernels {

class QConvDepthwiseNhwc : public QConvOwnKernel {
 public:
  // Whether this CPU and geometry can use it: depthwise (one output per input channel),
  // kernel 3x3 or 5x5, dilation 1, padding smaller than the kernel, input u8 or i8.
  static bool supports(const ConvGeometry& g, DType x);
  // Requires supports(g, x); throws minnow::Error otherwise. y: u8, i8 or f32.
  QConvDepthwiseNhwc(const ConvGeometry& g, DType x, DType y);

  // x [n,h,w,c], w [c,1,kh,kw], y [n,oh,ow,c]. p.w_zp must be all zero (weights symmetric).
  void forward(const QLinearParams& p, const void* x, const int8_t* w, void* y) override;

  // How the tap quads of one input row are laid out: per_row quads per column (taps 4j ..
  // 4j + 3 of row_taps), `columns` columns, `pitch` input positions apart. Paired (3x3, stride
  // 1): one 4-tap quad per two output columns, which both read it (see the .cpp).
  struct QuadLayout {
    bool paired = false;
    int64_t row_taps = 0, per_row = 0, columns = 0, pitch = 0;
  };

 private:
  // Per-thread scratch: one input row padded with the zero point (i8 inputs, or channels not a
  // multiple of 16), the zero point for one pixel, and the ring of quad rows.
  struct Scratch {
    AlignedBuffer<uint8_t> padded, fill, ring;
  };
  void prepare(const QLinearParams& p, const int8_t* w);
  void run_rows(const QLinearParams& p, const void* x, void* y, int64_t first, int64_t last,
                Scratch& s) const;

  ConvGeometry g_;
  DType x_dtype_, y_dtype_;
  int64_t cpad_;  // channels rounded up to 16
  QuadLayout quads_;
  int64_t ring_row_;          // bytes of one row's quads: per_row * columns * cpad_ * 4
  AlignedBuffer<int8_t> wq_;  // [kh][weight quads per row][cpad_ slots][4]
  // Channels computed 64 at a time in slot order (the .cpp's slot_of; weights and mult_ /
  // offset_ too): a multiple of 64, 0 for f32 outputs.
  int64_t grouped_ = 0;
  bool packed_ok_ = false;  // PackedRequant is exact for the current constants
  int64_t wq_size_ = 0;
  std::vector<Scratch> scratch_;
};

}  // namespace minnow::kernels
