#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "data/augment.h"
#include "minnow/error.h"

namespace minnow::data {
namespace {

constexpr int64_t kC = 2, kH = 5, kW = 6;

// Distinct positive values: v(c, y, x) = 1 + c * 100 + y * 10 + x.
std::vector<float> image() {
  std::vector<float> v(kC * kH * kW);
  for (int64_t c = 0; c < kC; ++c) {
    for (int64_t y = 0; y < kH; ++y) {
      for (int64_t x = 0; x < kW; ++x) v[(c * kH + y) * kW + x] = 1.0f + c * 100 + y * 10 + x;
    }
  }
  return v;
}

std::vector<float> apply(const std::vector<float>& src, AugmentParams p,
                         std::vector<float> mean = {0, 0}, std::vector<float> inv = {1, 1}) {
  std::vector<float> dst(src.size(), -12345.0f);
  augment_normalize(src.data(), dst.data(), kC, kH, kW, p, mean.data(), inv.data());
  return dst;
}

float at(const std::vector<float>& v, int64_t c, int64_t y, int64_t x) {
  return v[(c * kH + y) * kW + x];
}

TEST(Augment, IdentityWithoutShiftOrFlip) {
  std::vector<float> src = image();
  EXPECT_EQ(apply(src, {}), src);
}

TEST(Augment, ShiftMovesPixelsAndPadsWithZero) {
  std::vector<float> src = image();
  for (int dy = -3; dy <= 3; ++dy) {
    for (int dx = -7; dx <= 7; ++dx) {
      std::vector<float> out = apply(src, {dy, dx, false});
      for (int64_t c = 0; c < kC; ++c) {
        for (int64_t y = 0; y < kH; ++y) {
          for (int64_t x = 0; x < kW; ++x) {
            int64_t sy = y - dy, sx = x - dx;
            bool inside = sy >= 0 && sy < kH && sx >= 0 && sx < kW;
            EXPECT_EQ(at(out, c, y, x), inside ? at(src, c, sy, sx) : 0.0f)
                << "dy=" << dy << " dx=" << dx << " at " << c << "," << y << "," << x;
          }
        }
      }
      // Shifting only moves values: every non-padding output value exists in the input.
      for (float v : out) {
        if (v != 0.0f) {
          EXPECT_NE(std::find(src.begin(), src.end(), v), src.end());
        }
      }
    }
  }
}

TEST(Augment, FlipMirrorsColumnsAndTwiceIsIdentity) {
  std::vector<float> src = image();
  std::vector<float> out = apply(src, {0, 0, true});
  for (int64_t c = 0; c < kC; ++c) {
    for (int64_t y = 0; y < kH; ++y) {
      for (int64_t x = 0; x < kW; ++x) EXPECT_EQ(at(out, c, y, x), at(src, c, y, kW - 1 - x));
    }
  }
  EXPECT_EQ(apply(out, {0, 0, true}), src);
}

TEST(Augment, FlipThenShiftComposition) {
  std::vector<float> src = image();
  for (int dx = -7; dx <= 7; ++dx) {
    std::vector<float> out = apply(src, {1, dx, true});
    for (int64_t y = 0; y < kH; ++y) {
      for (int64_t x = 0; x < kW; ++x) {
        int64_t sy = y - 1, sx = (kW - 1 - x) - dx;
        bool inside = sy >= 0 && sx >= 0 && sx < kW;
        EXPECT_EQ(at(out, 1, y, x), inside ? at(src, 1, sy, sx) : 0.0f) << dx;
      }
    }
  }
}

TEST(Augment, NormalizationIsFusedIncludingPadding) {
  std::vector<float> src = image();
  std::vector<float> out = apply(src, {1, 0, false}, {1.0f, 50.0f}, {0.5f, 0.25f});
  EXPECT_EQ(at(out, 0, 0, 0), (0.0f - 1.0f) * 0.5f);  // padding is normalized 0
  EXPECT_EQ(at(out, 1, 0, 3), (0.0f - 50.0f) * 0.25f);
  EXPECT_EQ(at(out, 0, 2, 3), (at(src, 0, 1, 3) - 1.0f) * 0.5f);
  EXPECT_EQ(at(out, 1, 4, 5), (at(src, 1, 3, 5) - 50.0f) * 0.25f);
}

TEST(Augment, DrawCoversRangeAndIsSeeded) {
  AugmentOptions opt;
  opt.shift = 2;
  opt.hflip = true;
  std::set<int> dys, dxs;
  int flips = 0;
  Rng rng(3);
  for (int i = 0; i < 2000; ++i) {
    AugmentParams p = draw_augment(opt, rng);
    ASSERT_GE(p.dy, -2);
    ASSERT_LE(p.dy, 2);
    ASSERT_GE(p.dx, -2);
    ASSERT_LE(p.dx, 2);
    dys.insert(p.dy);
    dxs.insert(p.dx);
    flips += p.flip;
  }
  EXPECT_EQ(dys.size(), 5u);
  EXPECT_EQ(dxs.size(), 5u);
  EXPECT_GT(flips, 850);
  EXPECT_LT(flips, 1150);
  Rng a(9), b(9);
  for (int i = 0; i < 20; ++i) {
    AugmentParams pa = draw_augment(opt, a), pb = draw_augment(opt, b);
    EXPECT_EQ(pa.dy, pb.dy);
    EXPECT_EQ(pa.dx, pb.dx);
    EXPECT_EQ(pa.flip, pb.flip);
  }
  AugmentParams none = draw_augment(AugmentOptions{}, rng);
  EXPECT_EQ(none.dy, 0);
  EXPECT_EQ(none.dx, 0);
  EXPECT_FALSE(none.flip);
  opt.shift = -1;
  EXPECT_THROW(draw_augment(opt, rng), Error);
}

}  // namespace
}  // namespace minnow::data
