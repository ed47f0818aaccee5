// minnow qat: quantization-aware training (compress/qat.h). Folds BatchNorm, calibrates
// initial activation ranges, fine-tunes through FakeQuantize ops with learned scales, and writes
// the same kind of QDQ .mnw as `minnow quantize` (int8 weights, int32 biases, u8 activations),
// which the inference runtime runs on integer kernels.
#include <cstdio>
#include <memory>

#include "compress/qat.h"
#include "compress_common.h"
#include "minnow/error.h"

namespace minnow::cli {
namespace {

struct QatArgs {
  CompressFlags common;
  std::string calibration = "minmax";
  bool per_tensor = false;
  compress::QatOptions opts;
  std::vector<std::string> keep_float;
};

nlohmann::json layer_report(const QdqSummary& s) {
  nlohmann::json int8 = nlohmann::json::array(), fp32 = nlohmann::json::array();
  for (const std::string& n : s.int8_nodes) int8.push_back({{"node", n}, {"precision", "int8"}});
  for (const std::string& n : s.float_nodes) {
    fp32.push_back({{"node", n}, {"precision", "f32"}, {"why", s.reasons.at(n)}});
  }
  return {{"int8_layers", int8}, {"fp32_layers", fp32}};
}

void run_qat(QatArgs& a) {
  compress::QatOptions& o = a.opts;
  o.calibration.method = compress::calibration_method_from_name(a.calibration);
  o.calibration.seed = a.common.seed;
  o.qdq.per_channel = !a.per_tensor;
  o.qdq.keep_float.insert(a.keep_float.begin(), a.keep_float.end());
  if (a.common.train.epochs < 1) {
    throw Error(
        "--epochs must be at least 1: quantization-aware training fine-tunes the model "
        "(use minnow quantize for post-training quantization)");
  }
  if (o.calibration.samples < 1) throw Error("--calib-samples must be at least 1");
  if (o.calibration.percentile < 50 || o.calibration.percentile > 100) {
    throw Error("--percentile must be in [50, 100]");
  }
  CompressJob job = start_compress_job(a.common);
  for (const std::string& n : a.keep_float) {
    if (!job.model.graph.find_node(n)) {
      throw Error("--keep-float: the model has no node '" + n + "'");
    }
  }
  const compress::QatState state =
      compress::insert_fake_quantize(job.model.graph, job.data.train, job.norm, o);
  std::printf("qat: %zu activation and %zu weight fake-quantizers (BatchNorm folded and frozen)\n",
              state.activations.size(), state.weights.size());
  TrainConfig config = a.common.train;
  compress::add_qat_hooks(state, config);
  compress::ModelReport after;
  after.trainable_params = fine_tune(job, a.common, config);
  const QdqSummary summary = compress::convert_qat(job.model.graph, state, o);
  for (const std::string& n : summary.int8_nodes) std::printf("  %-28s int8\n", n.c_str());
  for (const std::string& n : summary.float_nodes) {
    std::printf("  %-28s f32 (%s)\n", n.c_str(), summary.reasons.at(n).c_str());
  }
  nlohmann::json extra = layer_report(summary);
  extra["calibration"] = {{"method", a.calibration},
                          {"samples", state.calibration.samples},
                          {"observer_bytes", state.calibration.observer_bytes}};
  extra["per_channel"] = o.qdq.per_channel;
  extra["qat"] = {{"epochs", a.common.train.epochs},
                  {"lr", a.common.train.lr},
                  {"activation_fake_quantizers", state.activations.size()},
                  {"weight_fake_quantizers", state.weights.size()},
                  {"batchnorm", "folded before training (frozen)"}};
  finish_compress_job(job, a.common, after, extra);
}

}  // namespace

void add_qat_command(CLI::App& app) {
  auto a = std::make_shared<QatArgs>();
  CLI::App* c = app.add_subcommand(
      "qat",
      "Quantization-aware training: fine-tune through fake quantization with learned scales, "
      "write an int8 QDQ model like quantize");
  add_compress_flags(*c, a->common);
  c->add_option("--calib-samples", a->opts.calibration.samples,
                "Training samples to calibrate the initial ranges on")
      ->capture_default_str();
  c->add_option("--calibration", a->calibration,
                "Initial range estimate: minmax | percentile | entropy | mse")
      ->capture_default_str();
  c->add_option("--percentile", a->opts.calibration.percentile, "For --calibration percentile")
      ->capture_default_str();
  c->add_flag("--per-tensor", a->per_tensor, "One weight scale per layer instead of per channel");
  c->add_flag("--symmetric-activations", a->opts.qdq.symmetric_activations,
              "int8 activations with zero point 0 instead of uint8 asymmetric");
  c->add_option("--keep-float", a->keep_float, "Node names to keep in float (comma-separated)")
      ->delimiter(',');
  c->callback([a] { run_qat(*a); });
}

}  // namespace minnow::cli
