// Calibration observers and range -> quantization parameter choices: known distributions
// (uniform, gaussian with outliers, half-normal ReLU outputs, all zeros, one value, ranges that
// grow between batches), bounded memory, and per-channel weight quantization.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "compress/observer.h"
#include "core/rng.h"
#include "minnow/error.h"
#include "passes/quant_range.h"

namespace minnow::compress {
namespace {

constexpr CalibrationMethod kAll[] = {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile,
                                      CalibrationMethod::kEntropy, CalibrationMethod::kMse};

std::vector<float> uniform(int64_t n, float lo, float hi, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = rng.uniform(lo, hi);
  return v;
}

std::vector<float> gaussian(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = rng.normal();
  return v;
}

// Observes v in batches of `batch` values, as a calibration loop over samples would.
void feed(HistogramObserver& o, const std::vector<float>& v, int64_t batch = 1000) {
  for (size_t i = 0; i < v.size(); i += static_cast<size_t>(batch)) {
    o.observe(v.data() + i, std::min<int64_t>(batch, static_cast<int64_t>(v.size() - i)));
  }
}

// The exact q-quantile of the data (linear interpolation between order statistics).
double exact_quantile(std::vector<float> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto i = static_cast<size_t>(std::floor(pos));
  const size_t j = std::min(i + 1, v.size() - 1);
  return v[i] + (pos - static_cast<double>(i)) * (v[j] - v[i]);
}

// Mean squared error of quantizing v to u8 with the range [lo, hi] (quantize-dequantize as the
// QDQ graph does: f32 division, round half to even, saturate).
double u8_error(const std::vector<float>& v, std::pair<float, float> r) {
  const QuantChoice c = choose_u8_asymmetric(r.first, r.second);
  double sum = 0;
  for (float x : v) {
    const float q =
        std::clamp(std::nearbyint(x / c.scale) + static_cast<float>(c.zero_point), 0.0f, 255.0f);
    const double d = (q - static_cast<float>(c.zero_point)) * c.scale - x;
    sum += d * d;
  }
  return sum / static_cast<double>(v.size());
}

TEST(CalibrationMethod, NamesRoundTripAndUnknownThrows) {
  for (CalibrationMethod m : kAll) {
    EXPECT_EQ(calibration_method_from_name(calibration_method_name(m)), m);
  }
  EXPECT_EQ(calibration_method_from_name("entropy"), CalibrationMethod::kEntropy);
  EXPECT_THROW(calibration_method_from_name("kl"), Error);
  EXPECT_THROW(calibration_method_from_name(""), Error);
  EXPECT_THROW(calibration_method_from_name("MinMax"), Error);
}

TEST(HistogramObserver, BadArgumentsThrow) {
  EXPECT_THROW(HistogramObserver(4), Error);
  EXPECT_THROW(HistogramObserver(-1), Error);
  HistogramObserver o;
  EXPECT_THROW(o.observe(nullptr, 3), Error);
  const float x[] = {1.0f, -2.0f};
  EXPECT_THROW(o.observe(x, -1), Error);
  o.observe(nullptr, 0);  // nothing to read: fine
  o.observe(x, 2);
  EXPECT_THROW(o.range(CalibrationMethod::kEntropy, 1), Error);
  EXPECT_THROW(o.range(CalibrationMethod::kPercentile, 256, 30.0), Error);
  EXPECT_THROW(o.range(CalibrationMethod::kPercentile, 256, 100.5), Error);
  EXPECT_THROW(o.range(CalibrationMethod::kPercentile, 256, std::nan("")), Error);
}

TEST(HistogramObserver, MinMaxIsExactAndIgnoresNonFinite) {
  std::vector<float> v = uniform(20001, -1.3f, 2.7f, 1);
  v[17] = std::numeric_limits<float>::quiet_NaN();
  v[18] = std::numeric_limits<float>::infinity();
  v[19] = -std::numeric_limits<float>::infinity();
  HistogramObserver o;
  feed(o, v, 333);
  float mn = std::numeric_limits<float>::infinity(), mx = -mn;
  for (float x : v) {
    if (std::isfinite(x)) {
      mn = std::min(mn, x);
      mx = std::max(mx, x);
    }
  }
  EXPECT_EQ(o.count(), 20001 - 3);
  EXPECT_EQ(o.ignored(), 3);
  EXPECT_EQ(o.min(), mn);
  EXPECT_EQ(o.max(), mx);
  const auto r = o.range(CalibrationMethod::kMinMax);
  EXPECT_EQ(r.first, mn);
  EXPECT_EQ(r.second, mx);
  // Positive data: the range is widened to 0.
  HistogramObserver p;
  const float pos[] = {2.0f, 5.0f, 3.0f};
  p.observe(pos, 3);
  EXPECT_EQ(p.range(CalibrationMethod::kMinMax), std::make_pair(0.0f, 5.0f));
}

TEST(HistogramObserver, PercentileWithinOneBin) {
  const std::vector<float> v = gaussian(200001, 2);
  HistogramObserver o;
  feed(o, v, 4096);
  for (double p : {99.0, 99.9, 99.99}) {
    const auto r = o.range(CalibrationMethod::kPercentile, 256, p);
    EXPECT_NEAR(r.first, exact_quantile(v, 1 - p / 100), o.bin_width()) << p;
    EXPECT_NEAR(r.second, exact_quantile(v, p / 100), o.bin_width()) << p;
  }
  const auto all = o.range(CalibrationMethod::kPercentile, 256, 100.0);
  EXPECT_EQ(all.first, o.min());
  EXPECT_EQ(all.second, o.max());
  // The bins are fine enough for "within one bin" to mean something.
  EXPECT_LT(o.bin_width(), (o.max() - o.min()) / 2000.0);
}

TEST(HistogramObserver, PercentileOnReluOutputCountsZerosAndStartsAtZero) {
  std::vector<float> v = gaussian(100001, 3);
  for (float& x : v) x = std::max(x, 0.0f);  // half of it exact zeros
  HistogramObserver o;
  feed(o, v);
  for (double p : {50.0, 75.0, 99.9}) {
    const auto r = o.range(CalibrationMethod::kPercentile, 256, p);
    EXPECT_EQ(r.first, 0.0f);
    EXPECT_NEAR(r.second, exact_quantile(v, p / 100), o.bin_width()) << p;
  }
  // A median inside the zeros is 0 exactly.
  v = uniform(50001, 0.5f, 1.0f, 8);
  std::fill(v.begin(), v.begin() + 25001, 0.0f);
  HistogramObserver z;
  feed(z, v);
  EXPECT_EQ(z.range(CalibrationMethod::kPercentile, 256, 50.0).second, 0.0f);
  EXPECT_GT(z.range(CalibrationMethod::kPercentile, 256, 51.0).second, 0.0f);
}

TEST(HistogramObserver, EntropyAndMseClipOutliersOfAGaussian) {
  // A million standard normal values and two outliers at 30 and 40 sigma.
  std::vector<float> v = gaussian(1000001, 4);
  v[7] = 40.0f;
  v[8] = -30.0f;
  HistogramObserver o;
  feed(o, v, 10000);
  const auto mm = o.range(CalibrationMethod::kMinMax);
  for (CalibrationMethod m : {CalibrationMethod::kEntropy, CalibrationMethod::kMse}) {
    const auto r = o.range(m);
    SCOPED_TRACE(calibration_method_name(m));
    // Clips the outliers but not the bulk of the gaussian.
    EXPECT_LT(r.second, 0.5f * mm.second);
    EXPECT_GT(r.second, 3.5f);
    EXPECT_FLOAT_EQ(r.first, -r.second);  // signed data: symmetric
    // And quantizes the data better than the full range does.
    EXPECT_LT(u8_error(v, r), 0.5 * u8_error(v, mm));
  }
  // MSE-optimal clipping is at least as good as the others by the measure it optimises.
  for (CalibrationMethod m : kAll) {
    EXPECT_LE(u8_error(v, o.range(CalibrationMethod::kMse)), 1.01 * u8_error(v, o.range(m)))
        << calibration_method_name(m);
  }
}

TEST(HistogramObserver, EntropyAndMseHardlyClipAUniform) {
  for (bool signed_data : {true, false}) {
    const std::vector<float> v = uniform(200000, signed_data ? -2.0f : 0.0f, 2.0f, 6);
    HistogramObserver o;
    feed(o, v);
    for (CalibrationMethod m : {CalibrationMethod::kEntropy, CalibrationMethod::kMse}) {
      SCOPED_TRACE(std::string(calibration_method_name(m)) + (signed_data ? " signed" : ""));
      const auto r = o.range(m);
      EXPECT_GT(r.second, 0.97f * o.max());
      EXPECT_LE(r.second, o.max());
      if (signed_data) {
        EXPECT_LT(r.first, 0.97f * o.min());
      } else {
        EXPECT_EQ(r.first, 0.0f);
      }
    }
  }
}

TEST(HistogramObserver, ReluOutputUsesTheNonNegativeSideAndIgnoresZeros) {
  std::vector<float> v = gaussian(1000000, 7);
  for (float& x : v) x = std::fabs(x);
  v[11] = 30.0f;  // one outlier
  HistogramObserver o, with_zeros;
  feed(o, v);
  feed(with_zeros, v);
  const std::vector<float> zeros(3000000, 0.0f);
  feed(with_zeros, zeros, 100000);
  EXPECT_EQ(with_zeros.count(), o.count() + 3000000);
  for (CalibrationMethod m : {CalibrationMethod::kEntropy, CalibrationMethod::kMse}) {
    SCOPED_TRACE(calibration_method_name(m));
    const auto r = o.range(m);
    EXPECT_EQ(r.first, 0.0f);
    EXPECT_LT(r.second, 18.0f);
    EXPECT_GT(r.second, 3.5f);
    // Exact zeros are representable at any scale and do not move the threshold.
    EXPECT_EQ(with_zeros.range(m), r);
  }
}

TEST(HistogramObserver, AllZerosGiveAnEmptyRangeAndAUsableScale) {
  HistogramObserver o;
  const std::vector<float> zeros(1000, 0.0f);
  feed(o, zeros, 100);
  EXPECT_EQ(o.count(), 1000);
  for (CalibrationMethod m : kAll) {
    const auto r = o.range(m);
    EXPECT_EQ(r.first, 0.0f);
    EXPECT_EQ(r.second, 0.0f);
    const QuantChoice u = choose_u8_asymmetric(r.first, r.second);
    EXPECT_GT(u.scale, 0.0f);
    EXPECT_EQ(u.zero_point, 0);
    EXPECT_GT(choose_i8_symmetric(r.first, r.second).scale, 0.0f);
  }
  // Nothing observed at all behaves the same.
  EXPECT_EQ(HistogramObserver().range(CalibrationMethod::kEntropy), std::make_pair(0.0f, 0.0f));
}

// MSE's model, values spread evenly within a bin, may clip a point mass by up to one bin.
TEST(HistogramObserver, SingleValueIsNeverClipped) {
  for (float value : {3.5f, -2.25f, 1e-30f, 3e38f}) {
    HistogramObserver o;
    const std::vector<float> v(5000, value);
    feed(o, v, 700);
    for (CalibrationMethod m : kAll) {
      SCOPED_TRACE(std::string(calibration_method_name(m)) + " " + std::to_string(value));
      const auto r = o.range(m);
      const double tolerance = m == CalibrationMethod::kMse ? 1.001 * o.bin_width() : 0.0;
      EXPECT_NEAR(r.first, std::min(value, 0.0f), tolerance);
      EXPECT_NEAR(r.second, std::max(value, 0.0f), tolerance);
      EXPECT_EQ(r.first == 0, value > 0);
      EXPECT_EQ(r.second == 0, value < 0);
    }
  }
}

TEST(HistogramObserver, GrowingRangeRebinsExactly) {
  // Batches whose range grows on both sides, by factors up to 10^4, and a slide past 0.
  std::vector<float> all;
  HistogramObserver o(512);
  const float spans[][2] = {{0.5f, 1.0f},      {0.0f, 3.0f},  {-10.0f, 5.0f},
                            {-12.0f, 1000.0f}, {-0.1f, 0.1f}, {-3000.0f, 2.0f}};
  uint64_t seed = 10;
  for (const auto& s : spans) {
    const std::vector<float> v = uniform(20000, s[0], s[1], seed++);
    feed(o, v, 999);
    all.insert(all.end(), v.begin(), v.end());
    EXPECT_EQ(o.min(), *std::min_element(all.begin(), all.end()));
    EXPECT_EQ(o.max(), *std::max_element(all.begin(), all.end()));
    // The window still resolves the data's range into about `bins` bins or more.
    const double span = std::max(o.max(), 0.0f) - std::min(o.min(), 0.0f);
    EXPECT_GE(span / o.bin_width(), o.bins() - 2.0);
    for (double p : {90.0, 99.0}) {
      const auto r = o.range(CalibrationMethod::kPercentile, 256, p);
      EXPECT_NEAR(r.first, std::min(0.0, exact_quantile(all, 1 - p / 100)), o.bin_width());
      EXPECT_NEAR(r.second, std::max(0.0, exact_quantile(all, p / 100)), o.bin_width());
    }
  }
  EXPECT_EQ(o.count(), static_cast<int64_t>(all.size()));
}

TEST(HistogramObserver, MemoryDoesNotGrowWithObservations) {
  HistogramObserver o;
  Rng rng(20);
  std::vector<float> sample(784);
  auto observe_samples = [&](int n) {
    for (int i = 0; i < n; ++i) {
      // Every sample is a little wider than the ones before: the range keeps growing.
      const float s = 1.0f + static_cast<float>(o.count()) * 1e-6f;
      for (float& x : sample) x = s * rng.normal();
      o.observe(sample.data(), static_cast<int64_t>(sample.size()));
    }
  };
  observe_samples(100);
  const size_t after_100 = o.memory_bytes();
  observe_samples(9900);
  EXPECT_EQ(o.count(), int64_t{10000} * 784);
  EXPECT_EQ(o.memory_bytes(), after_100);
  EXPECT_LT(after_100, 2 * 2048 * sizeof(int64_t) + 256);
}

TEST(QuantRange, U8AsymmetricRepresentsZeroExactly) {
  QuantChoice c = choose_u8_asymmetric(-1.0f, 3.0f);
  EXPECT_FLOAT_EQ(c.scale, 4.0f / 255.0f);
  EXPECT_EQ(c.zero_point, 64);  // 63.75 rounded
  c = choose_u8_asymmetric(0.0f, 6.0f);
  EXPECT_FLOAT_EQ(c.scale, 6.0f / 255.0f);
  EXPECT_EQ(c.zero_point, 0);
  c = choose_u8_asymmetric(-2.0f, -1.0f);  // widened to [-2, 0]
  EXPECT_FLOAT_EQ(c.scale, 2.0f / 255.0f);
  EXPECT_EQ(c.zero_point, 255);
  c = choose_u8_asymmetric(2.0f, 5.0f);  // widened to [0, 5]
  EXPECT_EQ(c.zero_point, 0);
  c = choose_u8_asymmetric(-3e38f, 3e38f);  // the width overflows float, not the scale
  EXPECT_TRUE(std::isfinite(c.scale));
  EXPECT_NEAR(c.zero_point, 128, 1);
  c = choose_u8_asymmetric(0.0f, 1e-44f);  // subnormal range: x / scale stays finite
  EXPECT_GE(c.scale, std::numeric_limits<float>::min());
  EXPECT_THROW(choose_u8_asymmetric(1.0f, -1.0f), Error);
  EXPECT_THROW(choose_u8_asymmetric(std::nanf(""), 1.0f), Error);
  EXPECT_THROW(choose_u8_asymmetric(0.0f, std::numeric_limits<float>::infinity()), Error);
}

TEST(QuantRange, I8SymmetricUsesTheLargerSide) {
  QuantChoice c = choose_i8_symmetric(-3.0f, 1.0f);
  EXPECT_FLOAT_EQ(c.scale, 3.0f / 127.0f);
  EXPECT_EQ(c.zero_point, 0);
  c = choose_i8_symmetric(0.0f, 2.54f);
  EXPECT_FLOAT_EQ(c.scale, 0.02f);
  EXPECT_EQ(choose_i8_symmetric(0.0f, 0.0f).scale, 1.0f);
  EXPECT_THROW(choose_i8_symmetric(1.0f, 0.0f), Error);
}

TEST(QuantRange, WeightsPerChannelRoundTrip) {
  const int64_t channels = 6, per = 37;
  std::vector<float> w(static_cast<size_t>(channels * per));
  Rng rng(30);
  for (int64_t c = 0; c < channels; ++c) {
    const float mag = std::pow(10.0f, static_cast<float>(c) - 3.0f);
    for (int64_t i = 0; i < per; ++i) w[c * per + i] = c == 2 ? 0.0f : mag * rng.normal();
  }
  const QuantizedWeights q = quantize_weights_per_channel(w.data(), channels, per);
  ASSERT_EQ(q.data.size(), w.size());
  ASSERT_EQ(q.scale.size(), static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    SCOPED_TRACE(c);
    float amax = 0;
    for (int64_t i = 0; i < per; ++i) amax = std::max(amax, std::fabs(w[c * per + i]));
    const float s = q.scale[c];
    EXPECT_GT(s, 0.0f);
    if (amax == 0) {
      EXPECT_EQ(s, 1.0f);
    } else {
      // amax / 127 rounded up to the next half-precision value.
      EXPECT_GE(s, amax / 127.0f);
      EXPECT_LE(s, amax / 127.0f * (1 + 1.0f / 1024));
      EXPECT_EQ(s, round_up_to_half_precision(s));
    }
    int extreme = 0;
    for (int64_t i = 0; i < per; ++i) {
      const int8_t v = q.data[c * per + i];
      EXPECT_GE(v, -127);
      EXPECT_LE(v, 127);
      extreme = std::max(extreme, std::abs(static_cast<int>(v)));
      // Half a step, plus the rounding of the f32 division.
      EXPECT_LE(std::fabs(w[c * per + i] - static_cast<float>(v) * s), 0.5f * s * (1 + 1e-5f));
    }
    EXPECT_EQ(extreme, amax == 0 ? 0 : 127);
  }
}

TEST(QuantRange, RoundUpToHalfPrecision) {
  // Values with 11 significant bits are kept, others go up to the next such value.
  EXPECT_EQ(round_up_to_half_precision(1.0f), 1.0f);
  EXPECT_EQ(round_up_to_half_precision(std::nextafter(1.0f, 2.0f)), 1.0f + 1.0f / 1024);
  EXPECT_EQ(round_up_to_half_precision(0.0123f), 0.01230621337890625f);  // 1613 * 2^-17
  EXPECT_EQ(round_up_to_half_precision(65504.0f), 65504.0f);
  // Outside the normal half range the value is returned as it is.
  EXPECT_EQ(round_up_to_half_precision(65505.0f), 65505.0f);
  EXPECT_EQ(round_up_to_half_precision(1e-5f), 1e-5f);
  EXPECT_EQ(round_up_to_half_precision(6.103515625e-05f), 6.103515625e-05f);
  for (float s = 7e-5f; s < 60000.0f; s *= 1.37f) {
    const float r = round_up_to_half_precision(s);
    EXPECT_GE(r, s);
    EXPECT_LE(r, s * (1 + 1.0f / 1024));
    int e = 0;
    const double f = std::frexp(static_cast<double>(r), &e);
    EXPECT_EQ(std::ldexp(f, 11), std::floor(std::ldexp(f, 11))) << r;  // 11 significant bits
  }
}

TEST(QuantRange, WeightsRoundHalfToEvenAndRejectBadInput) {
  // max |w| = 127 gives scale 1, so w / scale is w itself.
  const float w[] = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -2.5f, -127.0f, 3.49f};
  const QuantizedWeights q = quantize_weights_per_channel(w, 1, 8);
  EXPECT_EQ(q.scale[0], 1.0f);
  const std::vector<int8_t> expected = {127, 0, 2, 2, 0, -2, -127, 3};
  EXPECT_EQ(q.data, expected);
  const float bad[] = {1.0f, std::nanf("")};
  EXPECT_THROW(quantize_weights_per_channel(bad, 1, 2), Error);
  EXPECT_THROW(quantize_weights_per_channel(w, -1, 2), Error);
  EXPECT_THROW(quantize_weights_per_channel(nullptr, 2, 2), Error);
  EXPECT_TRUE(quantize_weights_per_channel(nullptr, 0, 5).data.empty());
}

}  // namespace
}  // namespace minnow::compress
