// BatchNorm's output loops with streaming (non-temporal) stores, for CPUs with AVX-512F
// (checked at run time by stream_stores_available()).
//
// Why: a training step of a MobileNet-style network writes several activation-sized tensors per
// BatchNorm (y forward, dx backward) that are far larger than the caches. Ordinary stores first
// read every destination line from memory (read-for-ownership); streaming stores skip that read.
// Measured on the 2-core dev machine, [64,96,28,28] BN+ReLU6 output: 1.29 -> 0.90 ms, and
// 2.59 -> 2.12 ms including the next op reading it back. Only worth it for tensors beyond the
// caches: the caller decides (norm.cpp uses them from 8 MB up).
//
// All loops run over the [N, C, S] view of one channel: n runs of s floats, `stride` apart.
#pragma once

#include <cstdint>

namespace minnow::kernels {

bool stream_stores_available();

// out = clamp(src * a + sh, lo, hi).
void stream_affine_clamp(const float* src, float* out, int64_t n, int64_t stride, int64_t s,
                         float a, float sh, float lo, float hi);
// out = src * a + x * b2 + sh (x may be null: out = src * a + sh).
void stream_affine(const float* src, const float* x, float* out, int64_t n, int64_t stride,
                   int64_t s, float a, float b2, float sh);
// dx = k1 g + k2 x + k3 with g = dy where lo < x * a + sh < hi, else 0.
void stream_dx_masked(const float* dy, const float* x, float* dx, int64_t n, int64_t stride,
                      int64_t s, float a, float sh, float lo, float hi, float k1, float k2,
                      float k3);

}  // namespace minnow::kernels
