#include "compress/mixed_precision.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "minnow/error.h"
#include "runtime/benchmark.h"
#include "runtime/inference_session.h"
#include "train/evaluate_runtime.h"

namespace minnow::compress {
namespace {

Graph quantized(const Graph& prepared, const Calibration& calib, QdqOptions qdq,
                const std::set<std::string>& keep_float) {
  Graph g = prepared;
  qdq.keep_float = keep_float;
  insert_qdq(g, calib.ranges, qdq, calib.channel_means);
  return g;
}

double accuracy(const Graph& g, const data::Dataset& val, const data::Normalization& norm) {
  return evaluate_with_runtime(g, val, norm, 256).accuracy;
}

// Median of three batch-1 latency measurements of the deployed graph.
double latency_ms(const Graph& g, int iters) {
  InferenceSession session(g);
  BenchOptions b;
  b.batch = 1;
  b.iters = iters;
  b.warmup = 20;
  std::vector<double> t;
  for (int k = 0; k < 3; ++k) t.push_back(benchmark_session(session, b).p50_ms);
  std::sort(t.begin(), t.end());
  return t[1];
}

std::vector<std::string> quantizable_nodes(const Graph& prepared, const Calibration& calib,
                                           const QdqOptions& qdq,
                                           const std::set<std::string>& keep) {
  Graph g = prepared;
  QdqOptions o = qdq;
  o.keep_float = keep;
  return insert_qdq(g, calib.ranges, o).int8_nodes;
}

}  // namespace

PrecisionChoice choose_precision(const Graph& prepared, const Calibration& calib,
                                 const QdqOptions& qdq, const data::Dataset& val,
                                 const data::Normalization& norm,
                                 const MixedPrecisionOptions& opts) {
  PrecisionChoice c;
  c.keep_float = qdq.keep_float;
  for (const std::string& n : c.keep_float) c.reasons[n] = "kept in float by request";

  if (opts.target_drop >= 0) {
    if (val.size() == 0) throw Error("--target-accuracy-drop needs validation data");
    c.float_acc = accuracy(prepared, val, norm);
    c.int8_acc = accuracy(quantized(prepared, calib, qdq, c.keep_float), val, norm);
    c.final_acc = c.int8_acc;
    const double target = c.float_acc - opts.target_drop / 100.0;
    if (c.final_acc < target) {
      // Sensitivity: what each layer alone in float gives back.
      std::vector<std::pair<double, std::string>> gain;
      for (const std::string& n : quantizable_nodes(prepared, calib, qdq, c.keep_float)) {
        std::set<std::string> keep = c.keep_float;
        keep.insert(n);
        gain.emplace_back(accuracy(quantized(prepared, calib, qdq, keep), val, norm) - c.int8_acc,
                          n);
      }
      std::sort(gain.begin(), gain.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
      });
      for (const auto& [g, n] : gain) {
        if (c.final_acc >= target) break;
        c.keep_float.insert(n);
        c.final_acc = accuracy(quantized(prepared, calib, qdq, c.keep_float), val, norm);
        char why[160];
        std::snprintf(why, sizeof why,
                      "accuracy: most sensitive (alone in float it recovers %+.2f points); "
                      "validation accuracy now %.4f, float %.4f",
                      100 * g, c.final_acc, c.float_acc);
        c.reasons[n] = why;
      }
    }
  }

  if (opts.check_speed) {
    // An int8 embedding table is folded back to float when the session loads: the same model at
    // run time, which only the timing noise could tell apart.
    auto weight_only = [&](const std::string& name) {
      for (const Node& n : prepared.nodes) {
        if (n.name == name) return n.op == OpKind::kEmbedding;
      }
      return false;
    };
    double best = latency_ms(quantized(prepared, calib, qdq, c.keep_float), opts.bench_iters);
    for (const std::string& n : quantizable_nodes(prepared, calib, qdq, c.keep_float)) {
      if (weight_only(n)) continue;
      std::set<std::string> keep = c.keep_float;
      keep.insert(n);
      const double t = latency_ms(quantized(prepared, calib, qdq, keep), opts.bench_iters);
      if (t < best * (1 - opts.speed_margin)) {
        char why[160];
        std::snprintf(why, sizeof why,
                      "speed: the model runs faster with this layer in float (%.4f ms vs %.4f ms "
                      "at batch 1 on this CPU)",
                      t, best);
        c.reasons[n] = why;
        c.keep_float = std::move(keep);
        best = t;
      }
    }
  }
  return c;
}

}  // namespace minnow::compress
