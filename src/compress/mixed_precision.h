// Mixed precision that checks itself (issue 6): which quantizable layers stay in float.
//
// - Accuracy: with a target drop X, every quantizable layer's sensitivity is measured on
//   validation data (accuracy of the graph with all layers int8 but that one, against all int8),
//   and the most sensitive layers go back to float, one at a time, until the validation accuracy
//   is within X of the float model's.
// - Speed: int8 is not always faster (conversions at region borders, memory-bound layers), so
//   each layer still in int8 is tried in float on this CPU: whole-graph batch-1 latency of the
//   deployed (lowered) graph, medians of repeated runs; float is kept where it is faster by more
//   than the noise margin.
// Every decision carries its reason, for the report.
#pragma once

#include <map>
#include <set>
#include <string>

#include "compress/calibrate.h"
#include "data/dataset.h"
#include "data/normalize.h"
#include "passes/insert_qdq.h"

namespace minnow::compress {

struct MixedPrecisionOptions {
  double target_drop = -1;     // accuracy points (0.5 = half a point); < 0: no accuracy search
  bool check_speed = false;    // the CLI turns it on (minnow quantize --no-speed-check: off)
  int bench_iters = 200;       // timed batch-1 runs per measurement (3 measurements, median)
  double speed_margin = 0.05;  // float must be this much faster to win (shared machines are noisy)
};

struct PrecisionChoice {
  std::set<std::string> keep_float;
  std::map<std::string, std::string> reasons;            // node -> why it stays float
  double float_acc = -1, int8_acc = -1, final_acc = -1;  // validation accuracy (search only)
};

// `prepared` is the float graph after prepare_for_quantization, `calibration` its calibration;
// `opts` the quantizer's settings (its keep_float is honoured and extended). `val` is validation
// data (not the test set), used only when opts.target_drop >= 0.
PrecisionChoice choose_precision(const Graph& prepared, const Calibration& calibration,
                                 const QdqOptions& qdq, const data::Dataset& val,
                                 const data::Normalization& norm,
                                 const MixedPrecisionOptions& opts);

}  // namespace minnow::compress
