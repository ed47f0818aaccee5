// Depthwise 3x3 convolution (stride 1 or 2, any padding) with AVX-512 row kernels, for CPUs
// that have AVX-512F (checked at run time; conv_algo.cpp falls back to ConvDepthwise).
//
// Why: MobileNet-style training spends a third of its convolution time in depthwise layers,
// and their planes are small (7x7 to 28x28). The phased-buffer kernel (conv_depthwise.h) copies
// every plane into a padded scratch layout and back, and for stride 2 that copy is a scalar
// deinterleave; oneDNN's jit_dw needs blocked layouts and pays reorders. Here every output row
// is computed straight from the NCHW planes: one 16-lane vector covers 16 output columns, the
// three taps of an input row are masked unaligned loads (stride 1) or one even/odd permute of
// two loads (stride 2), and borders are handled by the load masks, so nothing is copied.
//
// Backward-data gathers per input row (the transposed stencil; for stride 2 the dy row is
// spread to the even or odd input columns by a permute), and backward-weights keeps ten vector
// accumulators per channel. The threads share the channels, so none shares a weight gradient.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/conv_algo.h"
#include "kernels/conv_buffer.h"
#include "kernels/conv_geometry.h"

namespace minnow::kernels {

// Per 16-column block of a row, precomputed once per geometry: which lanes each load may touch.
// Rows differ only in their start address, so the border masks are the same for every row.
struct Dw3x3OutBlock {  // output columns ox0 .. ox0 + 15 (forward, weight gradient)
  int ox0;
  int load_off[3];  // stride 1: offsets of the three taps; stride 2: of the three loads
  uint16_t load_mask[3];
  uint16_t out_mask;  // columns < ow
};
struct Dw3x3InBlock {  // input columns ix0 .. ix0 + 15 (data gradient)
  int ix0;
  int dy_off[3];  // per kx: the dy column read into lane 0
  uint16_t dy_mask[3];
  bool lane0_even[3];  // stride 2: whether lane 0 receives dy (else lane 1 does)
  uint16_t out_mask;   // columns < w
};

class ConvDepthwise3x3 : public ConvAlgo {
 public:
  // Whether this CPU and geometry can use it: depthwise, 3x3, dilation 1, stride 1 or 2.
  static bool supports(const ConvGeometry& g);
  // Requires supports(g); throws minnow::Error otherwise.
  explicit ConvDepthwise3x3(const ConvGeometry& g);

  void forward(const float* x, const float* w, const float* b, float* y, bool training) override;
  void backward_data(const float* dy, const float* w, float* dx) override;
  void backward_weights(const float* x, const float* dy, float* dw, float* db) override;
  void backward(const float* x, const float* dy, const float* w, float* dx, float* dw,
                float* db) override;
  std::string name() const override { return "depthwise3x3-avx512"; }

  // One plane (one sample of one channel) at a time, for callers that make each input plane
  // themselves (ops/bn_depthwise_conv.cpp normalizes it first): y = conv(x) + bias with the
  // channel's 9 weights; backward_plane writes the plane's dx (when dx is set) and adds its
  // weight and bias gradient terms to `sums` (10 x 16 floats, 64-byte aligned, zeroed by the
  // caller), which reduce_sums turns into dw[9] and db.
  void forward_plane(const float* x, const float* w9, float bias, float* y) const;
  void backward_plane(const float* x, const float* dy, const float* w9, float* dx,
                      float* sums) const;
  static void reduce_sums(const float* sums, float* dw9, float* db);

 private:
  ConvGeometry g_;
  std::vector<Dw3x3OutBlock> out_blocks_;
  std::vector<Dw3x3InBlock> in_blocks_;
  FloatBuffer acc_;  // backward's per-channel vector gradient sums
};

}  // namespace minnow::kernels
