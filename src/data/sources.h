// Dataset sources: turns a dataset spec (a name or a directory) into train and test sets.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"

namespace minnow::data {

struct TrainTest {
  std::string name;
  Dataset train, test;
};

// Where "fashion-mnist" is looked up unless MINNOW_FASHION_MNIST_DIR is set (Debian package
// dataset-fashion-mnist).
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// The ten Fashion-MNIST class names, in label order.
const std::vector<std::string>& fashion_mnist_class_names();

// spec "fashion-mnist": the Debian dataset (directory overridable with the environment variable
// MINNOW_FASHION_MNIST_DIR), with its class names. Any other spec is a directory holding
// train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
// t10k-labels-idx1-ubyte, each optionally with a .gz suffix. Images u8 [N, H, W] become f32
// [N, 1, H, W] / 255 (u8 [N, C, H, W] keeps its channels); labels (u8, i8 or i32) must lie in
// [0, 256) and match the image count; num_classes = max label + 1 over train and test.
// Throws minnow::Error naming the missing or bad file and how to fix it.
TrainTest load_dataset(const std::string& spec);

}  // namespace minnow::data
