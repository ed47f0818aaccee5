#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "data/normalize.h"
#include "data/sources.h"
#include "data_test_util.h"
#include "minnow/error.h"

namespace minnow::data {
namespace {

using testing::Bytes;
using testing::EnvGuard;
using testing::gzip;
using testing::idx_bytes;
using testing::idx_u8;
using testing::TempDir;
using testing::write_file;

Bytes pixels(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 13 + seed);
  return b;
}

// A small MNIST-format directory: 5 train and 3 test images of 4x3, mixing plain and gzip.
void write_mnist_dir(const TempDir& dir, Bytes train_labels = {0, 4, 2, 1, 0},
                     Bytes test_labels = {1, 6, 3}) {
  write_file(dir.file("train-images-idx3-ubyte"), idx_u8({5, 4, 3}, pixels(60, 1)));
  write_file(dir.file("train-labels-idx1-ubyte.gz"),
             gzip(idx_u8({static_cast<uint32_t>(train_labels.size())}, train_labels)));
  write_file(dir.file("t10k-images-idx3-ubyte.gz"), gzip(idx_u8({3, 4, 3}, pixels(36, 9))));
  write_file(dir.file("t10k-labels-idx1-ubyte"),
             idx_u8({static_cast<uint32_t>(test_labels.size())}, test_labels));
}

void expect_load_error(const std::string& spec, const std::vector<std::string>& parts) {
  try {
    load_dataset(spec);
    ADD_FAILURE() << "no error for " << spec;
  } catch (const Error& e) {
    for (const std::string& p : parts) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "'" << p << "' not in: " << e.what();
    }
  }
}

TEST(Sources, LoadsMnistFormatDirectory) {
  TempDir dir;
  write_mnist_dir(dir);
  TrainTest tt = load_dataset(dir.str());
  EXPECT_EQ(tt.name, std::filesystem::path(dir.str()).filename().string());
  ASSERT_EQ(tt.train.x.shape(), (Shape{5, 1, 4, 3}));
  ASSERT_EQ(tt.test.x.shape(), (Shape{3, 1, 4, 3}));
  EXPECT_EQ(tt.train.x.dtype(), DType::kF32);
  EXPECT_EQ(tt.train.y.dtype(), DType::kI64);
  Bytes px = pixels(60, 1);
  for (int i = 0; i < 60; ++i) EXPECT_EQ(tt.train.x.f32()[i], px[i] / 255.0f);
  EXPECT_EQ(tt.test.x.f32()[35], pixels(36, 9)[35] / 255.0f);
  EXPECT_EQ(tt.train.y.data<int64_t>()[1], 4);
  EXPECT_EQ(tt.test.y.data<int64_t>()[1], 6);
  // Max label over train and test, shared by both.
  EXPECT_EQ(tt.train.num_classes, 7);
  EXPECT_EQ(tt.test.num_classes, 7);
  EXPECT_TRUE(tt.train.class_names.empty());
  EXPECT_NO_THROW(tt.train.validate("train"));
  // A trailing slash names the same directory.
  EXPECT_EQ(load_dataset(dir.str() + "/").name, tt.name);
}

TEST(Sources, AcceptsI32Labels) {
  TempDir dir;
  write_mnist_dir(dir);
  Bytes be = {0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1};
  write_file(dir.file("t10k-labels-idx1-ubyte"), idx_bytes(0x0C, {3}, be));
  TrainTest tt = load_dataset(dir.str());
  EXPECT_EQ(tt.test.y.data<int64_t>()[0], 2);
  EXPECT_EQ(tt.train.num_classes, 5);
}

TEST(SourcesErrors, MissingFileNamesItAndTheFix) {
  TempDir dir;
  write_mnist_dir(dir);
  std::filesystem::remove(dir.file("t10k-labels-idx1-ubyte"));
  expect_load_error(dir.str(), {dir.file("t10k-labels-idx1-ubyte"), "not found", "must hold"});
}

TEST(SourcesErrors, CountMismatch) {
  TempDir dir;
  write_mnist_dir(dir, {0, 1, 2, 3});  // 5 images, 4 labels
  expect_load_error(dir.str(), {dir.file("train-images-idx3-ubyte"),
                                dir.file("train-labels-idx1-ubyte.gz"), "must match"});
}

TEST(SourcesErrors, LabelOutOfRange) {
  TempDir dir;
  write_mnist_dir(dir);
  Bytes be = {0, 0, 0, 2, 0, 0, 1, 44, 0, 0, 0, 1};  // 300
  write_file(dir.file("t10k-labels-idx1-ubyte"), idx_bytes(0x0C, {3}, be));
  expect_load_error(dir.str(), {dir.file("t10k-labels-idx1-ubyte"), "label 300", "[0, 256)"});
  Bytes neg = {0, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 1};  // -1
  write_file(dir.file("t10k-labels-idx1-ubyte"), idx_bytes(0x0C, {3}, neg));
  expect_load_error(dir.str(), {"label -1"});
}

