#include "kernels/pool_fast.h"

#include <algorithm>
#include <cstring>

#include "kernels/conv_vec.h"
#include "kernels/pool_reference.h"

namespace minnow::kernels {
namespace {

// Below this many input elements a parallel region costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

// 2x2 stride-2 max over one plane; ties go to the first element in row-major order. Written
// without branches: after ReLU many windows tie at zero, and a compare-and-branch chain
// mispredicted so often that this pool cost as much as a convolution.
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void max_2x2_plane(
    const float* __restrict x, float* __restrict y, int32_t* __restrict arg, int64_t h, int64_t w) {
  const int64_t ow = w / 2;
  for (int64_t oy = 0; oy < h / 2; ++oy) {
    const float* r0 = x + 2 * oy * w;
    const float* r1 = r0 + w;
    float* yr = y + oy * ow;
    const int32_t base = static_cast<int32_t>(2 * oy * w);
    const int32_t down = static_cast<int32_t>(w);
    if (!arg) {
      for (int64_t ox = 0; ox < ow; ++ox) {
        const float top = std::max(r0[2 * ox], r0[2 * ox + 1]);
        const float bottom = std::max(r1[2 * ox], r1[2 * ox + 1]);
        yr[ox] = std::max(top, bottom);
      }
      continue;
    }
    int32_t* ar = arg + oy * ow;
    for (int64_t ox = 0; ox < ow; ++ox) {
      const float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
      const int32_t i = base + 2 * static_cast<int32_t>(ox);
      // Arithmetic selects: GCC turns ternaries on these short rows (too short for its vector
      // loop) back into branches. max(m, v) keeps m on ties, as the first-max rule wants.
      float m = a;
      int32_t k = i;
      int32_t gt = b > m;
      k += gt * (i + 1 - k);
      m = std::max(m, b);
      gt = c > m;
      k += gt * (i + down - k);
      m = std::max(m, c);
      gt = d > m;
      k += gt * (i + down + 1 - k);
      m = std::max(m, d);
      yr[ox] = m;
      ar[ox] = k;
    }
  }
}

}  // namespace

MaxPoolFast::MaxPoolFast(const PoolGeometry& g) : g_(g), argmax_(g.planes() * g.oh() * g.ow()) {}

void MaxPoolFast::forward(const float* x, float* y, bool training) {
  const int64_t oh = g_.oh(), ow = g_.ow(), hw = g_.h * g_.w, planes = g_.planes();
  const bool big = planes * hw >= kParallelMin;
  if (g_.is_2x2_tiling()) {
#pragma omp parallel for if (big)
    for (int64_t p = 0; p < planes; ++p) {
      max_2x2_plane(x + p * hw, y + p * oh * ow, training ? argmax_.data() + p * oh * ow : nullptr,
                    g_.h, g_.w);
    }
  } else {
    // Argmax first, then gather: the general window loop is the reference's.
#pragma omp parallel for if (big)
    for (int64_t p = 0; p < planes; ++p) {
      int32_t* arg = argmax_.data() + p * oh * ow;
      for (int64_t oy = 0; oy < oh; ++oy) {
        for (int64_t ox = 0; ox < ow; ++ox) {
          const int32_t a = static_cast<int32_t>(window_argmax(g_, x + p * hw, oy, ox));
          arg[oy * ow + ox] = a;
          y[(p * oh + oy) * ow + ox] = x[p * hw + a];
        }
      }
    }
  }
  argmax_of_ = training || !g_.is_2x2_tiling() ? x : nullptr;
}

void MaxPoolFast::compute_argmax(const float* x) {
  const int64_t oh = g_.oh(), ow = g_.ow(), hw = g_.h * g_.w, planes = g_.planes();
#pragma omp parallel for if (planes * hw >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    for (int64_t oy = 0; oy < oh; ++oy) {
      for (int64_t ox = 0; ox < ow; ++ox) {
        argmax_[(p * oh + oy) * ow + ox] =
            static_cast<int32_t>(window_argmax(g_, x + p * hw, oy, ox));
      }
    }
  }
  argmax_of_ = x;
}

void MaxPoolFast::backward(const float* x, const float* dy, float* dx) {
  if (argmax_of_ != x) compute_argmax(x);
  const int64_t oh = g_.oh(), ow = g_.ow(), hw = g_.h * g_.w, planes = g_.planes();
  const int64_t ohw = oh * ow;
  const int32_t* arg = argmax_.data();
  if (g_.is_2x2_tiling()) {
    // Every input element belongs to exactly one window: write all of dx, no zero fill.
#pragma omp parallel for if (planes * hw >= kParallelMin)
    for (int64_t p = 0; p < planes; ++p) {
      float* d = dx + p * hw;
      for (int64_t oy = 0; oy < oh; ++oy) {
        for (int64_t ox = 0; ox < ow; ++ox) {
          const int64_t o = p * ohw + oy * ow + ox;
          const int64_t i0 = 2 * oy * g_.w + 2 * ox;
          d[i0] = d[i0 + 1] = d[i0 + g_.w] = d[i0 + g_.w + 1] = 0.0f;
          d[arg[o]] = dy[o];
        }
      }
    }
    return;
  }
#pragma omp parallel for if (planes * hw >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    float* d = dx + p * hw;
    std::memset(d, 0, sizeof(float) * hw);
    for (int64_t o = 0; o < ohw; ++o) d[arg[p * ohw + o]] += dy[p * ohw + o];
  }
}

