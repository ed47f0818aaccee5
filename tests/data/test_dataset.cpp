#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "data/dataset.h"
#include "minnow/error.h"

namespace minnow::data {
namespace {

// n samples of shape [2, 3]; every value of sample i is i + 0.5 * k, label i % classes.
Dataset make_dataset(int64_t n, int64_t classes = 3) {
  Dataset d;
  d.x = Tensor(DType::kF32, {n, 2, 3});
  d.y = Tensor(DType::kI64, {n});
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 6; ++k) d.x.f32()[i * 6 + k] = static_cast<float>(i) + 0.5f * k;
    d.y.data<int64_t>()[i] = i % classes;
  }
  d.num_classes = classes;
  d.class_names = {"a", "b", "c"};
  return d;
}

// Sample identity survives copying: value 0 of a sample is its original index.
int64_t sample_id(const Dataset& d, int64_t i) { return static_cast<int64_t>(d.x.f32()[i * 6]); }

TEST(Dataset, SizeAndSampleShape) {
  Dataset d = make_dataset(5);
  EXPECT_EQ(d.size(), 5);
  EXPECT_EQ(d.sample_shape(), (Shape{2, 3}));
  EXPECT_EQ(Dataset{}.size(), 0);
  EXPECT_NO_THROW(d.validate("test"));
}

TEST(Dataset, SubsetCopiesInOrder) {
  Dataset d = make_dataset(6);
  Dataset s = d.subset({4, 1, 4});
  ASSERT_EQ(s.size(), 3);
  EXPECT_EQ(s.x.shape(), (Shape{3, 2, 3}));
  EXPECT_EQ(s.num_classes, 3);
  EXPECT_EQ(s.class_names, d.class_names);
  EXPECT_EQ(sample_id(s, 0), 4);
  EXPECT_EQ(sample_id(s, 1), 1);
  EXPECT_EQ(s.x.f32()[1 * 6 + 5], 1.0f + 2.5f);
  EXPECT_EQ(s.y.data<int64_t>()[0], 4 % 3);
  // A copy, not a view: changing the source leaves the subset alone.
  d.x.f32()[4 * 6] = 99.0f;
  EXPECT_EQ(sample_id(s, 0), 4);
  EXPECT_EQ(d.subset({}).size(), 0);
}

TEST(Dataset, SubsetRejectsBadIndex) {
  Dataset d = make_dataset(4);
  EXPECT_THROW(d.subset({0, 4}), Error);
  EXPECT_THROW(d.subset({-1}), Error);
}

TEST(Dataset, ValidateNamesTheProblem) {
  Dataset d = make_dataset(4);
  d.y.data<int64_t>()[2] = 7;
  try {
    d.validate("my-set");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("my-set"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("label 7 of sample 2"), std::string::npos) << e.what();
  }
  Dataset wrong_n = make_dataset(4);
  wrong_n.y = Tensor(DType::kI64, {3});
  EXPECT_THROW(wrong_n.validate("x"), Error);
  Dataset wrong_type = make_dataset(4);
  wrong_type.y = Tensor(DType::kI32, {4});
  EXPECT_THROW(wrong_type.validate("x"), Error);
}

TEST(SplitValidation, SizesAndDisjointCover) {
  Dataset d = make_dataset(103);
  auto [train, val] = split_validation(d, 0.2, 42);
  EXPECT_EQ(val.size(), 21);  // round(20.6)
  EXPECT_EQ(train.size(), 82);
  std::set<int64_t> seen;
  for (int64_t i = 0; i < train.size(); ++i) seen.insert(sample_id(train, i));
  for (int64_t i = 0; i < val.size(); ++i) {
    EXPECT_EQ(seen.count(sample_id(val, i)), 0u) << "sample in both sets";
    seen.insert(sample_id(val, i));
  }
  EXPECT_EQ(seen.size(), 103u);
  // Labels travel with their samples.
  for (int64_t i = 0; i < val.size(); ++i) {
    EXPECT_EQ(val.y.data<int64_t>()[i], sample_id(val, i) % 3);
  }
}

TEST(SplitValidation, SeededAndShuffled) {
  Dataset d = make_dataset(50);
  auto ids = [](const Dataset& s) {
    std::vector<int64_t> v;
    for (int64_t i = 0; i < s.size(); ++i) v.push_back(sample_id(s, i));
    return v;
  };
  auto a = split_validation(d, 0.3, 7);
  auto b = split_validation(d, 0.3, 7);
  auto c = split_validation(d, 0.3, 8);
  EXPECT_EQ(ids(a.second), ids(b.second));
  EXPECT_NE(ids(a.second), ids(c.second));
  // Not simply the last 30% of the data.
  std::vector<int64_t> tail = {35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49};
  std::vector<int64_t> val = ids(a.second);
  std::sort(val.begin(), val.end());
  EXPECT_NE(val, tail);
}

TEST(SplitValidation, EdgeFractions) {
  Dataset d = make_dataset(10);
  auto [train, val] = split_validation(d, 0.0, 1);
  EXPECT_EQ(train.size(), 10);
  EXPECT_EQ(val.size(), 0);
  EXPECT_EQ(val.x.shape(), (Shape{0, 2, 3}));
  auto [t2, v2] = split_validation(d, 0.99, 1);  // rounds to 10: one sample stays in train
  EXPECT_EQ(t2.size(), 1);
  EXPECT_EQ(v2.size(), 9);
  EXPECT_THROW(split_validation(d, 1.0, 1), Error);
  EXPECT_THROW(split_validation(d, -0.1, 1), Error);
  EXPECT_THROW(split_validation(d, std::nan(""), 1), Error);
}

}  // namespace
}  // namespace minnow::data
