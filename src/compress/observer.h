// Calibration observers (issue 6): the clipping range of one activation tensor, estimated from a
// stream of calibration batches in bounded memory.
//
// A HistogramObserver keeps a fixed number of equal-width bins, never the values, so calibrating
// on 10,000 samples takes the same memory as on 100. The bins have edges at integer multiples
// of a width w (so 0 is always an edge) and cover a window of consecutive multiples that always
// contains 0. When a batch reaches outside the window, the window first slides (free: no
// information lost) and, if the data no longer fits, w doubles and pairs of bins merge exactly
// (bin j becomes bin floor(j / 2)): re-binning never guesses how values were spread inside a bin,
// unlike interpolating schemes, so the counts are exactly those a histogram with the final width
// would have produced. The price of doubling is that the data may use only half the window, so
// the window holds 2 * bins bins: the data's range always spans about `bins` of them or more.
// Exact zeros are counted apart (they are exactly representable whatever the scale, so they carry
// no information about the range: ReLU outputs are often half zeros, and a spike at 0 would
// otherwise dominate the entropy search); min and max are tracked exactly.
//
// The methods (range()):
// - kMinMax: [min, max]. Never clips; one outlier stretches the step for every other value.
// - kPercentile: the p-th and (100 - p)-th percentiles (two-sided on signed data; on non-negative
//   data the lower end is 0), interpolated within a bin: drops a fixed fraction of outliers.
// - kEntropy: the threshold T minimising the KL divergence between the clipped distribution and
//   its quantized version, the calibration of "8-bit inference with TensorRT" (Migacz 2017), also
//   used by ncnn. Signed data: symmetric [-T, T] searched on the histogram of |x|; non-negative
//   data (ReLU outputs, u8 asymmetric): [0, T] on the data itself, as those implementations do.
//   Clipped mass piles into the last bin of the reference distribution but not of the quantized
//   one, so clipping is charged by how much distribution shape it destroys; it clips long thin
//   tails hard and a flat distribution hardly at all.
// - kMse: the threshold T minimising the expected squared error, quantization noise step^2 / 12
//   per unclipped value plus (|x| - T)^2 per clipped value, both estimated from the histogram
//   (values uniform within a bin). Same symmetric / non-negative choice as kEntropy. Optimises the
//   quantity the network actually sees, and clips less than kEntropy when outliers are heavy.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace minnow::compress {

enum class CalibrationMethod { kMinMax, kPercentile, kEntropy, kMse };

// "minmax", "percentile", "entropy", "mse"; throws minnow::Error for any other name.
CalibrationMethod calibration_method_from_name(std::string_view name);
const char* calibration_method_name(CalibrationMethod method);

// Streams values of one tensor; memory is O(bins) whatever the number of observations.
class HistogramObserver {
 public:
  // bins in [16, 2^24]; throws minnow::Error otherwise.
  explicit HistogramObserver(int bins = 2048);

  // Adds n values. NaN and +-inf are ignored (counted by ignored()): they have no place in a
  // finite range. Throws minnow::Error for n < 0 or a null x with n > 0.
  void observe(const float* x, int64_t n);

  // Exact extremes of the finite values seen (0 before any).
  float min() const { return count_ ? min_ : 0.0f; }
  float max() const { return count_ ? max_ : 0.0f; }
  int64_t count() const { return count_; }      // finite values observed (zeros included)
  int64_t ignored() const { return ignored_; }  // NaN and infinities skipped

  // The real-valued clipping range [lo, hi] for `method`; always contains 0, and lies within
  // [min(min(), 0), max(max(), 0)]. levels: the number of quantized values across the range
  // (256 for u8, 255 for symmetric i8), used by kEntropy and kMse. percentile in [50, 100], used
  // by kPercentile. An observer that saw no nonzero value gives [0, 0]. Throws minnow::Error for
  // levels < 2 or a percentile out of range.
  std::pair<float, float> range(CalibrationMethod method, int levels = 256,
                                double percentile = 99.99) const;

  // The resolution asked for: [min(min(), 0), max(max(), 0)] spans about this many bins or more.
  int bins() const { return static_cast<int>(hist_.size() / 2); }
  // Current bin width (0 before the first nonzero value).
  double bin_width() const { return inv_width_ > 0 ? 1.0 / inv_width_ : 0.0; }
  // Bytes held by this observer (object + bins); independent of how much was observed.
  size_t memory_bytes() const { return sizeof(*this) + hist_.capacity() * sizeof(int64_t); }

 private:
  int64_t index_of(double x) const { return static_cast<int64_t>(std::floor(x * inv_width_)); }
  // Makes the window hold every value in [min_, max_] (and 0), sliding and widening as needed.
  void fit();
  // Counts of |x| (signed data) or x (non-negative data) in bins [j w, (j + 1) w), j = 0..K-1,
  // exact zeros excluded.
  std::vector<double> one_sided() const;
  double quantile(double q) const;
  float entropy_threshold(const std::vector<double>& h, int target_bins) const;
  float mse_threshold(const std::vector<double>& h, double steps) const;

  std::vector<int64_t> hist_;  // hist_[i]: values with floor(x / w) == first_ + i
  int64_t first_ = 0;          // index of the first bin; first_ <= 0 < first_ + hist_.size()
  double inv_width_ = 0;       // 1 / w; 0 until the first nonzero value
  float min_ = 0, max_ = 0;
  int64_t count_ = 0, zeros_ = 0, ignored_ = 0;
};

}  // namespace minnow::compress
