#include "compress/model_report.h"

#include <cstdio>
#include <set>

#include "io/mnw.h"
#include "runtime/benchmark.h"
#include "runtime/inference_session.h"
#include "train/trainer.h"

namespace minnow::compress {
namespace {

// BatchNorm running statistics are state, not parameters (PyTorch counts them as buffers).
std::set<std::string> running_statistics(const Graph& g) {
  std::set<std::string> s;
  for (const Node& n : g.nodes) {
    if (n.op != OpKind::kBatchNorm) continue;
    for (size_t i = 3; i < n.inputs.size(); ++i) s.insert(n.inputs[i]);
  }
  return s;
}

// Scales and zero points of quantized values describe the number format, they are not weights.
std::set<std::string> quantization_parameters(const Graph& g) {
  std::set<std::string> s;
  for (const Node& n : g.nodes) {
    if (n.op != OpKind::kQuantizeLinear && n.op != OpKind::kDequantizeLinear) continue;
    for (size_t i = 1; i < n.inputs.size(); ++i) s.insert(n.inputs[i]);
  }
  return s;
}

// Weights are float, or integer when quantized (int8 weights, int32 biases); i64 constants are
// shapes and indices.
bool holds_weights(DType t) {
  return dtype_is_float(t) || t == DType::kI8 || t == DType::kU8 || t == DType::kI32;
}

template <class Count>
int64_t over_params(const Graph& g, Count count) {
  std::set<std::string> skip = running_statistics(g);
  skip.merge(quantization_parameters(g));
  int64_t n = 0;
  for (const auto& [name, init] : g.initializers) {
    if (!holds_weights(init.value.dtype()) || skip.count(name)) continue;
    n += count(init.value);
  }
  return n;
}

template <class T>
int64_t nonzero(const Tensor& t) {
  const T* p = t.data<T>();
  int64_t nz = 0;
  for (int64_t i = 0; i < t.numel(); ++i) nz += p[i] != T(0);
  return nz;
}

}  // namespace

int64_t count_params(const Graph& g) {
  return over_params(g, [](const Tensor& t) { return t.numel(); });
}

int64_t count_nonzero_params(const Graph& g) {
  return over_params(g, [](const Tensor& t) {
    switch (t.dtype()) {
      case DType::kF32:
        return nonzero<float>(t);
      case DType::kF64:
        return nonzero<double>(t);
      case DType::kI8:
        return nonzero<int8_t>(t);
      case DType::kU8:
        return nonzero<uint8_t>(t);
      default:
        return nonzero<int32_t>(t);
    }
  });
}

ModelReport measure_model(const Graph& g, const data::Dataset* test,
                          const data::Normalization& norm, const nlohmann::json& metadata,
                          const MeasureOptions& opts) {
  ModelReport r;
  r.params = count_params(g);
  r.nonzero_params = count_nonzero_params(g);
  io::MnwContents c;
  c.graph = g;
  c.metadata = metadata;
  r.file_bytes = static_cast<int64_t>(io::serialize_mnw(c).size());
  for (const NodeStats& s : graph_stats(g)) r.macs += s.macs;
  if (test) r.test_acc = evaluate_model(g, *test, norm).accuracy;
  if (opts.measure_latency) {
    InferenceSession session(g);
    BenchOptions b;
    b.batch = 1;
    b.iters = opts.latency_iters;
    b.warmup = 20;
    r.latency_ms_p50 = benchmark_session(session, b).p50_ms;
  }
  return r;
}

nlohmann::json to_json(const ModelReport& r) {
  nlohmann::json j = {{"params", r.params},
                      {"nonzero_params", r.nonzero_params},
                      {"file_bytes", r.file_bytes},
                      {"macs", r.macs},
                      {"test_acc", r.test_acc < 0 ? nlohmann::json() : nlohmann::json(r.test_acc)},
                      {"latency_ms_p50", r.latency_ms_p50}};
  if (r.trainable_params >= 0) j["trainable_params"] = r.trainable_params;
  return j;
}

nlohmann::json before_after_json(const ModelReport& before, const ModelReport& after,
                                 const nlohmann::json& extra) {
  nlohmann::json j = extra.is_object() ? extra : nlohmann::json::object();
  j["before"] = to_json(before);
  j["after"] = to_json(after);
  return j;
}

void print_before_after(const ModelReport& b, const ModelReport& a) {
  auto row_i = [](const char* what, int64_t x, int64_t y) {
    std::printf("  %-16s %14lld %14lld   x%.2f\n", what, static_cast<long long>(x),
                static_cast<long long>(y),
                y ? static_cast<double>(x) / static_cast<double>(y) : 0.0);
  };
  std::printf("  %-16s %14s %14s   %s\n", "", "before", "after", "before/after");
  row_i("params", b.params, a.params);
  row_i("nonzero params", b.nonzero_params, a.nonzero_params);
  row_i("file bytes", b.file_bytes, a.file_bytes);
  row_i("MACs", b.macs, a.macs);
  if (b.trainable_params >= 0 || a.trainable_params >= 0) {
    auto cell = [](int64_t v) { return v < 0 ? std::string("-") : std::to_string(v); };
    std::printf("  %-16s %14s %14s\n", "trainable params", cell(b.trainable_params).c_str(),
                cell(a.trainable_params).c_str());
  }
  if (b.test_acc >= 0 || a.test_acc >= 0) {
    std::printf("  %-16s %14.4f %14.4f   %+.2f points\n", "test accuracy", b.test_acc, a.test_acc,
                100.0 * (a.test_acc - b.test_acc));
  }
  std::printf("  %-16s %14.4f %14.4f   x%.2f\n", "latency ms p50", b.latency_ms_p50,
              a.latency_ms_p50, a.latency_ms_p50 > 0 ? b.latency_ms_p50 / a.latency_ms_p50 : 0.0);
}

}  // namespace minnow::compress
