// minnow qat: quantization-aware training (compress/qat.h). Folds BatchNorm, calibrates
// initial activation ranges, fine-tunes through FakeQuantize ops with learned scales, and writes
// the same kind of QDQ .mnw as `minnow quantize` (int8 weights, int32 biases, u8 activations),
// which the inference runtime runs on integer kernels.
#include <cstdio>
#include <memory>

#include "compress/qat.h"
#include "compress_common.h"
#include "minnow/error.h"
#include "quant_flags.h"

namespace minnow::cli {
namespace {

struct QatArgs {
  CompressFlags common;
  QuantFlags quant;
  compress::QatOptions opts;
};

void run_qat(QatArgs& a) {
  compress::QatOptions& o = a.opts;
  apply_quant_flags(a.quant, a.common.seed, o.calibration, o.qdq);
  if (a.common.train.epochs < 1) {
    throw Error(
        "--epochs must be at least 1: quantization-aware training fine-tunes the model "
        "(use minnow quantize for post-training quantization)");
  }
  CompressJob job = start_compress_job(a.common);
  check_keep_float(a.quant, job.model.graph);
  const Graph float_graph = job.model.graph;
  compress::QatState state =
      compress::insert_fake_quantize(job.model.graph, job.data.train, job.norm, o);
  const int64_t simulated = state.simulated_batchnorm ? o.freeze_bn_epoch : 0;
  if (simulated > 0) {
    std::printf(
        "qat: %zu activation and %zu weight fake-quantizers; BatchNorm folding simulated with "
        "batch statistics for %lld epoch(s), then frozen\n",
        state.activations.size(), state.weights.size(), static_cast<long long>(simulated));
  } else {
    std::printf(
        "qat: %zu activation and %zu weight fake-quantizers (BatchNorm folded and frozen)\n",
        state.activations.size(), state.weights.size());
  }
  compress::ModelReport after;
  state = compress::train_qat(job.model.graph, state, float_graph, job.data.train, job.norm, o,
                              a.common.train, [&](Graph&, const TrainConfig& c) {
                                TrainResult r;
                                // Trainable parameters of the graph as it trains first.
                                const int64_t n = fine_tune(job, a.common, c, &r);
                                if (after.trainable_params < 0) after.trainable_params = n;
                                return r;
                              });
  const QdqSummary summary = compress::convert_qat(job.model.graph, state, o);
  nlohmann::json extra = report_layers(summary, "int8");
  extra["calibration"] = calibration_report(a.quant, state.calibration);
  extra["per_channel"] = o.qdq.per_channel;
  extra["qat"] = {{"epochs", a.common.train.epochs},
                  {"lr", a.common.train.lr},
                  {"activation_fake_quantizers", state.activations.size()},
                  {"weight_fake_quantizers", state.weights.size()},
                  {"freeze_bn_epoch", o.freeze_bn_epoch},
                  {"batchnorm", simulated > 0 ? "folding simulated with batch statistics, then "
                                                "frozen (folded with the running statistics)"
                                              : "folded before training (frozen)"}};
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
  add_quant_flags(*c, a->quant, a->opts.calibration, a->opts.qdq);
  c->add_option("--freeze-bn-epoch", a->opts.freeze_bn_epoch,
                "Train the first K epochs with BatchNorm folding simulated (batch statistics, "
                "running statistics updated), then freeze BatchNorm; 0 freezes it from the start")
      ->default_val(0)
      ->check(CLI::NonNegativeNumber);
  c->callback([a] { run_qat(*a); });
}

}  // namespace minnow::cli
