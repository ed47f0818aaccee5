// Text corpora (raw texts with class labels) and their tokenized train/test datasets.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "data/tokenizer.h"

namespace minnow::data {

struct TextCorpus {
  std::vector<std::string> texts;
  std::vector<int64_t> labels;  // one per text, in [0, class_names.size())
  std::vector<std::string> class_names;
};

struct TextSplits {
  Dataset train, test;  // x i64 [N, max_len] token ids, lengths i64 [N], y i64 [N]
  Tokenizer tokenizer;  // built from the training texts only
};

// The texts at `indices` (in that order) with their labels and all class names.
TextCorpus select_texts(const TextCorpus& corpus, const std::vector<int64_t>& indices);

// Builds the tokenizer from train.texts and encodes both corpora. num_classes is the number of
// train class names. Throws minnow::Error when the corpora disagree on class names, a label is
// out of range, or labels and texts differ in count.
TextSplits tokenize_corpora(const TextCorpus& train, const TextCorpus& test,
                            const TokenizerOptions& options);
// The same with a given tokenizer (no vocabulary is built).
TextSplits tokenize_corpora(const TextCorpus& train, const TextCorpus& test,
                            const Tokenizer& tokenizer);

// A text folder: one sub-directory per class holding one .txt file per sample (read as bytes).
// Classes and samples are in byte order of their names; see list_class_folder for
// `known_classes` and the errors (no classes, an empty class, an unreadable file).
TextCorpus read_text_folder(const std::string& dir,
                            const std::vector<std::string>* known_classes = nullptr);

}  // namespace minnow::data
