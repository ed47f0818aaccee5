// int8 convolution through oneDNN (u8/s8 source, s8 weights, s32 bias, u8/s8/f32 destination).
//
// oneDNN 2.6 bakes output scales into the primitive (run-time output scales are "unimplemented"
// for its int8 convolutions), and the scales are graph tensors whose values a kernel first sees
// in forward(). So the primitive is created at the first forward() and re-created only when the
// scales or the zero-point pattern change; the weights are reordered into oneDNN's layout
// (with its zero-point compensation) once per primitive and again only if their bytes change.
// Zero points are run-time arguments. After the first call nothing is allocated per call.
#pragma once

#include <dnnl.hpp>
#include <string>
#include <vector>

#include "kernels/conv_geometry.h"
#include "kernels/dnnl_glue.h"
#include "kernels/qlinear_reference.h"
#include "kernels/weights_watch.h"

namespace minnow::kernels {

class QConvDnnl {
 public:
  // x and y dtypes are fixed per kernel (y: u8, i8 or f32). `channels_last`: x and y are NHWC
  // in memory, which is oneDNN's own layout for int8 convolutions, so nothing is reordered.
  QConvDnnl(const ConvGeometry& g, DType x, DType y, bool channels_last = false);

  // x [n,c,h,w] NCHW (or [n,h,w,c]), w [o,cg,kh,kw], y [n,o,oh,ow] (or [n,oh,ow,o]).
  // p.w_zp must be all zero; p.sum is ignored (the caller adds a fused residual).
  void forward(const QLinearParams& p, const void* x, const int8_t* w, void* y);
  // The caller promises the weights' storage and values never change (graph initializers in
  // an inference session): then they are packed once per address instead of being compared
  // with the packed copy on every call.
  void set_weights_constant(bool constant) { weights_.set_constant(constant); }
  // The oneDNN implementation in use ("" before the first forward), for benchmarks and tests.
  std::string impl() const;
  // Whether forward() reorders x or y between the caller's layout and oneDNN's (false before
  // the first forward).
  bool reorders() const {
    return static_cast<bool>(src_reorder_) || static_cast<bool>(dst_reorder_);
  }

 private:
  struct Key {
    std::vector<float> scales;  // per output channel
    float lo = 0, hi = 0;       // clamp in output units (infinite: none)
    bool src_zp = false, dst_zp = false;
    bool operator==(const Key&) const = default;
  };
  void build(const Key& k);
  void pack_weights();

  ConvGeometry g_;
  DType x_dtype_, y_dtype_;
  bool channels_last_;
  Key key_, want_;  // built for / wanted by this call (want_ reuses its storage)
  bool built_ = false;
  WeightsWatch weights_;  // its copy is the plain weights wei_inner_ is made from
  bool packed_ = false;   // wei_inner_ holds weights_.copy() for the current primitive

  dnnl::convolution_forward::primitive_desc pd_;
  dnnl::memory src_user_, src_inner_, dst_user_, dst_inner_, wei_user_, wei_inner_, bias_;
  dnnl::memory zp_src_, zp_dst_, scratch_;
  dnnl_glue::Call conv_, src_reorder_, dst_reorder_, wei_reorder_;
};

}  // namespace minnow::kernels
