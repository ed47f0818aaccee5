// Export of quantized (QDQ) graphs. minnow keeps the bias of a quantized Conv2d / Linear in
// float (its int32 form is derived: x_scale * w_scale is known), which saves a scale tensor per
// layer in .mnw files; ONNX's QDQ convention, which ONNX Runtime needs to fuse the pattern into
// an integer convolution, is a DequantizeLinear of an int32 bias at that scale.
#pragma once

#include <string>

#include "minnow/graph.h"
#include "onnx/export_context.h"

namespace minnow::onnx {

// The bias input to write for Conv2d / Linear node `n` (input 2): for a float constant bias of a
// node reading DequantizeLinear outputs (activation per tensor, constant int8 weights), the
// output of a new DequantizeLinear of the int32 bias — rounded exactly as minnow's lowering
// rounds it (passes/lower_qdq.h), so both runtimes compute the same integers; otherwise the bias
// as it is.
std::string exported_bias(ExportContext& cx, const Node& n);

}  // namespace minnow::onnx
