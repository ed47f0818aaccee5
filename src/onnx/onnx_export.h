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
};

std::string export_onnx_bytes(const Graph& g, const ExportOptions& opts = {});
// Written atomically (io/atomic_file.h): never a half-written file.
void export_onnx_file(const Graph& g, const std::string& path, const ExportOptions& opts = {});

}  // namespace minnow::onnx
