#include "compress/calibrate.h"

#include <algorithm>
#include <memory>
#include <set>

#include "data/loader.h"
#include "minnow/error.h"
#include "runtime/inference_session.h"

namespace minnow::compress {

namespace {

void add_channel_sums(const Tensor& t, std::vector<double>& sums) {
  const int64_t n = t.dim(0), c = t.dim(1), plane = t.dim(2) * t.dim(3);
  sums.resize(static_cast<size_t>(c), 0.0);
  const float* p = t.f32();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t ch = 0; ch < c; ++ch, p += plane) {
      double s = 0;
      for (int64_t k = 0; k < plane; ++k) s += p[k];
      sums[static_cast<size_t>(ch)] += s;
    }
  }
}

}  // namespace

Calibration calibrate(const Graph& graph, const data::Dataset& data,
                      const data::Normalization& norm, const CalibrationOptions& opts) {
  if (opts.samples <= 0) throw Error("--calib-samples must be positive");
  if (data.size() == 0) throw Error("the calibration data is empty");
  if (opts.batch <= 0) throw Error("calibration batch must be positive");
  // Every f32 value becomes a graph output, so that one inference run shows them all. The
  // session's rewrites keep output names, so these are the values the graph itself computes.
  Graph probe = graph;
  const std::map<std::string, ValueInfo> info = graph.infer_shapes();
  std::vector<std::string> observed;
  std::set<std::string> is_output;
  for (const ValueInfo& v : graph.outputs) is_output.insert(v.name);
  for (const ValueInfo& v : graph.inputs) {
    if (v.dtype == DType::kF32) observed.push_back(v.name);
  }
  for (const Node& n : graph.nodes) {
    for (const std::string& o : n.outputs) {
      const ValueInfo& v = info.at(o);
      if (v.dtype != DType::kF32) continue;
      observed.push_back(o);
      if (!is_output.count(o)) probe.outputs.push_back(v);
    }
  }
  InferenceSession session(std::move(probe));
  std::map<std::string, size_t> slot;  // value -> index in the session's outputs
  for (size_t i = 0; i < session.outputs().size(); ++i) slot[session.outputs()[i].name] = i;
  if (session.inputs().empty() || session.inputs().size() > 2) {
    throw Error("calibration feeds models with one input (or token ids plus lengths), '" +
                graph.name + "' has " + std::to_string(session.inputs().size()));
  }

  std::vector<std::unique_ptr<HistogramObserver>> observers;
  for (size_t i = 0; i < observed.size(); ++i) {
    observers.push_back(std::make_unique<HistogramObserver>(opts.bins));
  }
  const int64_t total = std::min(opts.samples, data.size());
  data::BatchLoader loader(data, std::min(opts.batch, total), true, norm, data::AugmentOptions{},
                           opts.seed, false);
  loader.start_epoch(0);
  data::Batch b;
  int64_t seen = 0;
  std::map<std::string, Tensor> feeds;
  std::map<std::string, std::vector<double>> sums;  // per-channel sums of 4-d values
  while (seen < total && loader.next(b)) {
    Tensor x = b.x;
    const int64_t take = std::min(b.size, total - seen);
    if (take < b.size) {  // the last batch is cut to the requested sample count
      Shape s = x.shape();
      s[0] = take;
      x = Tensor(x.dtype(), s);
      std::copy_n(static_cast<const std::byte*>(b.x.raw()), x.nbytes(),
                  static_cast<std::byte*>(x.raw()));
    }
    feeds[session.inputs()[0].name] = x;
    if (session.inputs().size() == 2) {
      if (!b.lengths.defined()) throw Error("model takes two inputs but the data has no lengths");
      Tensor len = b.lengths;
      if (take < b.size) {
        len = Tensor(DType::kI64, {take});
        std::copy_n(b.lengths.data<int64_t>(), take, len.data<int64_t>());
      }
      feeds[session.inputs()[1].name] = len;
    }
    const std::vector<Tensor>& outs = session.run(feeds);
    for (size_t i = 0; i < observed.size(); ++i) {
      const Tensor& t = observed[i] == session.inputs()[0].name ? x : outs[slot.at(observed[i])];
      observers[i]->observe(t.f32(), t.numel());
      if (t.rank() == 4) add_channel_sums(t, sums[observed[i]]);
    }
    seen += take;
  }
  Calibration c;
  c.samples = seen;
  for (auto& [name, sum] : sums) {
    const double per_channel = static_cast<double>(seen) *
                               static_cast<double>(info.at(name).shape[2]) *
                               static_cast<double>(info.at(name).shape[3]);
    for (double& v : sum) v /= std::max(per_channel, 1.0);
    c.channel_means[name] = std::move(sum);
  }
  for (size_t i = 0; i < observed.size(); ++i) {
    const HistogramObserver& o = *observers[i];
    auto [lo, hi] = o.range(opts.method, 256, opts.percentile);
    c.ranges[observed[i]] = ValueRange{lo, hi};
    c.observer_bytes += o.memory_bytes();
  }
  return c;
}

}  // namespace minnow::compress
