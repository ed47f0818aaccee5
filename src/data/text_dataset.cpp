#include "data/text_dataset.h"

#include "data/class_folder.h"
#include "io/atomic_file.h"
#include "minnow/error.h"

namespace minnow::data {
namespace {

void check_corpus(const TextCorpus& c, const std::string& what) {
  if (c.texts.size() != c.labels.size()) {
    throw Error(what + " text corpus has " + std::to_string(c.texts.size()) + " texts but " +
                std::to_string(c.labels.size()) + " labels");
  }
  const auto classes = static_cast<int64_t>(c.class_names.size());
  for (size_t i = 0; i < c.labels.size(); ++i) {
    if (c.labels[i] < 0 || c.labels[i] >= classes) {
      throw Error(what + " text " + std::to_string(i) + " has label " +
                  std::to_string(c.labels[i]) + ", expected one in [0, " + std::to_string(classes) +
                  ")");
    }
  }
}

Dataset encode(const TextCorpus& c, const Tokenizer& tok) {
  Dataset d;
  tok.encode_batch(c.texts, d.x, d.lengths);
  d.y = Tensor(DType::kI64, {static_cast<int64_t>(c.labels.size())});
  std::copy(c.labels.begin(), c.labels.end(), d.y.data<int64_t>());
  d.num_classes = static_cast<int64_t>(c.class_names.size());
  d.class_names = c.class_names;
  return d;
}

}  // namespace

TextCorpus select_texts(const TextCorpus& corpus, const std::vector<int64_t>& indices) {
  TextCorpus out;
  out.class_names = corpus.class_names;
  out.texts.reserve(indices.size());
  out.labels.reserve(indices.size());
  for (int64_t i : indices) {
    if (i < 0 || i >= static_cast<int64_t>(corpus.texts.size())) {
      throw Error("select_texts: index " + std::to_string(i) + " is outside [0, " +
                  std::to_string(corpus.texts.size()) + ")");
    }
    out.texts.push_back(corpus.texts[static_cast<size_t>(i)]);
    out.labels.push_back(corpus.labels[static_cast<size_t>(i)]);
  }
  return out;
}

namespace {

TextSplits encode_corpora(const TextCorpus& train, const TextCorpus& test, Tokenizer tokenizer) {
  TextSplits out;
  out.tokenizer = std::move(tokenizer);
  out.train = encode(train, out.tokenizer);
  out.test = encode(test, out.tokenizer);
  return out;
}

void check_corpora(const TextCorpus& train, const TextCorpus& test) {
  check_corpus(train, "training");
  check_corpus(test, "test");
  if (train.class_names != test.class_names) {
    throw Error("training and test text corpora have different class names");
  }
}

}  // namespace

TextSplits tokenize_corpora(const TextCorpus& train, const TextCorpus& test,
                            const TokenizerOptions& options) {
  check_corpora(train, test);
  return encode_corpora(train, test, Tokenizer::build(train.texts, options));
}

TextSplits tokenize_corpora(const TextCorpus& train, const TextCorpus& test,
                            const Tokenizer& tokenizer) {
  check_corpora(train, test);
  return encode_corpora(train, test, tokenizer);
}

TextCorpus read_text_folder(const std::string& dir, const std::vector<std::string>* known_classes) {
  ClassFolder folder = list_class_folder(dir, {".txt"}, ".txt files", known_classes);
  TextCorpus c;
  c.class_names = std::move(folder.class_names);
  c.labels = std::move(folder.labels);
  c.texts.reserve(folder.paths.size());
  for (const std::string& path : folder.paths) c.texts.push_back(io::read_file(path));
  return c;
}

}  // namespace minnow::data
