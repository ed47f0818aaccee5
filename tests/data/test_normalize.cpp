#include <gtest/gtest.h>

#include <cmath>

#include "data/normalize.h"
#include "minnow/error.h"

namespace minnow::data {
namespace {

TEST(Normalization, PerChannelMeanAndPopulationStd) {
  // [N=2, C=2, H=1, W=2]: channel 0 holds {1, 3, 5, 7}, channel 1 holds {2, 2, 2, 2}.
  Dataset d;
  d.x = Tensor(DType::kF32, {2, 2, 1, 2});
  const float v[] = {1, 3, 2, 2, 5, 7, 2, 2};
  std::copy(v, v + 8, d.x.f32());
  d.y = Tensor(DType::kI64, {2});
  Normalization n = compute_normalization(d);
  ASSERT_EQ(n.mean.size(), 2u);
  ASSERT_EQ(n.std.size(), 2u);
  EXPECT_FLOAT_EQ(n.mean[0], 4.0f);
  EXPECT_FLOAT_EQ(n.std[0], std::sqrt(5.0f));  // (9 + 1 + 1 + 9) / 4
  EXPECT_FLOAT_EQ(n.mean[1], 2.0f);
  EXPECT_FLOAT_EQ(n.std[1], 1.0f);  // constant channel: 1, not 0
}

TEST(Normalization, FeatureVectorsAreOneChannel) {
  Dataset d;
  d.x = Tensor(DType::kF32, {3, 2});
  const float v[] = {0, 10, 2, 8, 4, 6};
  std::copy(v, v + 6, d.x.f32());
  d.y = Tensor(DType::kI64, {3});
  Normalization n = compute_normalization(d);
  ASSERT_EQ(n.mean.size(), 1u);
  EXPECT_FLOAT_EQ(n.mean[0], 5.0f);
  EXPECT_FLOAT_EQ(n.std[0], std::sqrt(70.0f / 6.0f));  // deviations 5,5,3,3,1,1
  EXPECT_EQ(num_channels({784}), 1);
  EXPECT_EQ(num_channels({3, 32, 32}), 3);
}

TEST(Normalization, LargeDatasetMatchesDoubleReference) {
  // Many blocks, offset values: checks the blocked two-pass sums against a plain loop.
  const int64_t n = 2000, c = 3, hw = 50;
  Dataset d;
  d.x = Tensor(DType::kF32, {n, c, 5, 10});
  d.y = Tensor(DType::kI64, {n});
  uint32_t s = 1;
  for (int64_t i = 0; i < d.x.numel(); ++i) {
    s = s * 1664525u + 1013904223u;
    d.x.f32()[i] = 1000.0f + static_cast<float>(s >> 8) / 16777216.0f;
  }
  Normalization got = compute_normalization(d);
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t k = 0; k < hw; ++k) sum += d.x.f32()[(i * c + ch) * hw + k];
    }
    double mean = sum / (n * hw);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t k = 0; k < hw; ++k) {
        double dv = d.x.f32()[(i * c + ch) * hw + k] - mean;
        sq += dv * dv;
      }
    }
    EXPECT_NEAR(got.mean[ch], mean, 1e-4);
    EXPECT_NEAR(got.std[ch], std::sqrt(sq / (n * hw)), 1e-5);
    EXPECT_NEAR(got.std[ch], std::sqrt(1.0 / 12.0), 5e-3);  // uniform [0, 1) noise
  }
}

TEST(Normalization, RejectsEmptyOrNonFloat) {
  Dataset empty;
  empty.x = Tensor(DType::kF32, {0, 4});
  empty.y = Tensor(DType::kI64, {0});
  EXPECT_THROW(compute_normalization(empty), Error);
  Dataset bytes;
  bytes.x = Tensor(DType::kU8, {2, 4});
  EXPECT_THROW(compute_normalization(bytes), Error);
}

}  // namespace
}  // namespace minnow::data
