// The f32 convolution strategies behind Conv2d's fast kernel, and the choice between them.
#pragma once

#include <memory>
#include <string>

#include "kernels/conv_geometry.h"

namespace minnow::kernels {

// One convolution strategy built for one fixed geometry (all setup in the constructor).
// Tensors are plain NCHW / OIHW float arrays.
class ConvAlgo {
 public:
  virtual ~ConvAlgo() = default;
  // b may be null (no bias). `training`: a backward pass on the same x follows, so state that
  // saves work there may be kept.
  virtual void forward(const float* x, const float* w, const float* b, float* y, bool training) = 0;
  // Overwrites dx.
  virtual void backward_data(const float* dy, const float* w, float* dx) = 0;
  // Overwrites dw and, when non-null, db. Called after forward() on the same x.
  virtual void backward_weights(const float* x, const float* dy, float* dw, float* db) = 0;
  // Both backward passes (dx may be null: not wanted). Strategies that can do both in one sweep
  // over dy override this; the default calls backward_data, then backward_weights.
  virtual void backward(const float* x, const float* dy, const float* w, float* dx, float* dw,
                        float* db) {
    if (dx) backward_data(dy, w, dx);
    backward_weights(x, dy, dw, db);
  }
  virtual std::string name() const = 0;
};

// kDepthwise applies only to depthwise geometries (group == channels == outputs);
// kDepthwise3x3 only where ConvDepthwise3x3::supports() (3x3, stride 1 or 2, AVX-512F CPU);
// kDepthwisePlane only where ConvDepthwisePlane::supports() (3x3 "same", small planes, AVX-512F).
enum class ConvStrategy { kGemm, kDnnlPlain, kDnnlAny, kDepthwise, kDepthwise3x3, kDepthwisePlane };
std::unique_ptr<ConvAlgo> make_conv_strategy(const ConvGeometry& g, ConvStrategy s);
// One strategy per pass (each built once, shared between passes).
std::unique_ptr<ConvAlgo> make_conv_plan(const ConvGeometry& g, ConvStrategy fwd,
                                         ConvStrategy bwd_data, ConvStrategy bwd_weights);

// The fastest measured strategy per pass for this geometry (the numbers behind the choice are
// in bench/bench_kernels.cpp's header comment).
std::unique_ptr<ConvAlgo> choose_conv_algo(const ConvGeometry& g);

}  // namespace minnow::kernels
