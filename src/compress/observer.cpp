#include "compress/observer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "minnow/error.h"

namespace minnow::compress {
namespace {

// floor(j / 2^shift) for any shift (a shift past 62 sends every bin to -1 or 0).
int64_t floor_shift(int64_t j, int shift) {
  if (shift == 0) return j;
  if (shift >= 62) return j < 0 ? -1 : 0;
  return j >> shift;  // arithmetic shift: floor division for negative j too (C++20)
}

// Below this, a quantized distribution is treated as having no mass in a bin where the reference
// has some: a finite stand-in for an infinite KL term, large enough to rule such a threshold out.
constexpr double kKlEpsilon = 1e-12;

}  // namespace

CalibrationMethod calibration_method_from_name(std::string_view name) {
  if (name == "minmax") return CalibrationMethod::kMinMax;
  if (name == "percentile") return CalibrationMethod::kPercentile;
  if (name == "entropy") return CalibrationMethod::kEntropy;
  if (name == "mse") return CalibrationMethod::kMse;
  throw Error("unknown calibration method '" + std::string(name) +
              "' (expected minmax, percentile, entropy or mse)");
}

const char* calibration_method_name(CalibrationMethod method) {
  switch (method) {
    case CalibrationMethod::kMinMax:
      return "minmax";
    case CalibrationMethod::kPercentile:
      return "percentile";
    case CalibrationMethod::kEntropy:
      return "entropy";
    case CalibrationMethod::kMse:
      return "mse";
  }
  return "unknown";
}

HistogramObserver::HistogramObserver(int bins) {
  if (bins < 16 || bins > (1 << 24)) {
    throw Error("HistogramObserver: bins must be in [16, 16777216], got " + std::to_string(bins));
  }
  hist_.assign(2 * static_cast<size_t>(bins), 0);
}

void HistogramObserver::observe(const float* x, int64_t n) {
  if (n < 0) throw Error("HistogramObserver::observe: negative count " + std::to_string(n));
  if (n == 0) return;
  if (x == nullptr) throw Error("HistogramObserver::observe: null data for " + std::to_string(n));
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  int64_t nonzero = 0, zeros = 0, bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (!std::isfinite(v)) {
      ++bad;
    } else if (v == 0) {
      ++zeros;
    } else {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      ++nonzero;
    }
  }
  ignored_ += bad;
  if (nonzero + zeros == 0) return;
  float bmin = lo, bmax = hi;
  if (zeros) {
    bmin = std::min(bmin, 0.0f);
    bmax = std::max(bmax, 0.0f);
  }
  min_ = count_ ? std::min(min_, bmin) : bmin;
  max_ = count_ ? std::max(max_, bmax) : bmax;
  count_ += nonzero + zeros;
  zeros_ += zeros;
  if (nonzero == 0) return;
  fit();
  const int64_t last = static_cast<int64_t>(hist_.size()) - 1;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (!std::isfinite(v) || v == 0) continue;
    // fit() made the window hold index_of(min_..max_); the clamp only guards against that promise
    // being broken by rounding.
    ++hist_[static_cast<size_t>(std::clamp(index_of(v) - first_, int64_t{0}, last))];
  }
}

