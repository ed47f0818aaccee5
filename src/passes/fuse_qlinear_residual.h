// Graph pass for inference, after lower_qdq: a QLinearConv whose quantized output only a
// QLinearAdd reads, adding a quantized tensor of the same shape that is ready before the
// convolution runs (a residual connection), becomes one QLinearConv with that tensor, its scale
// and zero point as inputs 9-11 (ops/qlinear_params.h), the Add's output parameters and its
// fused activation.
//
// The int8 counterpart of fuse_residual_add.h: the Add's two reads and one write become one
// extra read in the convolution's epilogue (oneDNN post-ops). It also skips rounding the
// convolution's result to its own 8-bit scale before the Add, so the fused result is the more
// precise one: it can differ from the unfused graph, and from a QDQ runtime such as ONNX
// Runtime, by one step of the output.
#pragma once

#include "minnow/graph.h"

namespace minnow {

// Returns the number of QLinearAdds fused.
int fuse_qlinear_residual(Graph& graph);

}  // namespace minnow
