// Graph pass for inference: runs a QDQ graph (passes/insert_qdq.h, or a QDQ ONNX model made by
// another tool) on integer kernels.
//
//   DequantizeLinear(x_q) -> Conv2d / Linear (weights: DequantizeLinear of an int8 constant,
//   bias: DequantizeLinear of an int32 constant or a float constant) -> QuantizeLinear
//     becomes QLinearConv / QLinearLinear writing the quantized output directly; without a
//     QuantizeLinear after it (a float consumer or a graph output), the integer op writes the
//     real-valued f32 result instead.
//   DequantizeLinear(a_q), DequantizeLinear(b_q) -> Add [-> Relu/Relu6] -> QuantizeLinear
//     becomes QLinearAdd (with the activation fused),
//   and GlobalAvgPool likewise QLinearGlobalAvgPool.
//   DequantizeLinear(x_q) -> Softmax [-> QuantizeLinear] becomes QLinearSoftmax, writing f32
//     probabilities (or, with the QuantizeLinear, quantized ones).
//   QuantizeLinear -> DequantizeLinear -> Relu/Relu6 -> QuantizeLinear with one set of
//     parameters after an integer op becomes that op's fused activation (PyTorch's eager-mode
//     export writes quantized ReLUs so).
//   MaxPool / Flatten / Reshape / Transpose / Concat between a DequantizeLinear and a
//     QuantizeLinear with the same parameters run on the integer data as they are.
//   LSTM / GRU marked int8_gates = 1 by the quantizer, weights DequantizeLinear of int8
//     constants, compute their gates with dynamically quantized int8 products (inputs 6, 7 of
//     the op: the weights' per-row scales).
//
// Nothing else changes: patterns that do not match (per-channel activations, weights with a
// non-zero zero point, broadcasting adds, ...) keep running in float through their
// DequantizeLinear, which is exactly the graph's meaning. Every graph input and output keeps
// its name. DequantizeLinear nodes left without readers are removed.
#pragma once

#include "minnow/graph.h"

namespace minnow {

// Whether the graph holds quantization ops (QDQ or integer): it then runs as deployed only in the
// inference session.
bool is_quantized_graph(const Graph& graph);

struct LowerQdqOptions {
  // Lower only what ONNX's own integer ops can say (the QOperator export, onnx/onnx_export.h):
  // Conv2d / Linear whose output a QuantizeLinear reads, to QLinearConv / QLinearLinear (with a
  // requantized ReLU/ReLU6 fused as above). Everything else keeps its QDQ form.
  bool qoperator_only = false;
};

// Returns the number of float nodes replaced by integer ones.
int lower_qdq(Graph& graph, const LowerQdqOptions& opts = {});

}  // namespace minnow
