#include "runtime/benchmark.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "core/rng.h"
#include "minnow/error.h"

namespace minnow {

std::map<std::string, Tensor> synthetic_feeds(const std::vector<ValueInfo>& inputs, int64_t batch,
                                              uint64_t seed) {
  Rng rng(seed);
  std::map<std::string, Tensor> feeds;
  for (const ValueInfo& v : inputs) {
    Shape shape = v.shape;
    for (int64_t& d : shape) {
      if (d == kDynamic) d = batch;
    }
    Tensor t(v.dtype, shape);
    if (v.dtype == DType::kF32) {
      float* p = t.f32();
      for (int64_t i = 0; i < t.numel(); ++i) p[i] = rng.uniform(-1.0f, 1.0f);
    } else if (v.dtype == DType::kI64) {
      int64_t* p = t.data<int64_t>();
      std::fill(p, p + t.numel(), int64_t{1});
    } else {
      throw Error("input '" + v.name + "' has dtype " + std::string(dtype_name(v.dtype)) +
                  "; synthetic inputs are f32 or i64");
    }
    feeds.emplace(v.name, std::move(t));
  }
  return feeds;
}

BenchResult benchmark_session(InferenceSession& session, const BenchOptions& o) {
  if (o.batch < 1) throw Error("--batch must be >= 1, got " + std::to_string(o.batch));
  if (o.warmup < 0) throw Error("--warmup must be >= 0, got " + std::to_string(o.warmup));
  if (o.iters < 1) throw Error("--iters must be >= 1, got " + std::to_string(o.iters));
  const std::map<std::string, Tensor> feeds = synthetic_feeds(session.inputs(), o.batch, o.seed);
  // A session first times runs on all threads against runs on one (runtime/threads_choice.h);
  // warm-up goes on until it has chosen (at most a second), so that the timed runs are the ones
  // a long-running caller gets: a compression report's 200 runs at 0.03 ms would otherwise all
  // fall before the choice.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < o.warmup || (o.warmup > 0 && !session.threads_chosen(o.batch)); ++i) {
    if (i >= o.warmup && std::chrono::steady_clock::now() - start > std::chrono::seconds(1)) break;
    session.run(feeds);
  }
  std::vector<double> ms(o.iters);
  for (int i = 0; i < o.iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    session.run(feeds);
    ms[i] =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  BenchResult r;
  r.batch = o.batch;
  r.iters = o.iters;
  r.mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / o.iters;
  std::sort(ms.begin(), ms.end());
  // Nearest rank: the smallest value with at least q of the runs at or below it.
  auto pct = [&](double q) {
    const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(ms.size())));
    return ms[std::clamp<size_t>(rank, 1, ms.size()) - 1];
  };
  r.p50_ms = pct(0.50);
  r.p90_ms = pct(0.90);
  r.p99_ms = pct(0.99);
  r.min_ms = ms.front();
  r.samples_per_s = r.mean_ms > 0 ? 1000.0 * static_cast<double>(o.batch) / r.mean_ms : 0.0;
  return r;
}

int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;  // Linux reports kilobytes
}

}  // namespace minnow
