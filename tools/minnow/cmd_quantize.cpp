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
#include "quant_flags.h"

namespace minnow::cli {
namespace {

struct QuantizeArgs {
  CompressFlags common;
  QuantFlags quant;
  std::string weight_only;
  compress::QuantizeOptions opts;
  int64_t val_samples = 5000;
  bool no_speed_check = false;
};

void run_quantize(QuantizeArgs& a) {
  compress::QuantizeOptions& o = a.opts;
  apply_quant_flags(a.quant, a.common.seed, o.calibration, o.qdq);
  o.weight_only = compress::weight_only_from_name(a.weight_only);
  o.mixed.check_speed = !a.no_speed_check && o.weight_only == compress::WeightOnly::kNone;
  if (a.val_samples < 100) throw Error("--val-samples must be at least 100");
  if (a.common.train.epochs > 0) {
    throw Error("--epochs: post-training quantization does not fine-tune (use minnow qat)");
  }
  CompressJob job = start_compress_job(a.common);
  check_keep_float(a.quant, job.model.graph);
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
  nlohmann::json extra =
      report_layers(r.summary, weight_only ? "int8 weights, f32 compute" : "int8");
  if (weight_only) {
    extra["weight_only"] = a.weight_only;
    extra["group_size"] = o.group_size;
  } else {
    extra["calibration"] = calibration_report(a.quant, r.calibration);
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
  add_quant_flags(*c, a->quant, a->opts.calibration, a->opts.qdq);
  c->add_option("--weight-only", a->weight_only,
                "int8 | int4: quantize only the weights (smaller file, float compute)");
  c->add_option("--group-size", a->opts.group_size,
                "With --weight-only: one scale per G consecutive weights of an output channel "
                "(per-group, as GPTQ/AWQ int4); layers whose weights per output are not a "
                "multiple of G stay per channel")
      ->check(CLI::PositiveNumber);
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
