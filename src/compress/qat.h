// Quantization-aware training (issue 6): fine-tune a float model through FakeQuantize ops placed
// exactly where post-training quantization would quantize it, then convert it to the same QDQ
// graph `minnow quantize` writes (so the runtime lowers it to integer kernels).
//
//  1. Where to quantize: prepare_for_quantization (compress/quantize.h: Dropout removed,
//     BatchNorm folded into the preceding conv, ReLU/ReLU6 fused) on a copy, calibration
//     (compress/calibrate.h) for the initial activation ranges, insert_qdq on another copy to
//     learn where it quantizes and with which activation parameters.
//  2. The training graph. With freeze_bn_epoch = 0, the prepared graph itself: BatchNorm is
//     frozen from the start, training updates the folded weights and biases. With
//     freeze_bn_epoch = K > 0, the float graph with Dropout removed and every quantized
//     Conv2d -> BatchNorm pair rewritten by simulate_batchnorm_folding (compress/qat_batchnorm.h):
//     the weights are quantized as folding will make them while BatchNorm keeps normalizing with
//     batch statistics and updating its running statistics, for the first K epochs.
//  3. A FakeQuantize (ops/fake_quantize.cpp) after every activation value a quantized node reads
//     (per tensor, u8 asymmetric or i8 symmetric as QdqOptions says) and on the weights of every
//     quantized Conv2d/Linear (int8 symmetric, per output channel by default). Scales are
//     trainable (LSQ gradients); zero points stay fixed (they must remain integers).
//  4. Training with the standard loop (train_model) plus qat_hooks(); with simulated BatchNorm,
//     after epoch K freeze_batchnorm folds BatchNorm with its running statistics (the same
//     function the simulation computes in eval mode), rebuilds the graph of step 2's first form
//     and carries the learned scales over; the remaining epochs continue the same schedule.
//  5. Conversion: activation ranges read back from the learned parameters as
//     lo = (qmin - zp) * s, hi = (qmax - zp) * s; weights replaced by their fake-quantized
//     values (so that re-quantizing them reproduces the learned grid exactly); the FakeQuantize
//     nodes removed; insert_qdq with those ranges.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "compress/calibrate.h"
#include "passes/insert_qdq.h"
#include "train/trainer.h"

namespace minnow::compress {

struct QatOptions {
  CalibrationOptions calibration;  // initial activation ranges
  QdqOptions qdq;                  // per-channel weights, symmetric activations, keep_float
  // Epochs trained with BatchNorm folding simulated (batch statistics) before BatchNorm is
  // frozen; 0 freezes it from the start (right for a short fine-tune of a trained model).
  int64_t freeze_bn_epoch = 0;
};

// What insert_fake_quantize added, for the hooks and for conversion.
struct FakeQuantPoint {
  std::string value;       // the float value quantized (activation or weight initializer)
  std::string node;        // the FakeQuantize node
  std::string output;      // its output
  std::string scale;       // initializer: [] per tensor, [C] per channel
  std::string zero_point;  // initializer ([] f32), "" for weights (symmetric)
  int64_t qmin = 0, qmax = 255;
  std::string consumer;  // weights: the Conv2d/Linear node that reads the output
};

struct QatState {
  std::vector<FakeQuantPoint> activations;
  std::vector<FakeQuantPoint> weights;
  std::vector<std::string> int8_nodes;  // the compute nodes that will run on int8
  Calibration calibration;
  bool simulated_batchnorm = false;  // the graph is step 2's second form (BatchNorm unfrozen)
};

// Steps 1-3: rewrites the float graph `g` into the training graph (BatchNorm simulated when
// opts.freeze_bn_epoch > 0). Throws minnow::Error when nothing in it can be quantized.
QatState insert_fake_quantize(Graph& g, const data::Dataset& calibration_data,
                              const data::Normalization& norm, const QatOptions& opts);

// Adds before_step/after_step hooks to `config` (chained after any already set) that keep the
// learned scales usable: the optimizer's step on a scale is applied to log(scale) (Adam moves
// every parameter by about lr per step whatever its size, which would wreck a step size of
// 1e-3), and a weight scale is capped at max|w_c| / qmax (a larger step leaves codes unused, and
// the cap makes conversion reproduce the learned grid exactly).
void add_qat_hooks(const QatState& state, TrainConfig& config);

// Step 4's freeze: `float_graph` is the float model `g` was made from (before
// insert_fake_quantize; its tensors are not modified). Replaces `g`, a trained graph with
// simulated BatchNorm, by the frozen training graph (BatchNorm folded with the running
// statistics, FakeQuantize as with freeze_bn_epoch = 0) holding the trained weights and learned
// scales, and returns its state. A graph whose BatchNorm is already frozen is left as it is.
QatState freeze_batchnorm(Graph& g, const QatState& state, const Graph& float_graph,
                          const data::Dataset& calibration_data, const data::Normalization& norm,
                          const QatOptions& opts);

// Step 4: trains `g` (from insert_fake_quantize on `float_graph`) for config.epochs epochs with
// `train` (train_model, or the CLI's wrapper around it with progress output), freezing
// BatchNorm after opts.freeze_bn_epoch epochs. Returns the state of the final graph. The
// hooks of add_qat_hooks are added here.
using QatTrainFn = std::function<TrainResult(Graph&, const TrainConfig&)>;
QatState train_qat(Graph& g, QatState state, const Graph& float_graph,
                   const data::Dataset& train_data, const data::Normalization& norm,
                   const QatOptions& opts, const TrainConfig& config, const QatTrainFn& train,
                   TrainResult* result = nullptr);

// Step 5: rewrites the trained graph into the QDQ graph. Throws minnow::Error if the graph no
// longer holds the FakeQuantize nodes of `state`.
QdqSummary convert_qat(Graph& g, const QatState& state, const QatOptions& opts);

struct QatResult {
  QatState state;
  TrainResult train;
  QdqSummary summary;
};

// Steps 1-5 with train_model (the CLI calls the steps itself to share its progress printing).
QatResult quantize_aware_train(Graph& g, const data::Dataset& train_data,
                               const data::Normalization& norm, const QatOptions& opts,
                               TrainConfig config);

}  // namespace minnow::compress
