#include "data/normalize.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "minnow/error.h"

namespace minnow::data {
namespace {

// Samples per partial sum: the unit of parallel work, independent of the thread count.
constexpr int64_t kBlock = 256;

// Sums f(v) over every value of every channel in fixed sample blocks, then adds the block
// results in order, so the totals are bit-identical for any number of threads.
template <class F>
std::vector<double> channel_sums(const float* x, int64_t n, int64_t channels, int64_t inner, F f) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<size_t>(blocks * channels), 0.0);
#pragma omp parallel for schedule(static) if (n * channels * inner > 100000)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t end = std::min(n, (b + 1) * kBlock);
    for (int64_t c = 0; c < channels; ++c) {
      double acc = 0.0;
      for (int64_t i = b * kBlock; i < end; ++i) {
        const float* p = x + (i * channels + c) * inner;
        // Four independent row accumulators: shorter dependency chains, same fixed order.
        double r[4] = {0.0, 0.0, 0.0, 0.0};
        int64_t k = 0;
        for (; k + 4 <= inner; k += 4) {
          for (int u = 0; u < 4; ++u) r[u] += f(p[k + u], c);
        }
        for (; k < inner; ++k) r[0] += f(p[k], c);
        acc += (r[0] + r[1]) + (r[2] + r[3]);
      }
      partial[b * channels + c] = acc;
    }
  }
  std::vector<double> total(static_cast<size_t>(channels), 0.0);
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t c = 0; c < channels; ++c) total[c] += partial[b * channels + c];
  }
  return total;
}

}  // namespace

int64_t num_channels(const Shape& sample_shape) {
  return sample_shape.size() >= 2 ? sample_shape[0] : 1;
}

Normalization compute_normalization(const Dataset& d) {
  if (!d.x.defined() || d.x.dtype() != DType::kF32 || d.x.rank() < 2) {
    throw Error("compute_normalization: x must be an f32 tensor [N, ...] with rank >= 2");
  }
  const int64_t n = d.size();
  if (n == 0) throw Error("compute_normalization: the dataset is empty");
  const int64_t channels = num_channels(d.sample_shape());
  const int64_t inner = channels ? d.x.numel() / (n * channels) : 0;
  if (channels == 0 || inner == 0) {
    throw Error("compute_normalization: samples of shape " + shape_str(d.sample_shape()) +
                " hold no values");
  }
  const float* x = d.x.f32();
  const double count = static_cast<double>(n) * static_cast<double>(inner);

  // Two passes (mean, then squared deviations) avoid the cancellation of E[v^2] - E[v]^2.
  std::vector<double> mean =
      channel_sums(x, n, channels, inner, [](float v, int64_t) { return static_cast<double>(v); });
  for (double& m : mean) m /= count;
  std::vector<double> var = channel_sums(x, n, channels, inner, [&](float v, int64_t c) {
    double dv = static_cast<double>(v) - mean[c];
    return dv * dv;
  });

  Normalization out;
  for (int64_t c = 0; c < channels; ++c) {
    double sd = std::sqrt(var[c] / count);
    out.mean.push_back(static_cast<float>(mean[c]));
    out.std.push_back(sd > 1e-12 ? static_cast<float>(sd) : 1.0f);
  }
  return out;
}

}  // namespace minnow::data
