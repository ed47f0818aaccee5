// Graph pass for post-training quantization: turns a float graph (BatchNorm folded, activations
// fused) into a QDQ graph, the form ONNX uses for quantized models and the one minnow saves.
//
// Every Conv2d, Linear, Add and GlobalAvgPool that is not kept in float reads its activations
// through QuantizeLinear -> DequantizeLinear pairs with the calibrated parameters, and its
// weights through a DequantizeLinear of an int8 initializer (symmetric: no zero point; per
// output channel by default). Biases stay float: their int32 form at x_scale * w_scale follows
// from the scales, so the lowering and the ONNX exporter derive it (storing it would cost a
// scale per channel in the file). Ops that only move or select values (MaxPool, Flatten,
// Reshape, Transpose, Concat) whose inputs are quantized stay in the integer domain: their
// inputs and output share one set of parameters (the union of their ranges), so that the
// runtime can run them on the int8 data directly.
//
// The result still runs in float anywhere (reference semantics: fake quantization). The
// inference session lowers it to integer kernels (passes/lower_qdq.h); ONNX export writes it as
// it is.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "minnow/graph.h"

namespace minnow {

// Quantization parameters of one activation value.
struct ActivationQuant {
  float scale = 1;
  int32_t zero_point = 0;
  DType dtype = DType::kU8;  // kU8 (asymmetric) or kI8 (symmetric, zero point 0)
};

// A real-valued range [lo, hi] observed for a value (calibration).
struct ValueRange {
  float lo = 0, hi = 0;
};

struct QdqOptions {
  // Weights: one scale per output channel, else per tensor. Clustered weights (at most 64
  // distinct values) take one scale per tensor either way, so that they keep their codebook.
  bool per_channel = true;
  bool symmetric_activations = false;  // activations int8 with zero point 0, else uint8
  std::set<std::string> keep_float;    // names of nodes to leave in float
};

struct QdqSummary {
  std::vector<std::string> int8_nodes;   // compute nodes now reading quantized data
  std::vector<std::string> float_nodes;  // compute nodes kept in float (and why, in `reasons`)
  std::map<std::string, std::string> reasons;
  std::vector<std::string> bias_corrected;  // depthwise convs whose bias was corrected
};

// The ops this pass quantizes (compute) and those it lets through on integer data.
bool is_quantizable_compute(OpKind op);
// Elementwise functions (HardSwish, HardSigmoid, Sigmoid, Tanh, LeakyRelu, Gelu) quantized at
// their input and output; the runtime runs them as 256-entry tables (ops/qlinear_lookup.cpp).
bool is_quantizable_elementwise(OpKind op);
bool is_quantization_passthrough(OpKind op);

// Parameters for a range (widened to contain 0 so that zero is exact).
ActivationQuant choose_activation_quant(ValueRange r, bool symmetric);

// Rewrites `g` in place. `ranges` must hold every float value a quantized node reads or writes
// (calibration observes them all); throws minnow::Error naming a value without a range.
// `input_means` (per-channel means of 4-d values, from calibration) enables bias correction of
// depthwise convolutions: their expected output does not shift when their weights are rounded.
QdqSummary insert_qdq(Graph& g, const std::map<std::string, ValueRange>& ranges,
                      const QdqOptions& opts = {},
                      const std::map<std::string, std::vector<double>>& input_means = {});

// Weight-only quantization: the weights of every Conv2d and Linear become a DequantizeLinear of
// symmetric int8 data (bits 8: [-127, 127]; bits 4: [-7, 7], stored one value per byte here and
// packed two per byte by the .mnw writer). Computation stays in float (the inference session
// dequantizes once at load). Returns the names of the nodes whose weights were quantized.
// With group_size G > 0, each run of G consecutive weights of one output (of its
// C * kh * kw or `in` weights) gets its own scale: the weight is stored as [numel / G, G] with
// a per-row DequantizeLinear, then reshaped back (standard ONNX ops, no blocked quantization
// needed). A layer whose weights per output are not a multiple of G (or are fewer) is
// quantized per output channel instead.
std::vector<std::string> quantize_weights_only(Graph& g, int bits, bool per_channel = true,
                                               int64_t group_size = 0);

}  // namespace minnow