AvgPoolFast::AvgPoolFast(const PoolGeometry& g) : g_(g), inv_divisor_(g.oh() * g.ow()) {
  for (int64_t oy = 0; oy < g.oh(); ++oy) {
    for (int64_t ox = 0; ox < g.ow(); ++ox) {
      inv_divisor_[oy * g.ow() + ox] = 1.0f / static_cast<float>(avg_divisor(g, oy, ox));
    }
  }
}

void AvgPoolFast::forward(const float* x, float* y) {
  const int64_t oh = g_.oh(), ow = g_.ow(), hw = g_.h * g_.w, planes = g_.planes();
#pragma omp parallel for if (planes * hw >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const float* xp = x + p * hw;
    for (int64_t oy = 0; oy < oh; ++oy) {
      int64_t y0, y1;
      g_.window_y(oy, &y0, &y1);
      for (int64_t ox = 0; ox < ow; ++ox) {
        int64_t x0, x1;
        g_.window_x(ox, &x0, &x1);
        float sum = 0.0f;
        for (int64_t yy = y0; yy < y1; ++yy) {
          for (int64_t xx = x0; xx < x1; ++xx) sum += xp[yy * g_.w + xx];
        }
        y[(p * oh + oy) * ow + ox] = sum * inv_divisor_[oy * ow + ox];
      }
    }
  }
}

void AvgPoolFast::backward(const float* dy, float* dx) {
  const int64_t oh = g_.oh(), ow = g_.ow(), hw = g_.h * g_.w, planes = g_.planes();
#pragma omp parallel for if (planes * hw >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    float* d = dx + p * hw;
    std::memset(d, 0, sizeof(float) * hw);
    for (int64_t oy = 0; oy < oh; ++oy) {
      int64_t y0, y1;
      g_.window_y(oy, &y0, &y1);
      for (int64_t ox = 0; ox < ow; ++ox) {
        int64_t x0, x1;
        g_.window_x(ox, &x0, &x1);
        const float v = dy[(p * oh + oy) * ow + ox] * inv_divisor_[oy * ow + ox];
        for (int64_t yy = y0; yy < y1; ++yy) {
          for (int64_t xx = x0; xx < x1; ++xx) d[yy * g_.w + xx] += v;
        }
      }
    }
  }
}

void global_avg_pool_forward(const float* x, float* y, int64_t planes, int64_t hw) {
  const float inv = 1.0f / static_cast<float>(hw);
#pragma omp parallel for if (planes * hw >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) y[p] = sum_floats(x + p * hw, hw) * inv;
}

void global_avg_pool_backward(const float* dy, float* dx, int64_t planes, int64_t hw) {
  const float inv = 1.0f / static_cast<float>(hw);
#pragma omp parallel for if (planes * hw >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const float v = dy[p] * inv;
    float* d = dx + p * hw;
    for (int64_t i = 0; i < hw; ++i) d[i] = v;
  }
}

// The sums of 64 channels stay in registers over all hw pixels (sums kept in y instead were
// loaded and stored once per pixel: an int8 mobilenet_v2's 7x7x128 pool took 0.48 us per sample
// at batch 26, as long as its head convolution's last third). Vectorized per ISA level.
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void sum_pixels(
    const float* __restrict x, int64_t hw, int64_t c, float* __restrict y) {
  constexpr int64_t kWidth = 64;
  int64_t k0 = 0;
  for (; k0 + kWidth <= c; k0 += kWidth) {
    float acc[kWidth] = {};
    for (int64_t p = 0; p < hw; ++p) {
      const float* row = x + p * c + k0;
#pragma GCC unroll 64
      for (int64_t k = 0; k < kWidth; ++k) acc[k] += row[k];
    }
    for (int64_t k = 0; k < kWidth; ++k) y[k0 + k] = acc[k];
  }
  for (int64_t k = k0; k < c; ++k) y[k] = 0;
  for (int64_t p = 0; p < hw && k0 < c; ++p) {
    for (int64_t k = k0; k < c; ++k) y[k] += x[p * c + k];
  }
}

void global_avg_pool_nhwc_forward(const float* x, float* y, int64_t n, int64_t hw, int64_t c) {
  const auto count = static_cast<float>(hw);
  for (int64_t s = 0; s < n; ++s) {
    float* ys = y + s * c;
    sum_pixels(x + s * hw * c, hw, c, ys);
    for (int64_t k = 0; k < c; ++k) ys[k] /= count;
  }
}

}  // namespace minnow::kernels
