// minnow quantize: post-training quantization (compress/quantize.h). Calibrates activation
// ranges on training samples, writes a QDQ .mnw (int8 weights, int32 biases, u8 activations)
// that the inference runtime runs on integer kernels, and reports which layers run in int8.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <tuple>

#include "compress/quantize.h"
#include "compress_common.h"
#include "minnow/error.h"

namespace minnow::cli {
namespace {

struct QuantizeArgs {
  CompressFlags common;
  std::string calibration = "minmax";
  std::string weight_only;
  bool per_tensor = false;
  compress::QuantizeOptions opts;
  std::vector<std::string> keep_float;
  int64_t val_samples = 5000;
  bool no_speed_check = false;
};

nlohmann::json layer_report(const QdqSummary& s, bool weight_only) {
  nlohmann::json int8 = nlohmann::json::array(), fp32 = nlohmann::json::array();
  for (const std::string& n : s.int8_nodes) {
    int8.push_back(
        {{"node", n}, {"precision", weight_only ? "int8 weights, f32 compute" : "int8"}});
  }
  for (const std::string& n : s.float_nodes) {
    fp32.push_back({{"node", n}, {"precision", "f32"}, {"why", s.reasons.at(n)}});
  }
  return {{"int8_layers", int8}, {"fp32_layers", fp32}};
}

void run_quantize(QuantizeArgs& a) {
  compress::QuantizeOptions& o = a.opts;
  o.calibration.method = compress::calibration_method_from_name(a.calibration);
  o.weight_only = compress::weight_only_from_name(a.weight_only);
  o.qdq.per_channel = !a.per_tensor;
  o.qdq.keep_float.insert(a.keep_float.begin(), a.keep_float.end());
  o.calibration.seed = a.common.seed;
  o.mixed.check_speed = !a.no_speed_check && o.weight_only == compress::WeightOnly::kNone;
  if (a.val_samples < 100) throw Error("--val-samples must be at least 100");
  if (o.calibration.percentile < 50 || o.calibration.percentile > 100) {
    throw Error("--percentile must be in [50, 100]");
  }
  if (a.common.train.epochs > 0) {
    throw Error("--epochs: post-training quantization does not fine-tune (use minnow qat)");
  }
  CompressJob job = start_compress_job(a.common);
  for (const std::string& n : a.keep_float) {
    if (!job.model.graph.find_node(n))
      throw Error("--keep-float: the model has no node '" + n + "'");
  }
  // Decisions are taken on a validation split of the training data, never on the test set.
  data::Dataset calibration = job.data.train, validation;
  if (o.mixed.target_drop >= 0) {
    const double n = static_cast<double>(job.data.train.size());
    const double fraction = std::min(0.5, static_cast<double>(a.val_samples) / std::max(n, 1.0));
    std::tie(calibration, validation) =
        data::split_validation(job.data.train, fraction, a.common.seed);
  }
  const compress::QuantizeResult r =
      compress::quantize_post_training(job.model.graph, calibration, job.norm, o, validation);
  const bool weight_only = o.weight_only != compress::WeightOnly::kNone;
  for (const std::string& n : r.summary.int8_nodes) {
    std::printf("  %-28s %s\n", n.c_str(), weight_only ? "int8 weights" : "int8");
  }
  for (const std::string& n : r.summary.float_nodes) {
    std::printf("  %-28s f32 (%s)\n", n.c_str(), r.summary.reasons.at(n).c_str());
  }
  nlohmann::json extra = layer_report(r.summary, weight_only);
  if (weight_only) {
    extra["weight_only"] = a.weight_only;
  } else {
    extra["calibration"] = {{"method", a.calibration},
                            {"samples", r.calibration.samples},
                            {"observer_bytes", r.calibration.observer_bytes}};
  }
  extra["per_channel"] = o.qdq.per_channel;
  if (r.precision.float_acc >= 0) {
    extra["validation"] = {{"samples", validation.size()},
                           {"float_acc", r.precision.float_acc},
                           {"all_int8_acc", r.precision.int8_acc},
                           {"final_acc", r.precision.final_acc},
                           {"target_drop_points", o.mixed.target_drop}};
  }
  finish_compress_job(job, a.common, compress::ModelReport{}, extra);
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* c = app.add_subcommand(
      "quantize",
      "Post-training int8 quantization: calibrate activations, int8 weights per channel, "
      "integer kernels at run time");
  add_compress_flags(*c, a->common);
  c->add_option("--calib-samples", a->opts.calibration.samples, "Training samples to calibrate on")
      ->capture_default_str();
  c->add_option("--calibration", a->calibration,
                "Range estimate: minmax | percentile | entropy | mse")
      ->capture_default_str();
  c->add_option("--percentile", a->opts.calibration.percentile, "For --calibration percentile")
      ->capture_default_str();
  c->add_flag("--per-tensor", a->per_tensor, "One weight scale per layer instead of per channel");
  c->add_flag("--symmetric-activations", a->opts.qdq.symmetric_activations,
              "int8 activations with zero point 0 instead of uint8 asymmetric");
  c->add_option("--weight-only", a->weight_only,
                "int8 | int4: quantize only the weights (smaller file, float compute)");
  c->add_option("--keep-float", a->keep_float, "Node names to keep in float (comma-separated)")
      ->delimiter(',');
  c->add_option("--target-accuracy-drop", a->opts.mixed.target_drop,
                "Keep the most sensitive layers in float until validation accuracy is within "
                "this many points of float");
  c->add_option("--val-samples", a->val_samples,
                "Training samples held out for --target-accuracy-drop decisions")
      ->capture_default_str();
  c->add_flag("--no-speed-check", a->no_speed_check,
              "Do not measure int8 against float per layer (keeps every quantizable layer int8)");
  c->callback([a] { run_quantize(*a); });
}

}  // namespace minnow::cli
