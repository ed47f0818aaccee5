// Convolution through oneDNN's convolution primitives (forward, backward-data, backward-weights),
// all created once in the constructor for one fixed geometry.
//
// Layout::kPlain hands oneDNN the NCHW/OIHW tensors as they are. Layout::kAny lets oneDNN pick
// its preferred (blocked) layouts and keeps the reorders and the reordered buffers here, so the
// caller still sees plain tensors.
#pragma once

#include <dnnl.hpp>

#include "kernels/conv_algo.h"
#include "kernels/conv_geometry.h"
#include "kernels/dnnl_glue.h"

namespace minnow::kernels {

class ConvDnnl : public ConvAlgo {
 public:
  enum class Layout { kPlain, kAny };
  ConvDnnl(const ConvGeometry& g, Layout layout);

  void forward(const float* x, const float* w, const float* b, float* y, bool training) override;
  void backward_data(const float* dy, const float* w, float* dx) override;
  // Reuses forward's reordered copy of x when the layouts agree (x must be unchanged).
  void backward_weights(const float* x, const float* dy, float* dw, float* db) override;
  std::string name() const override;

  // Implementation names oneDNN chose, e.g. "jit:avx512_common" (for the benchmark's labels).
  const char* forward_impl() const;
  const char* backward_data_impl() const;
  const char* backward_weights_impl() const;

 private:
  // A user (plain) memory and, when oneDNN wants another layout, the internal copy plus the
  // reorder between them.
  struct Port {
    dnnl::memory user, inner;
    dnnl_glue::Call reorder;  // empty when the layouts agree
    void init(const dnnl::memory::desc& plain, const dnnl::memory::desc& want, bool to_inner);
    // Input: set the user pointer, reorder into the internal layout if needed.
    dnnl::memory& in(const void* p);
    // Output: set the user pointer; the primitive writes `inner`, then call out_done().
    dnnl::memory& out(void* p);
    void out_done();
  };

  ConvGeometry g_;
  dnnl::convolution_forward::primitive_desc fwd_pd_;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd_;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights_pd_;
  dnnl::convolution_forward fwd_;
  dnnl::convolution_backward_data bwd_data_;
  dnnl::convolution_backward_weights bwd_weights_;
  Port fwd_src_, fwd_wei_, fwd_dst_, bias_;
  Port bd_dst_, bd_wei_, bd_src_;
  Port bw_src_, bw_dst_, bw_wei_, bw_bias_;
  bool reuse_fwd_src_ = false;         // backward-weights wants x in forward's internal layout
  const float* fwd_src_of_ = nullptr;  // the x whose reordered copy fwd_src_.inner holds
  dnnl::memory scratch_;
  dnnl::memory unused_bias_grad_;  // target of the bias gradient when the caller wants none
  // Each pass with its arguments bound once (ports repoint their user memories per call).
  dnnl_glue::Call fwd_call_, bwd_data_call_, bwd_weights_call_, bwd_weights_no_db_call_;
  Layout layout_;
};

}  // namespace minnow::kernels