void HistogramObserver::fit() {
  const auto size = static_cast<int64_t>(hist_.size());
  // The window must hold every value seen so far (min_ / max_ include the new batch) and 0.
  const double gl = std::min(static_cast<double>(min_), 0.0);
  const double gh = std::max(static_cast<double>(max_), 0.0);
  double inv = inv_width_;
  if (inv == 0) {
    // First nonzero data: spread it over all but two bins (the floors may need one more each).
    // gh - gl > 0 here; even for a subnormal span the double inverse is finite.
    inv = static_cast<double>(size - 2) / (gh - gl);
  }
  int shift = 0;
  while (std::floor(gh * inv) - std::floor(gl * inv) + 1 > static_cast<double>(size)) {
    inv *= 0.5;  // exact: a histogram with width 2w is the pairwise merge of one with width w
    ++shift;
  }
  const auto jlo = static_cast<int64_t>(std::floor(gl * inv));
  const auto jhi = static_cast<int64_t>(std::floor(gh * inv));
  if (inv_width_ != 0 && shift == 0 && first_ <= jlo && jhi < first_ + size) return;
  // Centre the slack so that growth on either side is absorbed by a slide before a merge.
  const int64_t first = jlo - (size - (jhi - jlo + 1)) / 2;
  std::vector<int64_t> moved(hist_.size(), 0);
  for (int64_t i = 0; i < size; ++i) {
    const int64_t c = hist_[static_cast<size_t>(i)];
    if (c == 0) continue;
    const int64_t j = floor_shift(first_ + i, shift) - first;
    moved[static_cast<size_t>(std::clamp(j, int64_t{0}, size - 1))] += c;
  }
  hist_.swap(moved);
  first_ = first;
  inv_width_ = inv;
}

std::vector<double> HistogramObserver::one_sided() const {
  const bool is_signed = min_ < 0;
  int64_t k = 0;
  for (size_t i = 0; i < hist_.size(); ++i) {
    if (hist_[i] == 0) continue;
    const int64_t j = first_ + static_cast<int64_t>(i);
    // Bin [j w, (j + 1) w) with j < 0 holds |x| in (-(j + 1) w, -j w]: bin -j - 1 of |x|.
    k = std::max(k, j >= 0 ? j + 1 : -j);
  }
  std::vector<double> h(static_cast<size_t>(k), 0.0);
  for (size_t i = 0; i < hist_.size(); ++i) {
    if (hist_[i] == 0) continue;
    const int64_t j = first_ + static_cast<int64_t>(i);
    if (j < 0 && !is_signed) continue;  // cannot happen: no negative value was seen
    h[static_cast<size_t>(j >= 0 ? j : -j - 1)] += static_cast<double>(hist_[i]);
  }
  return h;
}

double HistogramObserver::quantile(double q) const {
  if (q <= 0) return min_;
  if (q >= 1) return max_;
  // The value of (0-based) rank q (count - 1), as numpy's default quantile. Walk the bins in
  // order, the zeros sitting as a point mass between bins -1 and 0; within a bin of c values
  // taken as evenly spread, rank r sits at the fraction (r - before + 0.5) / c of its width. The
  // outer bins are narrowed to [min, max], where the extremes are known exactly.
  const double target = q * static_cast<double>(count_ - 1) + 0.5;
  const double w = 1.0 / inv_width_;
  double cum = 0;
  bool zeros_done = zeros_ == 0;
  for (size_t i = 0; i < hist_.size(); ++i) {
    const int64_t j = first_ + static_cast<int64_t>(i);
    if (!zeros_done && j == 0) {
      cum += static_cast<double>(zeros_);
      zeros_done = true;
      if (cum >= target) return 0.0;
    }
    const auto c = static_cast<double>(hist_[i]);
    if (c == 0) continue;
    if (cum + c >= target) {
      const double left = std::max(static_cast<double>(j) * w, static_cast<double>(min_));
      const double right = std::min(static_cast<double>(j + 1) * w, static_cast<double>(max_));
      const double t = std::clamp((target - cum) / c, 0.0, 1.0);
      return left + t * (right - left);
    }
    cum += c;
  }
  return static_cast<double>(max_);  // only reached through rounding of the running sum
}