TEST(SourcesErrors, WrongImageTypeOrShape) {
  TempDir dir;
  write_mnist_dir(dir);
  write_file(dir.file("train-images-idx3-ubyte"), idx_bytes(0x0D, {5, 1}, Bytes(20, 0)));
  expect_load_error(dir.str(), {dir.file("train-images-idx3-ubyte"), "expected u8"});
  write_mnist_dir(dir);
  write_file(dir.file("t10k-images-idx3-ubyte.gz"), gzip(idx_u8({3, 3, 4}, pixels(36, 0))));
  expect_load_error(dir.str(), {"[1,4,3]", "[1,3,4]"});
}

TEST(SourcesErrors, CorruptFileIsNamed) {
  TempDir dir;
  write_mnist_dir(dir);
  write_file(dir.file("t10k-images-idx3-ubyte.gz"), gzip(idx_u8({3, 4, 3}, pixels(35, 0))));
  expect_load_error(dir.str(), {dir.file("t10k-images-idx3-ubyte.gz"), "truncated data"});
}

TEST(SourcesErrors, UnknownSpec) {
  expect_load_error("no-such-dataset-xyz", {"no-such-dataset-xyz", "fashion-mnist", "directory"});
  expect_load_error("", {"unknown dataset"});
}

TEST(SourcesErrors, FashionMnistOverrideDirectoryMissingFiles) {
  TempDir dir;
  EnvGuard env("MINNOW_FASHION_MNIST_DIR", dir.str().c_str());
  expect_load_error("fashion-mnist",
                    {dir.file("train-images-idx3-ubyte"), "MINNOW_FASHION_MNIST_DIR"});
}

TEST(Sources, FashionMnistOverrideDirectoryGetsClassNames) {
  // Ten classes in an overriding directory: names come with the "fashion-mnist" spec.
  TempDir dir;
  write_mnist_dir(dir, {0, 9, 2, 1, 0});
  EnvGuard env("MINNOW_FASHION_MNIST_DIR", dir.str().c_str());
  TrainTest tt = load_dataset("fashion-mnist");
  EXPECT_EQ(tt.name, "fashion-mnist");
  EXPECT_EQ(tt.train.num_classes, 10);
  ASSERT_EQ(tt.train.class_names.size(), 10u);
  EXPECT_EQ(tt.test.class_names[9], "Ankle boot");
}

TEST(Sources, RealFashionMnist) {
  EnvGuard env("MINNOW_FASHION_MNIST_DIR", nullptr);
  std::error_code ec;
  if (!std::filesystem::exists(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz", ec)) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed (scripts/setup installs it)";
  }
  TrainTest tt = load_dataset("fashion-mnist");
  EXPECT_EQ(tt.name, "fashion-mnist");
  ASSERT_EQ(tt.train.x.shape(), (Shape{60000, 1, 28, 28}));
  ASSERT_EQ(tt.test.x.shape(), (Shape{10000, 1, 28, 28}));
  EXPECT_EQ(tt.train.num_classes, 10);
  EXPECT_EQ(tt.test.num_classes, 10);
  EXPECT_EQ(tt.train.class_names, fashion_mnist_class_names());
  EXPECT_NO_THROW(tt.train.validate("train"));
  EXPECT_NO_THROW(tt.test.validate("test"));
  // Fashion-MNIST is balanced: 6000 train and 1000 test images per class.
  std::vector<int64_t> train_count(10), test_count(10);
  for (int64_t i = 0; i < 60000; ++i) ++train_count[tt.train.y.data<int64_t>()[i]];
  for (int64_t i = 0; i < 10000; ++i) ++test_count[tt.test.y.data<int64_t>()[i]];
  EXPECT_EQ(train_count, std::vector<int64_t>(10, 6000));
  EXPECT_EQ(test_count, std::vector<int64_t>(10, 1000));
  const float* x = tt.train.x.f32();
  EXPECT_EQ(*std::min_element(x, x + tt.train.x.numel()), 0.0f);
  EXPECT_EQ(*std::max_element(x, x + tt.train.x.numel()), 1.0f);
  // The widely quoted statistics of the training images.
  Normalization norm = compute_normalization(tt.train);
  ASSERT_EQ(norm.mean.size(), 1u);
  EXPECT_NEAR(norm.mean[0], 0.2860, 5e-4);
  EXPECT_NEAR(norm.std[0], 0.3530, 5e-4);
}

}  // namespace
}  // namespace minnow::data
