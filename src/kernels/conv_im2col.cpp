#include "kernels/conv_im2col.h"

#include <cstring>

// Row copies here are 10-30 floats; GCC would turn the copy loops into memcpy calls whose call
// overhead dominated the whole im2col.
#pragma GCC optimize("no-tree-loop-distribute-patterns")

namespace minnow::kernels {
namespace {

bool has_padding(const ConvGeometry& g) { return g.pt || g.pl || g.pb || g.pr; }

// Unaligned float vectors; assignments through them compile to plain vector moves.
typedef float V8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef float V4 __attribute__((vector_size(16), aligned(4), may_alias));

// Copies n floats with fixed-size (overlapping) blocks. The rows copied here are short (one
// output row, 10-30 floats in LeNet): a memcpy call per row cost more than the GEMM itself, and
// a plain loop gets turned back into memcpy calls by the compiler.
inline void copy_floats(float* __restrict d, const float* __restrict s, int64_t n) {
  if (n >= 8) {
    int64_t i = 0;
    for (; i + 8 < n; i += 8) *reinterpret_cast<V8*>(d + i) = *reinterpret_cast<const V8*>(s + i);
    *reinterpret_cast<V8*>(d + n - 8) = *reinterpret_cast<const V8*>(s + n - 8);
  } else if (n >= 4) {
    *reinterpret_cast<V4*>(d) = *reinterpret_cast<const V4*>(s);
    *reinterpret_cast<V4*>(d + n - 4) = *reinterpret_cast<const V4*>(s + n - 4);
  } else {
    for (int64_t i = 0; i < n; ++i) d[i] = s[i];
  }
}

}  // namespace

int64_t im2col_scratch_size(const ConvGeometry& g) {
  return has_padding(g) ? g.cg() * (g.h + g.pt + g.pb) * (g.w + g.pl + g.pr) : 0;
}

// Vectorized per ISA at run time (no -march flags in this build).
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void im2col(
    const ConvGeometry& g, const float* __restrict x, float* __restrict col, int64_t ld,
    float* __restrict scratch) {
  const int64_t oh = g.oh(), ow = g.ow();
  const float* src = x;
  int64_t hp = g.h, wp = g.w;
  if (has_padding(g)) {
    hp = g.h + g.pt + g.pb;
    wp = g.w + g.pl + g.pr;
    std::memset(scratch, 0, sizeof(float) * g.cg() * hp * wp);
    for (int64_t c = 0; c < g.cg(); ++c) {
      for (int64_t y = 0; y < g.h; ++y) {
        copy_floats(scratch + (c * hp + y + g.pt) * wp + g.pl, x + (c * g.h + y) * g.w, g.w);
      }
    }
    src = scratch;
  }
  const int64_t row_step = g.sh * wp;
  for (int64_t c = 0; c < g.cg(); ++c) {
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        float* dst = col + ((c * g.kh + i) * g.kw + j) * ld;
        const float* base = src + (c * hp + i * g.dh) * wp + j * g.dw;
        if (g.sw == 1) {
          for (int64_t y = 0; y < oh; ++y) copy_floats(dst + y * ow, base + y * row_step, ow);
        } else {
          for (int64_t y = 0; y < oh; ++y) {
            const float* s = base + y * row_step;
            float* d = dst + y * ow;
            for (int64_t x0 = 0; x0 < ow; ++x0) d[x0] = s[x0 * g.sw];
          }
        }
      }
    }
  }
}

[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void col2im(
    const ConvGeometry& g, const float* __restrict col, int64_t ld, float* __restrict dx,
    float* __restrict scratch) {
  const int64_t oh = g.oh(), ow = g.ow();
  const bool padded = has_padding(g);
  float* dst = padded ? scratch : dx;
  const int64_t hp = g.h + g.pt + g.pb, wp = g.w + g.pl + g.pr;
  std::memset(dst, 0, sizeof(float) * g.cg() * hp * wp);
  const int64_t row_step = g.sh * wp;
  // Plain loops measured fastest here (GCC vectorizes them per clone); the blocked helpers
  // above lose to store-forwarding stalls when consecutive taps update overlapping rows.
  for (int64_t c = 0; c < g.cg(); ++c) {
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        const float* s = col + ((c * g.kh + i) * g.kw + j) * ld;
        float* base = dst + (c * hp + i * g.dh) * wp + j * g.dw;
        for (int64_t y = 0; y < oh; ++y) {
          float* d = base + y * row_step;
          const float* r = s + y * ow;
          if (g.sw == 1) {
            for (int64_t x0 = 0; x0 < ow; ++x0) d[x0] += r[x0];
          } else {
            for (int64_t x0 = 0; x0 < ow; ++x0) d[x0 * g.sw] += r[x0];
          }
        }
      }
    }
  }
  if (padded) {
    for (int64_t c = 0; c < g.cg(); ++c) {
      for (int64_t y = 0; y < g.h; ++y) {
        copy_floats(dx + (c * g.h + y) * g.w, dst + (c * hp + y + g.pt) * wp + g.pl, g.w);
      }
    }
  }
}

}  // namespace minnow::kernels
