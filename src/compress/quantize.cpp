#include "compress/quantize.h"

#include "minnow/error.h"
#include "passes/fold_batchnorm.h"
#include "passes/fuse_activation.h"
#include "passes/simplify_for_inference.h"

namespace minnow::compress {

WeightOnly weight_only_from_name(const std::string& name) {
  if (name.empty() || name == "none") return WeightOnly::kNone;
  if (name == "int8") return WeightOnly::kInt8;
  if (name == "int4") return WeightOnly::kInt4;
  throw Error("--weight-only must be int8 or int4, got '" + name + "'");
}

void prepare_for_quantization(Graph& g) {
  simplify_for_inference(g);
  fold_batchnorm(g);
  fuse_activation(g, {OpKind::kConv2d, OpKind::kLinear, OpKind::kBatchNorm});
  g.validate();
}

QuantizeResult quantize_post_training(Graph& g, const data::Dataset& calibration_data,
                                      const data::Normalization& norm, const QuantizeOptions& opts,
                                      const data::Dataset& validation_data) {
  if (opts.group_size != 0 && opts.weight_only == WeightOnly::kNone) {
    throw Error("--group-size applies to weight-only quantization (--weight-only int8|int4)");
  }
  prepare_for_quantization(g);
  QuantizeResult r;
  if (opts.weight_only != WeightOnly::kNone) {
    const int bits = opts.weight_only == WeightOnly::kInt8 ? 8 : 4;
    r.summary.int8_nodes = quantize_weights_only(g, bits, opts.qdq.per_channel, opts.group_size);
    if (r.summary.int8_nodes.empty()) {
      throw Error("model '" + g.name + "' has no Conv2d or Linear with constant weights");
    }
    return r;
  }
  r.calibration = calibrate(g, calibration_data, norm, opts.calibration);
  r.precision = choose_precision(g, r.calibration, opts.qdq, validation_data, norm, opts.mixed);
  QdqOptions qdq = opts.qdq;
  qdq.keep_float = r.precision.keep_float;
  r.summary = insert_qdq(g, r.calibration.ranges, qdq, r.calibration.channel_means);
  for (const auto& [node, why] : r.precision.reasons) r.summary.reasons[node] = why;
  if (r.summary.int8_nodes.empty()) {
    throw Error("nothing in model '" + g.name + "' can be quantized (no Conv2d, Linear, Add or " +
                "GlobalAvgPool on float data outside the layers kept in float)");
  }
  return r;
}

}  // namespace minnow::compress
