// Depthwise convolution (group == C == O) by hand: one plane of one channel at a time.
//
// Why not oneDNN: its depthwise kernels want blocked layouts (nChw8c/16c), so with minnow's
// plain NCHW tensors every call pays reorders of x, y and dy, and backward-weights takes the
// slow generic path; for MobileNetV2 on 28x28 inputs that cost more than the arithmetic
// (see bench/bench_kernels.cpp). A depthwise plane is tiny (at most a few KB), so the direct
// loops below run from L1.
//
// Each input plane is copied into a zero-padded, stride-phased scratch layout: padded row r and
// column c live in sub-plane (r % sh, c % sw) at row r / sh, column c / sw (row pitch Lp). In
// that layout every tap (ky, kx) reads the input of output (oy, ox) at a fixed offset plus
// oy * Lp + ox, so the whole plane is one contiguous, vectorizable loop per tap computed on a
// "wide" output grid of pitch Lp (columns ox >= OW are computed and thrown away).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/conv_algo.h"
#include "kernels/conv_buffer.h"
#include "kernels/conv_geometry.h"

namespace minnow::kernels {

// The phased layout of one plane for one geometry (see above).
struct DepthwiseLayout {
  int64_t h = 0, w = 0, oh = 0, ow = 0;
  int64_t sh = 1, sw = 1, pt = 0, pl = 0;
  int64_t hq = 0, lp = 0;           // rows and row pitch of one sub-plane
  int64_t size = 0;                 // floats of the phased buffer, slack included
  int64_t wide = 0;                 // (oh - 1) * lp + ow: length of the per-tap loops
  std::vector<int64_t> tap_offset;  // per tap (ky * kw + kx): offset into the phased buffer

  explicit DepthwiseLayout(const ConvGeometry& g);
  int64_t taps() const { return static_cast<int64_t>(tap_offset.size()); }
};

class ConvDepthwise : public ConvAlgo {
 public:
  // Requires g.is_depthwise(); throws minnow::Error otherwise.
  explicit ConvDepthwise(const ConvGeometry& g);

  void forward(const float* x, const float* w, const float* b, float* y, bool training) override;
  void backward_data(const float* dy, const float* w, float* dx) override;
  void backward_weights(const float* x, const float* dy, float* dw, float* db) override;
  // One sweep over the planes: each dy plane is widened once for both gradients; the threads
  // keep per-channel weight-gradient sums that are added up at the end.
  void backward(const float* x, const float* dy, const float* w, float* dx, float* dw,
                float* db) override;
  std::string name() const override { return "depthwise-direct"; }

 private:
  struct Scratch {
    FloatBuffer phased;  // packed x plane; pad cells stay zero (only interior cells are written)
    FloatBuffer wide;    // wide output / widened dy; columns >= ow of widened dy stay zero
    FloatBuffer grad;    // phased dx accumulator (cleared per plane)
  };
  Scratch& scratch(int thread);

  ConvGeometry g_;
  DepthwiseLayout lay_;
  std::vector<Scratch> scratch_;
  std::vector<std::vector<double>> thread_acc_;  // per thread: [c][taps + 1] weight/bias sums
  int64_t min_parallel_planes_ = 2;
};

}  // namespace minnow::kernels
