#include "train/evaluate_runtime.h"

#include <chrono>
#include <cmath>

#include "data/loader.h"
#include "minnow/error.h"
#include "runtime/inference_session.h"
#include "train/metrics.h"

namespace minnow {
namespace {

double cross_entropy_sum(const Tensor& logits, const Tensor& labels) {
  const int64_t n = logits.dim(0), k = logits.numel() / std::max<int64_t>(n, 1);
  const float* z = logits.f32();
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = z + i * k;
    double m = row[0], s = 0;
    for (int64_t j = 1; j < k; ++j) m = std::max<double>(m, row[j]);
    for (int64_t j = 0; j < k; ++j) s += std::exp(row[j] - m);
    sum += m + std::log(s) - row[labels.data<int64_t>()[i]];
  }
  return sum;
}

}  // namespace

EvalResult evaluate_with_runtime(const Graph& graph, const data::Dataset& d,
                                 const data::Normalization& norm, int64_t batch) {
  if (batch <= 0) throw Error("evaluation batch must be positive");
  InferenceSession session(graph);
  if (session.outputs().empty() || session.outputs()[0].dtype != DType::kF32) {
    throw Error("model '" + graph.name + "': its first output must be f32 logits");
  }
  const size_t inputs = session.inputs().size();
  if (inputs == 0 || inputs > 2) {
    throw Error("model '" + graph.name + "' takes " + std::to_string(inputs) +
                " inputs; evaluation feeds samples (and sequence lengths)");
  }
  data::BatchLoader loader(d, batch, false, norm, data::AugmentOptions{}, 0, true);
  loader.start_epoch(0);
  data::Batch b;
  EvalResult r;
  double loss_sum = 0;
  int64_t correct = 0;
  std::map<std::string, Tensor> feeds;
  const auto t0 = std::chrono::steady_clock::now();
  while (loader.next(b)) {
    feeds[session.inputs()[0].name] = b.x;
    if (inputs == 2) feeds[session.inputs()[1].name] = b.lengths;
    const Tensor& logits = session.run(feeds)[0];
    if (logits.rank() != 2 || logits.dim(0) != b.size) {
      throw Error("model '" + graph.name + "': output " + shape_str(logits.shape()) +
                  " is not [batch, classes] logits");
    }
    loss_sum += cross_entropy_sum(logits, b.y);
    correct += count_correct(logits, b.y);
    r.samples += b.size;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (r.samples == 0) throw Error("evaluation dataset is empty");
  r.loss = loss_sum / static_cast<double>(r.samples);
  r.accuracy = static_cast<double>(correct) / static_cast<double>(r.samples);
  return r;
}

}  // namespace minnow
