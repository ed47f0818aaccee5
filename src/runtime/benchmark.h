// Latency and throughput of an inference session on synthetic inputs (`minnow bench`, and the
// before/after latency in the compression reports).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "minnow/graph.h"
#include "runtime/inference_session.h"

namespace minnow {

struct BenchOptions {
  int64_t batch = 1;
  int warmup = 10;  // untimed runs first (kernels and their primitives are built on the first)
  int iters = 100;  // timed runs
  uint64_t seed = 0;
};

struct BenchResult {
  int64_t batch = 0;
  int iters = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, mean_ms = 0, min_ms = 0;
  double samples_per_s = 0;  // batch / mean latency
};

// Inputs for every graph input at the given batch: f32 uniform in [-1, 1); i64 inputs (token
// ids, sequence lengths) are all 1, a valid id and length for any vocabulary.
std::map<std::string, Tensor> synthetic_feeds(const std::vector<ValueInfo>& inputs, int64_t batch,
                                              uint64_t seed);

// Runs session.run() warmup + iters times; latency percentiles over the timed runs
// (nearest-rank). Throws minnow::Error for batch < 1, warmup < 0 or iters < 1.
BenchResult benchmark_session(InferenceSession& session, const BenchOptions& options);

// Peak resident memory of this process so far, in bytes (getrusage).
int64_t peak_rss_bytes();

}  // namespace minnow
