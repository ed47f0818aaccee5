// Kernel: one op compiled for one node and concrete input shapes.
//
// A session creates a kernel per node once per batch size and calls it every step, so a kernel
// builds its expensive state (oneDNN primitives, scratch buffers) in its constructor. Kernels
// are stateful between forward() and backward() of the same step: they may keep what backward
// needs (pooling argmax, batch-norm statistics, dropout masks).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "minnow/tensor.h"

namespace minnow {

class Rng;

struct RunContext {
  bool training = false;  // batch-norm batch statistics, dropout active
  Rng* rng = nullptr;     // for dropout; set by the session when training
};

using Tensors = std::span<Tensor* const>;

class Kernel {
 public:
  virtual ~Kernel() = default;
  // `out` tensors are preallocated with the inferred shapes. `in` tensors are mutable only so
  // that state inputs (batch-norm running statistics) can be updated in training mode.
  virtual void forward(Tensors in, Tensors out, RunContext& ctx) = 0;
  // grad_out[i] is the gradient of the loss w.r.t. out[i], or nullptr when it is zero.
  // grad_in[i] is where the gradient w.r.t. in[i] is written (overwritten, not accumulated),
  // or nullptr when it is not needed. `in` and `out` hold what forward() saw and produced.
  virtual void backward(Tensors in, Tensors out, Tensors grad_out, Tensors grad_in,
                        RunContext& ctx);
  // A promise from the caller (the inference session, for graph initializers): input i, where
  // constant[i] is set, keeps its storage and its values for this kernel's lifetime. Kernels
  // that prepare such inputs once (packed weights) may then skip checking them on every call.
  virtual void set_constant_inputs(const std::vector<bool>& constant) { (void)constant; }
};

}  // namespace minnow
