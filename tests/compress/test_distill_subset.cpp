// class_balanced_subset (minnow distill --train-samples): the data-limited setting of Hinton et
// al. 2015 must give both arms of a comparison the same, class-balanced samples.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <vector>

#include "compress/distill.h"
#include "minnow/error.h"

namespace minnow {
namespace {

// Sample i has label labels[i] and a single feature equal to i, so a subset row names its source.
data::Dataset labelled(const std::vector<int64_t>& labels, int64_t classes) {
  const auto n = static_cast<int64_t>(labels.size());
  data::Dataset d;
  d.x = Tensor(DType::kF32, {n, 1});
  d.y = Tensor(DType::kI64, {n});
  d.num_classes = classes;
  for (int64_t i = 0; i < n; ++i) {
    d.x.f32()[i] = static_cast<float>(i);
    d.y.data<int64_t>()[i] = labels[static_cast<size_t>(i)];
  }
  return d;
}

// 3 classes, unbalanced: class 0 has 50 samples, class 1 has 30, class 2 has 20.
data::Dataset unbalanced() {
  std::vector<int64_t> y;
  for (int i = 0; i < 100; ++i) y.push_back(i < 50 ? 0 : (i < 80 ? 1 : 2));
  std::reverse(y.begin(), y.end());  // no class sits where a plain prefix would find it first
  return labelled(y, 3);
}

std::vector<int64_t> counts(const data::Dataset& d) {
  std::vector<int64_t> c(static_cast<size_t>(d.num_classes), 0);
  for (int64_t i = 0; i < d.size(); ++i) ++c[static_cast<size_t>(d.y.data<int64_t>()[i])];
  return c;
}

TEST(DistillSubset, BalancedDistinctAndTrueToTheSource) {
  const data::Dataset d = unbalanced();
  const data::Dataset s = compress::class_balanced_subset(d, 31, 7);
  ASSERT_EQ(s.size(), 31);
  EXPECT_EQ(counts(s), (std::vector<int64_t>{11, 10, 10}));  // 31 = 3 * 10 + 1: class 0 first
  std::set<int64_t> seen;
  for (int64_t i = 0; i < s.size(); ++i) {
    const auto src = static_cast<int64_t>(s.x.f32()[i]);
    EXPECT_TRUE(seen.insert(src).second) << "sample " << src << " picked twice";
    EXPECT_EQ(s.y.data<int64_t>()[i], d.y.data<int64_t>()[src]) << "label moved off its image";
  }
  EXPECT_EQ(s.num_classes, 3);
}

TEST(DistillSubset, SameSeedSameSamplesOtherSeedOthers) {
  const data::Dataset d = unbalanced();
  const data::Dataset a = compress::class_balanced_subset(d, 30, 1);
  const data::Dataset b = compress::class_balanced_subset(d, 30, 1);
  const data::Dataset c = compress::class_balanced_subset(d, 30, 2);
  ASSERT_EQ(a.x.numel(), b.x.numel());
  EXPECT_EQ(std::memcmp(a.x.f32(), b.x.f32(), sizeof(float) * 30), 0);
  EXPECT_NE(std::memcmp(a.x.f32(), c.x.f32(), sizeof(float) * 30), 0);
}

TEST(DistillSubset, WholeSetIsAPermutation) {
  const data::Dataset d = labelled({0, 1, 0, 1, 0, 1}, 2);
  const data::Dataset s = compress::class_balanced_subset(d, 6, 3);
  std::vector<float> xs(s.x.f32(), s.x.f32() + 6);
  std::sort(xs.begin(), xs.end());
  EXPECT_EQ(xs, (std::vector<float>{0, 1, 2, 3, 4, 5}));
}

TEST(DistillSubset, BadSizesAndShortClassesAreErrors) {
  const data::Dataset d = unbalanced();
  EXPECT_THROW(compress::class_balanced_subset(d, 0, 1), Error);
  EXPECT_THROW(compress::class_balanced_subset(d, 101, 1), Error);
  // 90 = 30 per class, but class 2 has only 20 samples.
  EXPECT_THROW(compress::class_balanced_subset(d, 90, 1), Error);
  data::Dataset unlabelled = d;
  unlabelled.y = Tensor();
  EXPECT_THROW(compress::class_balanced_subset(unlabelled, 10, 1), Error);
}

}  // namespace
}  // namespace minnow
