// ONNX export: a minnow Graph becomes an ONNX model (default opset 17) that the ONNX checker
// accepts and ONNX Runtime runs with minnow's outputs. Ops with no ONNX counterpart (losses)
// and fused attributes (Conv2d/Linear/BatchNorm "activation") are written as the standard
// ONNX nodes they stand for. Throws minnow::Error naming the node it cannot express.
#pragma once

#include <string>

#include "minnow/graph.h"

namespace minnow::onnx {

struct ExportOptions {
  int opset = 17;
  bool dynamic_batch = true;  // write the batch dimension as dim_param "N"
  int64_t static_batch = 1;   // the batch size written when dynamic_batch is false
  // Leave out the losses (training-only ops with no ONNX inference form), the graph outputs
  // they produce and the inputs only they read (labels); otherwise a loss is an Error.
  bool drop_losses = false;
  // The QOperator form of a quantized (QDQ) graph: each Conv2d / Linear between
  // DequantizeLinear inputs and a QuantizeLinear becomes ONNX's integer op, QLinearConv or
  // QLinearMatMul (a Linear with a bias: QLinearConv 1x1 between Reshapes, which keeps the int32
  // bias that QLinearMatMul lacks), computing what minnow's int8 kernels compute; the rest
  // (Adds, pooling, float outputs) stays QuantizeLinear/DequantizeLinear around float ops.
  bool qoperator = false;
};

std::string export_onnx_bytes(const Graph& g, const ExportOptions& opts = {});
// Written atomically (io/atomic_file.h): never a half-written file.
void export_onnx_file(const Graph& g, const std::string& path, const ExportOptions& opts = {});

}  // namespace minnow::onnx