// TensorRT's entropy calibration, from the description in Migacz 2017. For each candidate
// threshold of i bins (i from target_bins to all): the reference P is the histogram's first i bins
// with everything beyond added to bin i - 1 (what clipping does); the candidate Q quantizes the
// first i bins (unclipped) into target_bins equal intervals and spreads each interval's mass
// evenly back over its nonzero bins (a bin that was empty stays empty: quantization does not
// create values). The threshold with the smallest KL(P || Q) wins. Intervals are fractional when
// target_bins does not divide i (ncnn's refinement of TensorRT's integer merging): a bin that
// straddles two intervals contributes to each in proportion to its overlap.
//
// KL(P || Q) = sum p log p - sum p log q. The first sum comes from prefix sums of h log h. In the
// second, q is the same for every bin lying wholly inside one interval, so those bins are summed
// per interval and only the straddling bins need their own logarithm: a candidate costs O(i)
// additions and O(target_bins) logarithms.
float HistogramObserver::entropy_threshold(const std::vector<double>& h, int target_bins) const {
  const auto k = static_cast<int64_t>(h.size());
  const int64_t nq = target_bins;
  const double w = 1.0 / inv_width_;
  int64_t best_i = k;
  if (k > nq) {
    std::vector<double> sum(static_cast<size_t>(k) + 1, 0.0), hlogh(sum.size(), 0.0);
    for (int64_t j = 0; j < k; ++j) {
      sum[j + 1] = sum[j] + h[j];
      hlogh[j + 1] = hlogh[j] + (h[j] > 0 ? h[j] * std::log(h[j]) : 0.0);
    }
    const double total = sum[k];
    const double log_total = std::log(total);
    std::vector<double> mass(static_cast<size_t>(nq)), support(mass.size()), psum(mass.size());
    std::vector<int64_t> first_q(static_cast<size_t>(k));  // interval holding bin j's left part
    std::vector<double> first_f(static_cast<size_t>(k));   // the fraction of bin j in it
    double best_kl = std::numeric_limits<double>::infinity();
    for (int64_t i = nq; i <= k; ++i) {
      const double kept = sum[i];  // Q's total: the unclipped bins
      if (kept == 0) continue;     // everything clipped: Q is empty, the divergence infinite
      std::fill(mass.begin(), mass.end(), 0.0);
      std::fill(support.begin(), support.end(), 0.0);
      std::fill(psum.begin(), psum.end(), 0.0);
      // In units of 1 / nq of a bin, bin j is [j nq, (j + 1) nq) and interval q is
      // [q i, (q + 1) i); as i >= nq, a bin overlaps at most two intervals.
      int64_t q = 0, edge = i;
      for (int64_t j = 0; j < i; ++j) {
        const int64_t lo = j * nq;
        if (lo >= edge) {
          ++q;
          edge += i;
        }
        const double f =
            static_cast<double>(std::min(lo + nq, edge) - lo) / static_cast<double>(nq);
        first_q[j] = q;
        first_f[j] = f;
        if (h[j] == 0) continue;
        mass[q] += f * h[j];
        support[q] += f;
        if (f < 1) {
          mass[q + 1] += (1 - f) * h[j];
          support[q + 1] += 1 - f;
        }
      }
      // q_j (before dividing by kept) for bin j: its share of each interval's mass.
      auto q_of = [&](int64_t j) {
        const int64_t a = first_q[j];
        const double f = first_f[j];
        double v = f * mass[a] / support[a];
        if (f < 1) v += (1 - f) * mass[a + 1] / support[a + 1];
        return v / kept;
      };
      double cross = 0;  // sum over bins before the last of h_j log q_j
      for (int64_t j = 0; j + 1 < i; ++j) {
        if (h[j] == 0) continue;
        if (first_f[j] == 1) {
          psum[first_q[j]] += h[j];
        } else {
          cross += h[j] * std::log(q_of(j));
        }
      }
      for (int64_t a = 0; a < nq; ++a) {
        if (psum[a] > 0) cross += psum[a] * std::log(mass[a] / support[a] / kept);
      }
      // sum p log p over bins before the last, p = h / total.
      double kl = (hlogh[i - 1] - log_total * sum[i - 1]) / total - cross / total;
      // The last bin holds itself and everything clipped.
      const double p_last = (h[i - 1] + total - sum[i]) / total;
      if (p_last > 0) {
        const double q_last = h[i - 1] > 0 ? q_of(i - 1) : 0.0;
        kl += p_last * (std::log(p_last) - std::log(std::max(q_last, kKlEpsilon)));
      }
      // Strictly smaller: among equal divergences the widest threshold (least clipping) wins.
      if (kl < best_kl) {
        best_kl = kl;
        best_i = i;
      }
    }
  }
  return static_cast<float>(static_cast<double>(best_i) * w);
}

