// What `minnow quantize` and `minnow qat` share: the calibration and quantization-scheme flags,
// and the per-layer precision report.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/calibrate.h"
#include "passes/insert_qdq.h"

namespace minnow::cli {

struct QuantFlags {
  std::string calibration = "minmax";
  bool per_tensor = false;
  std::vector<std::string> keep_float;
};

// --calib-samples, --calibration, --percentile, --per-tensor, --symmetric-activations,
// --keep-float, writing into `f`, `calib` and `qdq`.
void add_quant_flags(CLI::App& cmd, QuantFlags& f, compress::CalibrationOptions& calib,
                     QdqOptions& qdq);
// Completes `calib` and `qdq` from the flags; throws minnow::Error naming a bad flag. Call it
// before loading anything, so that a bad flag fails at once.
void apply_quant_flags(const QuantFlags& f, uint64_t seed, compress::CalibrationOptions& calib,
                       QdqOptions& qdq);
// Throws minnow::Error for a --keep-float name the model does not have.
void check_keep_float(const QuantFlags& f, const Graph& model);
// Prints every quantizable layer's precision (and why a float one is float) and returns the
// report's {"int8_layers": [...], "fp32_layers": [...]}.
nlohmann::json report_layers(const QdqSummary& s, const std::string& int8_precision);
nlohmann::json calibration_report(const QuantFlags& f, const compress::Calibration& c);

}  // namespace minnow::cli
