// Calibration for post-training quantization: runs a float graph over calibration samples and
// observes every float value it computes (compress/observer.h), in bounded memory — histograms,
// never stored activations — so 10,000 samples cost what 100 do.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "compress/observer.h"
#include "data/dataset.h"
#include "data/normalize.h"
#include "minnow/graph.h"
#include "passes/insert_qdq.h"

namespace minnow::compress {

struct CalibrationOptions {
  int64_t samples = 1000;  // drawn without replacement from the data by `seed`
  int64_t batch = 64;
  CalibrationMethod method = CalibrationMethod::kMinMax;
  double percentile = 99.99;
  int bins = 2048;
  uint64_t seed = 0;
};

struct Calibration {
  std::map<std::string, ValueRange> ranges;  // every f32 value: graph inputs and node outputs
  int64_t samples = 0;                       // samples actually observed
  size_t observer_bytes = 0;                 // memory the observers held
  // Per-channel means of every 4-d (NCHW) value, for bias correction (passes/insert_qdq.h).
  std::map<std::string, std::vector<double>> channel_means;
};

// `graph` is the float graph as it will be quantized (BatchNorm folded, activations fused), so
// that the observed values are the ones the quantized graph reads and writes. Throws
// minnow::Error for empty data or a model whose inputs the data cannot feed.
Calibration calibrate(const Graph& graph, const data::Dataset& data,
                      const data::Normalization& norm, const CalibrationOptions& opts);

}  // namespace minnow::compress
