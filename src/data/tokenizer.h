// Tokenizer: turns text into fixed-length rows of token ids for sequence models.
//
// Word level (default): the text is lower-cased (ASCII letters only; other bytes are kept) and
// split into tokens: a maximal run of ASCII letters, digits and bytes >= 0x80 (so UTF-8 words
// stay whole) is one token; every other printable ASCII character (punctuation, '$', '!') is a
// token of its own; whitespace and control bytes separate tokens. The vocabulary is built from
// training texts: the vocab_size - 2 most frequent tokens, ties broken by byte-wise ascending
// order, get ids 2, 3, ... in that order.
// Byte level: every byte b of the text (not lower-cased) is id b + 2; the vocabulary is 258.
// Both: id 0 is PAD (fills a row after the text), id 1 is OOV (a word outside the vocabulary).
// encode() keeps the first max_len tokens.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "minnow/tensor.h"

namespace minnow::data {

struct TokenizerOptions {
  bool byte_level = false;
  int64_t vocab_size = 20000;  // word level: upper bound on ids incl. PAD and OOV (>= 3)
  int64_t max_len = 256;       // tokens per encoded row (>= 1)
};

class Tokenizer {
 public:
  static constexpr int64_t kPad = 0;
  static constexpr int64_t kOov = 1;
  static constexpr int64_t kNumSpecial = 2;

  Tokenizer() = default;
  // Builds the vocabulary from `texts` (the training split). Throws minnow::Error for
  // vocab_size < 3 (word level) or max_len < 1.
  static Tokenizer build(const std::vector<std::string>& texts, const TokenizerOptions& options);

  // The word-level tokens of `text` (lower-cased), before vocabulary lookup.
  static std::vector<std::string> split_words(std::string_view text);

  // Token ids of `text`, at most max_len of them, no padding.
  std::vector<int64_t> encode(std::string_view text) const;
  // Encodes each text into one row of `ids` (i64 [N, max_len], PAD after the text) and its
  // token count into `lengths` (i64 [N]).
  void encode_batch(const std::vector<std::string>& texts, Tensor& ids, Tensor& lengths) const;

  bool byte_level() const { return byte_level_; }
  int64_t max_len() const { return max_len_; }
  // Number of ids, specials included: ids lie in [0, vocab_size()).
  int64_t vocab_size() const;
  // The word of id (word level), "<pad>" / "<oov>" for the specials, "<0xNN>" for a byte.
  std::string token(int64_t id) const;

  // {"format": "minnow-tokenizer", "version": 1, "level": "word"|"byte", "max_len": L,
  //  "lowercase": true, "vocab": [words of ids 2, 3, ...]} ("vocab" only at word level).
  nlohmann::json to_json() const;
  // Throws minnow::Error naming the bad field (the JSON may come from an untrusted model file).
  static Tokenizer from_json(const nlohmann::json& j);

 private:
  void index_vocab();  // fills ids_ from words_

  bool byte_level_ = false;
  int64_t max_len_ = 0;
  std::vector<std::string> words_;  // words_[k] has id k + kNumSpecial
  std::unordered_map<std::string, int64_t> ids_;
};

}  // namespace minnow::data
