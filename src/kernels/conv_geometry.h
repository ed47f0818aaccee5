// Concrete geometry of one 2-d convolution (NCHW data, OIHW weights with groups), shared by the
// reference kernel, the fast kernels and the benchmark.
#pragma once

#include <cstdint>

namespace minnow::kernels {

struct ConvGeometry {
  int64_t n = 1, c = 1, h = 1, w = 1;  // input [n, c, h, w]
  int64_t o = 1, kh = 1, kw = 1;       // weights [o, c / group, kh, kw]
  int64_t sh = 1, sw = 1;              // strides
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;
  int64_t dh = 1, dw = 1;  // dilations (1 = dense)
  int64_t group = 1;
  bool has_bias = false;

  int64_t cg() const { return c / group; }
  int64_t og() const { return o / group; }
  // Output spatial size; <= 0 when the dilated kernel does not fit the padded input.
  int64_t oh() const { return (h + pt + pb - dh * (kh - 1) - 1) / sh + 1; }
  int64_t ow() const { return (w + pl + pr - dw * (kw - 1) - 1) / sw + 1; }
  int64_t ohw() const { return oh() * ow(); }
  // Rows of the im2col matrix of one group: cg * kh * kw.
  int64_t col_rows() const { return cg() * kh * kw; }
  bool is_depthwise() const { return group == c && group == o; }
  bool is_pointwise() const {
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && pb == 0 && pr == 0;
  }
  int64_t macs_per_sample() const { return o * ohw() * col_rows(); }
};

}  // namespace minnow::kernels
