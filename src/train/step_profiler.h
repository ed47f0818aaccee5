// StepProfiler: per-node forward/backward wall time of a TrainingSession, for finding where a
// training step goes. Off unless the environment sets MINNOW_PROFILE (any value); then the
// session prints one table to stderr when it is destroyed: per node and direction the mean and
// the median time of a call (the median is what to compare between runs on a shared machine,
// where a few preempted calls move the mean). Costs one branch per node when off.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace minnow {

class StepProfiler {
 public:
  StepProfiler() : enabled_(std::getenv("MINNOW_PROFILE") != nullptr) {}
  ~StepProfiler() { print(); }
  StepProfiler(const StepProfiler&) = delete;
  StepProfiler& operator=(const StepProfiler&) = delete;

  bool enabled() const { return enabled_; }
  using Clock = std::chrono::steady_clock;

  // Adds the time since `start` to row `name` (forward or backward column).
  void add(const std::string& name, const std::string& op, bool backward, Clock::time_point start) {
    const double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
    Row* row = nullptr;
    for (Row& r : rows_) {
      if (r.name == name) row = &r;
    }
    if (!row) row = &rows_.emplace_back(Row{name, op, 0, 0, 0, {}, {}});
    (backward ? row->backward_us : row->forward_us) += us;
    (backward ? row->backward_calls : row->forward_calls).push_back(static_cast<float>(us));
    if (!backward) ++row->calls;
  }

 private:
  struct Row {
    std::string name, op;
    double forward_us, backward_us;
    int64_t calls;
    std::vector<float> forward_calls, backward_calls;  // the time of every call, in us
  };
  static double median(std::vector<float> v) {
    if (v.empty()) return 0;
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  }
  void print() const {
    if (!enabled_ || rows_.empty()) return;
    double total = 0;
    for (const Row& r : rows_) total += r.forward_us + r.backward_us;
    std::fprintf(stderr, "%-24s %-20s %8s %12s %12s %10s %10s %7s\n", "node", "op", "calls",
                 "fwd us/call", "bwd us/call", "fwd median", "bwd median", "share");
    for (const Row& r : rows_) {
      const double n = static_cast<double>(r.calls ? r.calls : 1);
      std::fprintf(stderr, "%-24s %-20s %8lld %12.1f %12.1f %10.1f %10.1f %6.1f%%\n",
                   r.name.c_str(), r.op.c_str(), static_cast<long long>(r.calls), r.forward_us / n,
                   r.backward_us / n, median(r.forward_calls), median(r.backward_calls),
                   100.0 * (r.forward_us + r.backward_us) / total);
    }
  }

  bool enabled_;
  std::vector<Row> rows_;
};

}  // namespace minnow
