// Graph pass for inference, after lower_qdq: a QLinearConv whose quantized output only a
// QLinearAdd reads, adding a quantized tensor of the same shape that is ready before the
// convolution runs (a residual connection), becomes one QLinearConv with that tensor, its scale
// and zero point and the Add's output parameters as inputs 9-13 (ops/qlinear_params.h), and
// the Add's activation.
//
// The int8 counterpart of fuse_residual_add.h: the Add's two reads and one write become one
// extra read in the convolution's epilogue. The fused op computes exactly what the two did,
// rounding included (the convolution's 8-bit result, then QLinearAdd's f32 steps): minnow's
// own kernels agree with the two ops bit for bit, oneDNN's post-ops within a step on rare ties.
#pragma once

#include "minnow/graph.h"

namespace minnow {

// Returns the number of QLinearAdds fused.
int fuse_qlinear_residual(Graph& graph);

}  // namespace minnow
