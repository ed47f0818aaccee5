// Small vectorized loops the convolution and pooling kernels share (compiled per ISA and picked
// at run time, since the build targets baseline x86-64).
#pragma once

#include <cstdint>

namespace minnow::kernels {

// Sum of p[0, n). Several independent partial sums: a single running float sum is bound by the
// add latency (and cannot be vectorized without reassociation), which made the bias gradient
// cost more than the weight-gradient GEMM.
float sum_floats(const float* p, int64_t n);

// d[i] = s[i] + b for i in [0, n); d may equal s.
void add_scalar(float* d, const float* s, float b, int64_t n);

}  // namespace minnow::kernels
