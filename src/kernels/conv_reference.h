// Reference 2-d convolution (NCHW, OIHW weights, groups): direct loops, float and double.
// The oracle for the fast kernels and, in double, for finite-difference gradient checks.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/conv_geometry.h"

namespace minnow::kernels {

// Calls fn(x_index, w_index, y_index) for every multiply-accumulate of the forward pass, with
// flat indices into x [n,c,h,w], w [o,cg,kh,kw] and y [n,o,oh,ow]. Forward and both backward
// passes are the same loop nest with a different body, which keeps them consistent.
template <class F>
void for_each_conv_tap(const ConvGeometry& g, F&& fn) {
  const int64_t oh = g.oh(), ow = g.ow(), cg = g.cg(), og = g.og();
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t o = 0; o < g.o; ++o) {
      const int64_t grp = o / og;
      for (int64_t oy = 0; oy < oh; ++oy) {
        for (int64_t ox = 0; ox < ow; ++ox) {
          const int64_t yi = ((n * g.o + o) * oh + oy) * ow + ox;
          for (int64_t c = 0; c < cg; ++c) {
            const int64_t xc = n * g.c + grp * cg + c;
            for (int64_t i = 0; i < g.kh; ++i) {
              const int64_t iy = oy * g.sh - g.pt + i * g.dh;
              if (iy < 0 || iy >= g.h) continue;
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t ix = ox * g.sw - g.pl + j * g.dw;
                if (ix < 0 || ix >= g.w) continue;
                fn((xc * g.h + iy) * g.w + ix, ((o * cg + c) * g.kh + i) * g.kw + j, yi);
              }
            }
          }
        }
      }
    }
  }
}

template <class T>
void conv_forward_reference(const ConvGeometry& g, const T* x, const T* w, const T* b, T* y) {
  const int64_t ohw = g.ohw();
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t o = 0; o < g.o; ++o) {
      T* row = y + (n * g.o + o) * ohw;
      for (int64_t i = 0; i < ohw; ++i) row[i] = b ? b[o] : T(0);
    }
  }
  for_each_conv_tap(g, [&](int64_t xi, int64_t wi, int64_t yi) { y[yi] += x[xi] * w[wi]; });
}

// Overwrites whichever of dx, dw, db is non-null.
template <class T>
void conv_backward_reference(const ConvGeometry& g, const T* x, const T* w, const T* dy, T* dx,
                             T* dw, T* db) {
  if (dx) std::memset(dx, 0, sizeof(T) * g.n * g.c * g.h * g.w);
  if (dw) std::memset(dw, 0, sizeof(T) * g.o * g.col_rows());
  if (dx || dw) {
    for_each_conv_tap(g, [&](int64_t xi, int64_t wi, int64_t yi) {
      if (dx) dx[xi] += w[wi] * dy[yi];
      if (dw) dw[wi] += x[xi] * dy[yi];
    });
  }
  if (db) {
    const int64_t ohw = g.ohw();
    for (int64_t o = 0; o < g.o; ++o) {
      T acc = 0;
      for (int64_t n = 0; n < g.n; ++n) {
        const T* row = dy + (n * g.o + o) * ohw;
        for (int64_t i = 0; i < ohw; ++i) acc += row[i];
      }
      db[o] = acc;
    }
  }
}

}  // namespace minnow::kernels