// Expected squared error of clipping |x| (or x) at T = i w with `steps` quantization steps in
// [0, T]: unclipped values get rounding noise step^2 / 12; a bin [j w, (j + 1) w) above T, its
// values taken as uniform, adds w^2 ((j - i)^2 + (j - i) + 1/3) per value. The last candidate is
// the data's extreme itself (no clipping).
float HistogramObserver::mse_threshold(const std::vector<double>& h, double steps) const {
  const auto k = static_cast<int64_t>(h.size());
  const double w = 1.0 / inv_width_;
  const double top = std::max(-static_cast<double>(min_), static_cast<double>(max_));
  double best = std::numeric_limits<double>::infinity();
  double best_t = top;
  double inside = 0;
  for (int64_t i = 1; i <= k; ++i) {
    inside += h[i - 1];
    const double t = i == k ? top : std::min(static_cast<double>(i) * w, top);
    const double step = t / steps;
    double clip = 0;
    for (int64_t j = i; j < k; ++j) {
      const auto m = static_cast<double>(j - i);
      clip += h[j] * (m * m + m + 1.0 / 3.0);
    }
    const double err = inside * step * step / 12.0 + clip * w * w;
    if (err < best) {
      best = err;
      best_t = t;
    }
  }
  return static_cast<float>(best_t);
}

std::pair<float, float> HistogramObserver::range(CalibrationMethod method, int levels,
                                                 double percentile) const {
  if (levels < 2) {
    throw Error("HistogramObserver::range: levels must be >= 2, got " + std::to_string(levels));
  }
  if (method == CalibrationMethod::kPercentile && !(percentile >= 50 && percentile <= 100)) {
    throw Error("HistogramObserver::range: percentile must be in [50, 100], got " +
                std::to_string(percentile));
  }
  const float lo_all = std::min(min(), 0.0f), hi_all = std::max(max(), 0.0f);
  if (count_ == zeros_) return {0.0f, 0.0f};
  const bool is_signed = min_ < 0;
  switch (method) {
    case CalibrationMethod::kMinMax:
      return {lo_all, hi_all};
    case CalibrationMethod::kPercentile: {
      const double p = percentile / 100.0;
      const double lo = is_signed ? quantile(1.0 - p) : 0.0;
      const double hi = quantile(p);
      return {std::clamp(static_cast<float>(lo), lo_all, 0.0f),
              std::clamp(static_cast<float>(hi), 0.0f, hi_all)};
    }
    case CalibrationMethod::kEntropy:
    case CalibrationMethod::kMse: {
      const std::vector<double> h = one_sided();
      // Signed data is clipped symmetrically, so only half the levels lie on the |x| side.
      float t;
      if (method == CalibrationMethod::kEntropy) {
        t = entropy_threshold(h, is_signed ? (levels + 1) / 2 : levels);
      } else {
        t = mse_threshold(h, is_signed ? (levels - 1) / 2.0 : levels - 1.0);
      }
      // A symmetric threshold beyond one side's extreme is cut to it: those levels would never
      // be used by a u8 range, and max(|lo|, |hi|) is still t for a symmetric i8 choice.
      return {std::clamp(-t, lo_all, 0.0f), std::clamp(t, 0.0f, hi_all)};
    }
  }
  throw Error("HistogramObserver::range: unknown calibration method");
}

}  // namespace minnow::compress
