// Reference max / average pooling (NCHW), float and double: direct loops over each window.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/pool_geometry.h"

namespace minnow::kernels {

// Index (within the plane) of the first maximum of the window of (oy, ox), in row-major scan
// order: ties go to the earliest element, as in PyTorch. Windows are never empty (pads are
// smaller than the kernel).
template <class T>
int64_t window_argmax(const PoolGeometry& g, const T* plane, int64_t oy, int64_t ox) {
  int64_t y0, y1, x0, x1;
  g.window_y(oy, &y0, &y1);
  g.window_x(ox, &x0, &x1);
  int64_t best = y0 * g.w + x0;
  for (int64_t y = y0; y < y1; ++y) {
    for (int64_t x = x0; x < x1; ++x) {
      if (plane[y * g.w + x] > plane[best]) best = y * g.w + x;
    }
  }
  return best;
}

template <class T>
void max_pool_forward_reference(const PoolGeometry& g, const T* x, T* y) {
  const int64_t oh = g.oh(), ow = g.ow(), hw = g.h * g.w;
  for (int64_t p = 0; p < g.planes(); ++p) {
    for (int64_t oy = 0; oy < oh; ++oy) {
      for (int64_t ox = 0; ox < ow; ++ox) {
        y[(p * oh + oy) * ow + ox] = x[p * hw + window_argmax(g, x + p * hw, oy, ox)];
      }
    }
  }
}

template <class T>
void max_pool_backward_reference(const PoolGeometry& g, const T* x, const T* dy, T* dx) {
  const int64_t oh = g.oh(), ow = g.ow(), hw = g.h * g.w;
  std::memset(dx, 0, sizeof(T) * g.planes() * hw);
  for (int64_t p = 0; p < g.planes(); ++p) {
    for (int64_t oy = 0; oy < oh; ++oy) {
      for (int64_t ox = 0; ox < ow; ++ox) {
        dx[p * hw + window_argmax(g, x + p * hw, oy, ox)] += dy[(p * oh + oy) * ow + ox];
      }
    }
  }
}

// Divisor of the window of (oy, ox): its size inside the padded input, or only the input
// elements it covers when padding is not counted.
inline int64_t avg_divisor(const PoolGeometry& g, int64_t oy, int64_t ox) {
  int64_t y0, y1, x0, x1;
  const int64_t ph = g.window_y(oy, &y0, &y1), pw = g.window_x(ox, &x0, &x1);
  return g.count_include_pad ? ph * pw : (y1 - y0) * (x1 - x0);
}

template <class T>
void avg_pool_forward_reference(const PoolGeometry& g, const T* x, T* y) {
  const int64_t oh = g.oh(), ow = g.ow(), hw = g.h * g.w;
  for (int64_t p = 0; p < g.planes(); ++p) {
    for (int64_t oy = 0; oy < oh; ++oy) {
      for (int64_t ox = 0; ox < ow; ++ox) {
        int64_t y0, y1, x0, x1;
        g.window_y(oy, &y0, &y1);
        g.window_x(ox, &x0, &x1);
        T sum = 0;
        for (int64_t yy = y0; yy < y1; ++yy) {
          for (int64_t xx = x0; xx < x1; ++xx) sum += x[p * hw + yy * g.w + xx];
        }
        y[(p * oh + oy) * ow + ox] = sum / static_cast<T>(avg_divisor(g, oy, ox));
      }
    }
  }
}

template <class T>
void avg_pool_backward_reference(const PoolGeometry& g, const T* dy, T* dx) {
  const int64_t oh = g.oh(), ow = g.ow(), hw = g.h * g.w;
  std::memset(dx, 0, sizeof(T) * g.planes() * hw);
  for (int64_t p = 0; p < g.planes(); ++p) {
    for (int64_t oy = 0; oy < oh; ++oy) {
      for (int64_t ox = 0; ox < ow; ++ox) {
        int64_t y0, y1, x0, x1;
        g.window_y(oy, &y0, &y1);
        g.window_x(ox, &x0, &x1);
        const T d = dy[(p * oh + oy) * ow + ox] / static_cast<T>(avg_divisor(g, oy, ox));
        for (int64_t yy = y0; yy < y1; ++yy) {
          for (int64_t xx = x0; xx < x1; ++xx) dx[p * hw + yy * g.w + xx] += d;
        }
      }
    }
  }
}

}  // namespace minnow::kernels
