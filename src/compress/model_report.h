// What a compression step bought: the figures every compression command reports before and
// after (issue: params, nonzero_params, file_bytes, macs, test_acc, latency_ms_p50, and
// trainable_params where training happened).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "data/dataset.h"
#include "data/normalize.h"
#include "minnow/graph.h"

namespace minnow::compress {

struct ModelReport {
  int64_t params = 0;             // elements of the weights (float, or integer once quantized)
  int64_t nonzero_params = 0;     // of those, not exactly zero
  int64_t file_bytes = 0;         // size of the model as saved (.mnw, the given metadata)
  int64_t macs = 0;               // per sample
  double test_acc = -1;           // -1 when no test data was given
  double latency_ms_p50 = 0;      // batch 1, measured with the inference session
  int64_t trainable_params = -1;  // -1: no training happened
};

struct MeasureOptions {
  int latency_iters = 200;
  bool measure_latency = true;
};

// Measures `g`. `test` may be null (test_acc stays -1). `metadata` is stored with the model
// when its file size is computed (it is part of what a user saves).
ModelReport measure_model(const Graph& g, const data::Dataset* test,
                          const data::Normalization& norm, const nlohmann::json& metadata,
                          const MeasureOptions& opts = {});

// Counts over the weights: trainable initializers, frozen float weights and quantized integer
// weights; not BatchNorm running statistics, quantization scales and zero points, or i64
// shape and index constants.
int64_t count_params(const Graph& g);
int64_t count_nonzero_params(const Graph& g);

nlohmann::json to_json(const ModelReport& r);
// {"before": ..., "after": ..., plus `extra` keys}: the report every compression command writes.
nlohmann::json before_after_json(const ModelReport& before, const ModelReport& after,
                                 const nlohmann::json& extra = nlohmann::json::object());
// Prints a two-column table of the before/after figures to stdout.
void print_before_after(const ModelReport& before, const ModelReport& after);

}  // namespace minnow::compress
