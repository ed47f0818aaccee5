#include "quant_flags.h"

#include <cstdio>

#include "minnow/error.h"

namespace minnow::cli {

void add_quant_flags(CLI::App& cmd, QuantFlags& f, compress::CalibrationOptions& calib,
                     QdqOptions& qdq) {
  cmd.add_option("--calib-samples", calib.samples, "Training samples to calibrate on")
      ->capture_default_str();
  cmd.add_option("--calibration", f.calibration,
                 "Range estimate: minmax | percentile | entropy | mse")
      ->capture_default_str();
  cmd.add_option("--percentile", calib.percentile, "For --calibration percentile")
      ->capture_default_str();
  cmd.add_flag("--per-tensor", f.per_tensor, "One weight scale per layer instead of per channel");
  cmd.add_flag("--symmetric-activations", qdq.symmetric_activations,
               "int8 activations with zero point 0 instead of uint8 asymmetric");
  cmd.add_option("--keep-float", f.keep_float, "Node names to keep in float (comma-separated)")
      ->delimiter(',');
}

void apply_quant_flags(const QuantFlags& f, uint64_t seed, compress::CalibrationOptions& calib,
                       QdqOptions& qdq) {
  calib.method = compress::calibration_method_from_name(f.calibration);
  calib.seed = seed;
  if (calib.samples < 1) throw Error("--calib-samples must be at least 1");
  if (calib.percentile < 50 || calib.percentile > 100) {
    throw Error("--percentile must be in [50, 100]");
  }
  qdq.per_channel = !f.per_tensor;
  qdq.keep_float.insert(f.keep_float.begin(), f.keep_float.end());
}

void check_keep_float(const QuantFlags& f, const Graph& model) {
  for (const std::string& n : f.keep_float) {
    if (!model.find_node(n)) throw Error("--keep-float: the model has no node '" + n + "'");
  }
}

nlohmann::json report_layers(const QdqSummary& s, const std::string& int8_precision) {
  nlohmann::json int8 = nlohmann::json::array(), fp32 = nlohmann::json::array();
  for (const std::string& n : s.int8_nodes) {
    std::printf("  %-28s %s\n", n.c_str(), int8_precision.c_str());
    int8.push_back({{"node", n}, {"precision", int8_precision}});
  }
  for (const std::string& n : s.float_nodes) {
    std::printf("  %-28s f32 (%s)\n", n.c_str(), s.reasons.at(n).c_str());
    fp32.push_back({{"node", n}, {"precision", "f32"}, {"why", s.reasons.at(n)}});
  }
  std::fflush(stdout);
  return {{"int8_layers", int8}, {"fp32_layers", fp32}};
}

nlohmann::json calibration_report(const QuantFlags& f, const compress::Calibration& c) {
  return {{"method", f.calibration}, {"samples", c.samples}, {"observer_bytes", c.observer_bytes}};
}

}  // namespace minnow::cli
