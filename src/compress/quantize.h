// Post-training quantization (issue 6): prepare the float graph for inference (Dropout removed,
// BatchNorm folded, ReLU/ReLU6 fused, so that quantized ops see the values the deployed graph
// computes), calibrate its activations, and rewrite it as a QDQ graph (passes/insert_qdq.h)
// that the inference session runs on integer kernels (passes/lower_qdq.h).
// Weight-only quantization stores int8 or int4 weights and computes in float: smaller files,
// float speed.
#pragma once

#include <string>

#include "compress/calibrate.h"
#include "compress/mixed_precision.h"
#include "passes/insert_qdq.h"

namespace minnow::compress {

enum class WeightOnly { kNone, kInt8, kInt4 };
WeightOnly weight_only_from_name(const std::string& name);  // "", "int8", "int4"

struct QuantizeOptions {
  CalibrationOptions calibration;
  QdqOptions qdq;
  MixedPrecisionOptions mixed;  // accuracy target and speed check (mixed_precision.h)
  WeightOnly weight_only = WeightOnly::kNone;
  int64_t group_size = 0;  // weight-only: one scale per G weights of an output (0: per channel)
};

struct QuantizeResult {
  QdqSummary summary;
  Calibration calibration;  // empty for weight-only quantization
  PrecisionChoice precision;
};

// The inference rewrites every quantizer starts from (BatchNorm folding, activation fusion).
void prepare_for_quantization(Graph& g);

// Rewrites `g` in place. `calibration_data` is only read for full (not weight-only)
// quantization, `validation_data` only for an accuracy target (opts.mixed.target_drop >= 0).
// Throws minnow::Error when nothing in the graph can be quantized.
QuantizeResult quantize_post_training(Graph& g, const data::Dataset& calibration_data,
                                      const data::Normalization& norm, const QuantizeOptions& opts,
                                      const data::Dataset& validation_data = {});

}  // namespace minnow::compress
