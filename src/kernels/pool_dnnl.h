// Max / average pooling through oneDNN's pooling primitives on plain NCHW memory (built once).
// Kept to measure against the hand loops of pool_fast.h (bench/bench_kernels.cpp).
#pragma once

#include <dnnl.hpp>

#include "kernels/dnnl_glue.h"
#include "kernels/pool_geometry.h"

namespace minnow::kernels {

class PoolDnnl {
 public:
  // Throws minnow::Error when oneDNN's semantics differ from minnow's for this geometry
  // (count_include_pad with a ceil-mode window reaching past the padding).
  PoolDnnl(const PoolGeometry& g, bool max);
  // Training keeps the max-pool workspace (argmax) for backward.
  void forward(const float* x, float* y);
  void backward(const float* dy, float* dx);

 private:
  dnnl::pooling_forward fwd_;
  dnnl::pooling_backward bwd_;
  dnnl::memory src_, dst_, diff_src_, diff_dst_, workspace_;
  dnnl_glue::Call fwd_call_, bwd_call_;  // arguments bound once
  bool max_;
};

}  // namespace minnow::kernels
