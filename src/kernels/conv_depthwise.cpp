#include "kernels/conv_depthwise.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "minnow/error.h"

namespace minnow::kernels {

// Per-plane loops, compiled per ISA and picked at run time (the build targets baseline x86-64).
// Not in an anonymous namespace: GCC's target_clones resolvers want external linkage.
namespace dw_detail {

// x plane [h, w] -> interior cells of the phased buffer (pad cells are left untouched).
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void pack_plane(
    const DepthwiseLayout& L, const float* __restrict x, float* __restrict phased) {
  const int64_t sub = L.hq * L.lp;
  for (int64_t h = 0; h < L.h; ++h) {
    const int64_t r = h + L.pt;
    const float* row = x + h * L.w;
    float* base = phased + (r % L.sh) * L.sw * sub + (r / L.sh) * L.lp;
    if (L.sw == 1) {
      std::memcpy(base + L.pl, row, sizeof(float) * L.w);
      continue;
    }
    for (int64_t cph = 0; cph < L.sw; ++cph) {
      // First input column whose padded column c = w + pl falls into phase cph.
      const int64_t w0 = ((cph - L.pl) % L.sw + L.sw) % L.sw;
      float* dst = base + cph * sub + (w0 + L.pl) / L.sw;
      const float* src = row + w0;
      const int64_t cnt = (L.w - w0 + L.sw - 1) / L.sw;
      if (L.sw == 2) {
        // A constant stride lets the compiler vectorize the deinterleave.
        for (int64_t j = 0; j < cnt; ++j) dst[j] = src[2 * j];
      } else {
        for (int64_t j = 0; j < cnt; ++j) dst[j] = src[j * L.sw];
      }
    }
  }
}

// Phased buffer -> x-shaped plane (the inverse of pack_plane on interior cells).
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void unpack_plane(
    const DepthwiseLayout& L, const float* __restrict phased, float* __restrict x) {
  const int64_t sub = L.hq * L.lp;
  for (int64_t h = 0; h < L.h; ++h) {
    const int64_t r = h + L.pt;
    float* row = x + h * L.w;
    const float* base = phased + (r % L.sh) * L.sw * sub + (r / L.sh) * L.lp;
    if (L.sw == 1) {
      std::memcpy(row, base + L.pl, sizeof(float) * L.w);
      continue;
    }
    for (int64_t cph = 0; cph < L.sw; ++cph) {
      const int64_t w0 = ((cph - L.pl) % L.sw + L.sw) % L.sw;
      const float* src = base + cph * sub + (w0 + L.pl) / L.sw;
      float* dst = row + w0;
      const int64_t cnt = (L.w - w0 + L.sw - 1) / L.sw;
      if (L.sw == 2) {
        for (int64_t j = 0; j < cnt; ++j) dst[2 * j] = src[j];
      } else {
        for (int64_t j = 0; j < cnt; ++j) dst[j * L.sw] = src[j];
      }
    }
  }
}

// wide[i] = bias + sum_t wt[t] * phased[off[t] + i] for i in [0, L.wide).
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void forward_plane(
    const DepthwiseLayout& L, const float* phased, const float* wt, float bias,
    float* __restrict wide) {
  const int64_t n = L.wide;
  const int64_t* off = L.tap_offset.data();
  if (L.taps() == 9) {
    // The 3x3 case with every tap in a register: one load-FMA chain per output, one store.
    const float *p0 = phased + off[0], *p1 = phased + off[1], *p2 = phased + off[2],
                *p3 = phased + off[3], *p4 = phased + off[4], *p5 = phased + off[5],
                *p6 = phased + off[6], *p7 = phased + off[7], *p8 = phased + off[8];
    const float w0 = wt[0], w1 = wt[1], w2 = wt[2], w3 = wt[3], w4 = wt[4], w5 = wt[5], w6 = wt[6],
                w7 = wt[7], w8 = wt[8];
    for (int64_t i = 0; i < n; ++i) {
      wide[i] = bias + w0 * p0[i] + w1 * p1[i] + w2 * p2[i] + w3 * p3[i] + w4 * p4[i] + w5 * p5[i] +
                w6 * p6[i] + w7 * p7[i] + w8 * p8[i];
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) wide[i] = bias;
  for (int64_t t = 0; t < L.taps(); ++t) {
    const float* p = phased + off[t];
    const float wv = wt[t];
    for (int64_t i = 0; i < n; ++i) wide[i] += wv * p[i];
  }
}

// grad (phased, cleared here) = sum_t wt[t] * dyw scattered to off[t].
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void backward_data_plane(
    const DepthwiseLayout& L, const float* __restrict dyw, const float* wt,
    float* __restrict grad) {
  std::memset(grad, 0, sizeof(float) * L.size);
  const int64_t n = L.wide;
  for (int64_t t = 0; t < L.taps(); ++t) {
    float* g = grad + L.tap_offset[t];
    const float wv = wt[t];
    for (int64_t i = 0; i < n; ++i) g[i] += wv * dyw[i];
  }
}

// acc[t] += sum_i dyw[i] * phased[off[t] + i]; acc[taps] += sum_i dyw[i] (the bias gradient:
// columns >= ow of dyw are zero).
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void weights_plane(
    const DepthwiseLayout& L, const float* __restrict phased, const float* __restrict dyw,
    double* acc) {
  const int64_t n = L.wide;
  const int64_t* off = L.tap_offset.data();
  if (L.taps() == 9) {
    // One pass with ten accumulators instead of ten passes.
    const float *p0 = phased + off[0], *p1 = phased + off[1], *p2 = phased + off[2],
                *p3 = phased + off[3], *p4 = phased + off[4], *p5 = phased + off[5],
                *p6 = phased + off[6], *p7 = phased + off[7], *p8 = phased + off[8];
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0, s8 = 0, sb = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3, s4, s5, s6, s7, s8, sb)
    for (int64_t i = 0; i < n; ++i) {
      const float d = dyw[i];
      s0 += d * p0[i];
      s1 += d * p1[i];
      s2 += d * p2[i];
      s3 += d * p3[i];
      s4 += d * p4[i];
      s5 += d * p5[i];
      s6 += d * p6[i];
      s7 += d * p7[i];
      s8 += d * p8[i];
      sb += d;
    }
    acc[0] += s0;
    acc[1] += s1;
    acc[2] += s2;
    acc[3] += s3;
    acc[4] += s4;
    acc[5] += s5;
    acc[6] += s6;
    acc[7] += s7;
    acc[8] += s8;
    acc[9] += sb;
    return;
  }
  float sb = 0;
#pragma omp simd reduction(+ : sb)
  for (int64_t i = 0; i < n; ++i) sb += dyw[i];
  acc[L.taps()] += sb;
  for (int64_t t = 0; t < L.taps(); ++t) {
    const float* p = phased + off[t];
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += dyw[i] * p[i];
    acc[t] += s;
  }
}

}  // namespace dw_detail

DepthwiseLayout::DepthwiseLayout(const ConvGeometry& g) {
  h = g.h;
  w = g.w;
  oh = g.oh();
  ow = g.ow();
  sh = g.sh;
  sw = g.sw;
  pt = g.pt;
  pl = g.pl;
  const int64_t hp = g.h + g.pt + g.pb, wp = g.w + g.pl + g.pr;
  hq = (hp + sh - 1) / sh;
  lp = (wp + sw - 1) / sw;
  wide = (oh - 1) * lp + ow;
  for (int64_t ky = 0; ky < g.kh; ++ky) {
    for (int64_t kx = 0; kx < g.kw; ++kx) {
      const int64_t r = ky * g.dh, c = kx * g.dw;
      tap_offset.push_back(((r % sh) * sw + c % sw) * hq * lp + (r / sh) * lp + c / sw);
    }
  }
  // Wide loops read up to max(offset) + wide; the slack keeps that inside the buffer.
  const int64_t max_off = *std::max_element(tap_offset.begin(), tap_offset.end());
  size = std::max(sh * sw * hq * lp, max_off + wide) + 16;
}

ConvDepthwise::ConvDepthwise(const ConvGeometry& g) : g_(g), lay_(g) {
  if (!g.is_depthwise()) {
    throw Error("depthwise convolution strategy needs group == channels == outputs, got group " +
                std::to_string(g.group) + ", " + std::to_string(g.c) + " -> " +
                std::to_string(g.o) + " channels");
  }
  // Planes smaller than this amount of work (multiply-adds) per call stay on one thread.
  const int64_t plane_work = std::max<int64_t>(1, lay_.wide * lay_.taps());
  min_parallel_planes_ = std::max<int64_t>(2, (int64_t{1} << 15) / plane_work);
  scratch(std::max(1, omp_get_max_threads()) - 1);
}

ConvDepthwise::Scratch& ConvDepthwise::scratch(int thread) {
  // Only called outside parallel regions with the largest thread index first.
  while (static_cast<int>(scratch_.size()) <= thread) {
    Scratch& s = scratch_.emplace_back();
    std::memset(s.phased.get(lay_.size), 0, sizeof(float) * lay_.size);
    std::memset(s.wide.get(lay_.size), 0, sizeof(float) * lay_.size);
    std::memset(s.grad.get(lay_.size), 0, sizeof(float) * lay_.size);
  }
  return scratch_[thread];
}

void ConvDepthwise::forward(const float* x, const float* w, const float* b, float* y, bool) {
  const int64_t planes = g_.n * g_.c, hw = g_.h * g_.w, ohw = g_.ohw(), taps = lay_.taps();
  const DepthwiseLayout& L = lay_;
  const bool par = planes >= min_parallel_planes_;
  scratch(std::max(1, omp_get_max_threads()) - 1);
#pragma omp parallel if (par)
  {
    Scratch& s = scratch_[omp_get_thread_num()];
    float* phased = s.phased.data();
    float* wide = s.grad.data();  // forward output scratch; grad is cleared before each use
#pragma omp for schedule(static)
    // Channel-major order: each thread takes the channels whose BatchNorm output it wrote (the
    // BatchNorm kernel shares channels between threads), which stay in that core's cache.
    for (int64_t i = 0; i < planes; ++i) {
      const int64_t c = i / g_.n, p = (i % g_.n) * g_.c + c;
      dw_detail::pack_plane(L, x + p * hw, phased);
      dw_detail::forward_plane(L, phased, w + c * taps, b ? b[c] : 0.0f, wide);
      float* yp = y + p * ohw;
      for (int64_t oy = 0; oy < L.oh; ++oy) {
        std::memcpy(yp + oy * L.ow, wide + oy * L.lp, sizeof(float) * L.ow);
      }
    }
  }
}

void ConvDepthwise::backward_data(const float* dy, const float* w, float* dx) {
  const int64_t planes = g_.n * g_.c, hw = g_.h * g_.w, ohw = g_.ohw(), taps = lay_.taps();
  const DepthwiseLayout& L = lay_;
  const bool par = planes >= min_parallel_planes_;
  scratch(std::max(1, omp_get_max_threads()) - 1);
#pragma omp parallel if (par)
  {
    Scratch& s = scratch_[omp_get_thread_num()];
    float* dyw = s.wide.data();
    float* grad = s.grad.data();
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t c = p % g_.c;
      const float* dyp = dy + p * ohw;
      for (int64_t oy = 0; oy < L.oh; ++oy) {
        std::memcpy(dyw + oy * L.lp, dyp + oy * L.ow, sizeof(float) * L.ow);
      }
      dw_detail::backward_data_plane(L, dyw, w + c * taps, grad);
      dw_detail::unpack_plane(L, grad, dx + p * hw);
    }
  }
}

