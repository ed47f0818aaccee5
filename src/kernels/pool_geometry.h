// Geometry of one 2-d pooling (NCHW), shared by pool.cpp's kernels and the benchmark.
#pragma once

#include <algorithm>
#include <cstdint>

namespace minnow::kernels {

struct PoolGeometry {
  int64_t n = 1, c = 1, h = 1, w = 1;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;
  bool ceil_mode = false;
  bool count_include_pad = false;  // AvgPool only

  // PyTorch's rule: ceil mode may add a last window, but only if it starts inside the input or
  // the leading padding.
  static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t pad_lo, int64_t pad_hi,
                          bool ceil) {
    const int64_t span = in + pad_lo + pad_hi - k;
    if (span < 0) return 0;
    int64_t out = (ceil ? (span + s - 1) / s : span / s) + 1;
    if (ceil && (out - 1) * s >= in + pad_lo) --out;
    return out;
  }
  int64_t oh() const { return out_size(h, kh, sh, pt, pb, ceil_mode); }
  int64_t ow() const { return out_size(w, kw, sw, pl, pr, ceil_mode); }
  int64_t planes() const { return n * c; }

  // Window of output row oy clipped to the input: [*lo, *hi). Returns the window's extent
  // inside the padded input (what count_include_pad divides by).
  int64_t window_y(int64_t oy, int64_t* lo, int64_t* hi) const {
    return window(oy, sh, kh, pt, h, pb, lo, hi);
  }
  int64_t window_x(int64_t ox, int64_t* lo, int64_t* hi) const {
    return window(ox, sw, kw, pl, w, pr, lo, hi);
  }
  // Non-overlapping 2x2 stride-2 windows without padding that tile the input exactly: the
  // LeNet case, with a dedicated fast path.
  bool is_2x2_tiling() const {
    return kh == 2 && kw == 2 && sh == 2 && sw == 2 && pt == 0 && pl == 0 && pb == 0 && pr == 0 &&
           h % 2 == 0 && w % 2 == 0 && !ceil_mode;
  }

 private:
  static int64_t window(int64_t o, int64_t s, int64_t k, int64_t pad_lo, int64_t in, int64_t pad_hi,
                        int64_t* lo, int64_t* hi) {
    const int64_t start = o * s - pad_lo;
    const int64_t end = std::min(start + k, in + pad_hi);
    *lo = std::max<int64_t>(start, 0);
    *hi = std::min(end, in);
    return end - start;
  }
};

}  // namespace minnow::kernels
