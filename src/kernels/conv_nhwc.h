// Inference-only f32 convolution on channels-last (NHWC) activations through oneDNN.
//
// oneDNN's fast f32 convolutions on AVX-512 (brgconv, brgemm depthwise) work on NHWC data. On
// NCHW data minnow either reorders every layer's input and output (two extra passes over
// memory-bound 1x1 and depthwise layers of MobileNet-style networks) or uses its own NCHW
// kernels; with activations kept NHWC between layers (passes/channels_last.h) a network runs as
// one oneDNN convolution per layer and nothing else. The fused ReLU/ReLU6 is a post-op.
//
// Weights are reordered into oneDNN's layout at the first forward() and again only when a call
// passes another weight pointer: this kernel is made only for inference sessions, whose weights
// are constant initializers. Small layers run on whichever of oneDNN's implementations measured
// fastest on this CPU when the kernel was built (kernels/dnnl_impl_choice.h).
#pragma once

#include <dnnl.hpp>
#include <string>
#include <vector>

#include "kernels/conv_geometry.h"
#include "kernels/dnnl_glue.h"

namespace minnow::kernels {

class ConvNhwc {
 public:
  // `sum`: forward() adds a tensor of y's shape before the activation (a residual connection,
  // passes/fuse_residual_add.h). Then a clamp of the output to [lo, hi] when `clamp` (ReLU:
  // [0, inf), ReLU6: [0, 6]). Both are oneDNN post-ops, applied while the output is in registers.
  // `impl`: which of oneDNN's implementations runs it; "" (the default) picks the fastest by
  // timing for small layers (kernels/dnnl_impl_choice.h) and oneDNN's own choice for the
  // others, a name from candidates() forces that one (for tests).
  ConvNhwc(const ConvGeometry& g, bool sum, bool clamp, float lo, float hi,
           const std::string& impl = "");
  static std::vector<std::string> candidates(const ConvGeometry& g, bool sum, bool clamp, float lo,
                                             float hi);
  // x [n,h,w,c], w [o,c/group,kh,kw] (plain), b [o] or null, s (the sum) and y [n,oh,ow,o].
  void forward(const float* x, const float* w, const float* b, const float* s, float* y);
  std::string impl() const;

 private:
  ConvGeometry g_;
  dnnl::convolution_forward::primitive_desc pd_;
  dnnl::memory src_, dst_, bias_, sum_, wei_user_, wei_inner_;
  dnnl_glue::Call conv_, wei_reorder_;
  const float* packed_from_ = nullptr;
};

}  // namespace minnow::kernels