void ConvDepthwise::backward_weights(const float* x, const float* dy, float* dw, float* db) {
  const int64_t hw = g_.h * g_.w, ohw = g_.ohw(), taps = lay_.taps();
  const DepthwiseLayout& L = lay_;
  const bool par = g_.n * g_.c >= min_parallel_planes_ && g_.c > 1;
  scratch(std::max(1, omp_get_max_threads()) - 1);
#pragma omp parallel if (par)
  {
    Scratch& s = scratch_[omp_get_thread_num()];
    float* phased = s.phased.data();
    float* dyw = s.wide.data();
    std::vector<double> acc(taps + 1);  // taps, then the bias
#pragma omp for schedule(static)
    for (int64_t c = 0; c < g_.c; ++c) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t n = 0; n < g_.n; ++n) {
        const int64_t p = n * g_.c + c;
        const float* dyp = dy + p * ohw;
        for (int64_t oy = 0; oy < L.oh; ++oy) {
          std::memcpy(dyw + oy * L.lp, dyp + oy * L.ow, sizeof(float) * L.ow);
        }
        dw_detail::pack_plane(L, x + p * hw, phased);
        dw_detail::weights_plane(L, phased, dyw, acc.data());
      }
      for (int64_t t = 0; t < taps; ++t) dw[c * taps + t] = static_cast<float>(acc[t]);
      if (db) db[c] = static_cast<float>(acc[taps]);
    }
  }
}

