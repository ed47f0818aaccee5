// im2col / col2im for one sample and one group of an NCHW convolution.
//
// The column matrix has col_rows() = cg*kh*kw rows and oh*ow columns; `ld` is its row stride so
// that several samples can sit side by side in one wider matrix (one GEMM for a batch chunk).
// Padded geometries go through a zero-padded copy of the sample (`scratch`, im2col_scratch_size()
// floats) so that every copied row segment is unconditional.
#pragma once

#include <cstdint>

#include "kernels/conv_geometry.h"

namespace minnow::kernels {

// Floats of scratch im2col/col2im need for this geometry (0 when it has no padding).
int64_t im2col_scratch_size(const ConvGeometry& g);

// x: the group's input channels of one sample, [cg, h, w]. Writes the whole
// col_rows() x ohw() block.
void im2col(const ConvGeometry& g, const float* x, float* col, int64_t ld, float* scratch);

// dx [cg, h, w] = the sum of the column-matrix entries that read each input element
// (overwrites dx).
void col2im(const ConvGeometry& g, const float* col, int64_t ld, float* dx, float* scratch);

}  // namespace minnow::kernels