void ConvDepthwise::backward(const float* x, const float* dy, const float* w, float* dx, float* dw,
                             float* db) {
  const int64_t planes = g_.n * g_.c, hw = g_.h * g_.w, ohw = g_.ohw(), taps = lay_.taps();
  const int64_t stride = taps + 1;  // per channel: taps, then the bias
  const DepthwiseLayout& L = lay_;
  const int threads = std::max(1, omp_get_max_threads());
  const bool par = planes >= min_parallel_planes_;
  scratch(threads - 1);
  if (static_cast<int>(thread_acc_.size()) < threads) thread_acc_.resize(threads);
  int used = 1;
#pragma omp parallel if (par)
  {
    const int t = omp_get_thread_num();
    if (t == 0) used = omp_get_num_threads();
    Scratch& s = scratch_[t];
    std::vector<double>& acc = thread_acc_[t];
    acc.assign(g_.c * stride, 0.0);
    float* phased = s.phased.data();
    float* dyw = s.wide.data();
    float* grad = s.grad.data();
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t c = p % g_.c;
      const float* dyp = dy + p * ohw;
      for (int64_t oy = 0; oy < L.oh; ++oy) {
        std::memcpy(dyw + oy * L.lp, dyp + oy * L.ow, sizeof(float) * L.ow);
      }
      if (dx) {
        dw_detail::backward_data_plane(L, dyw, w + c * taps, grad);
        dw_detail::unpack_plane(L, grad, dx + p * hw);
      }
      dw_detail::pack_plane(L, x + p * hw, phased);
      dw_detail::weights_plane(L, phased, dyw, acc.data() + c * stride);
    }
  }
  for (int64_t c = 0; c < g_.c; ++c) {
    for (int64_t k = 0; k <= taps; ++k) {
      double v = 0;
      for (int t = 0; t < used; ++t) v += thread_acc_[t][c * stride + k];
      if (k < taps) {
        dw[c * taps + k] = static_cast<float>(v);
      } else if (db) {
        db[c] = static_cast<float>(v);
      }
    }
  }
}

}  // namespace minnow::kernels
