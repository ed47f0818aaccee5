#include "data/tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "minnow/error.h"

namespace minnow::data {
namespace {

constexpr int kFormatVersion = 1;

bool is_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

// Calls emit(token) for each word-level token of text, lower-cased, in order; stops early when
// emit returns false.
template <class Emit>
void for_each_word(std::string_view text, Emit&& emit) {
  std::string word;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (is_word_byte(c)) {
      word.clear();
      while (i < n && is_word_byte(static_cast<unsigned char>(text[i]))) {
        char ch = text[i++];
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
        word.push_back(ch);
      }
      if (!emit(word)) return;
    } else {
      ++i;
      if (c > ' ' && c < 0x7F) {
        word.assign(1, static_cast<char>(c));
        if (!emit(word)) return;
      }
    }
  }
}

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t extra = 0;
    uint32_t cp = 0, min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + extra >= n) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

}  // namespace

std::vector<std::string> Tokenizer::split_words(std::string_view text) {
  std::vector<std::string> out;
  for_each_word(text, [&](const std::string& w) {
    out.push_back(w);
    return true;
  });
  return out;
}

Tokenizer Tokenizer::build(const std::vector<std::string>& texts, const TokenizerOptions& o) {
  if (o.max_len < 1) {
    throw Error("tokenizer max_len " + std::to_string(o.max_len) + " must be at least 1");
  }
  Tokenizer t;
  t.byte_level_ = o.byte_level;
  t.max_len_ = o.max_len;
  if (o.byte_level) return t;
  if (o.vocab_size < kNumSpecial + 1) {
    throw Error("tokenizer vocab_size " + std::to_string(o.vocab_size) +
                " must be at least 3 (PAD, OOV and one word)");
  }
  std::unordered_map<std::string, int64_t> counts;
  for (const std::string& text : texts) {
    for_each_word(text, [&](const std::string& w) {
      ++counts[w];
      return true;
    });
  }
  // Mail is often Latin-1: such words stay out of the vocabulary (they encode as OOV) so that
  // to_json() always yields valid UTF-8 JSON.
  std::erase_if(counts, [](const auto& kv) { return !valid_utf8(kv.first); });
  std::vector<std::pair<std::string, int64_t>> by_count(counts.begin(), counts.end());
  const auto keep =
      std::min<size_t>(by_count.size(), static_cast<size_t>(o.vocab_size - kNumSpecial));
  // Most frequent first; equal counts in byte order, so the vocabulary never depends on hash
  // order.
  auto more_frequent = [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  };
  std::partial_sort(by_count.begin(), by_count.begin() + static_cast<std::ptrdiff_t>(keep),
                    by_count.end(), more_frequent);
  t.words_.reserve(keep);
  for (size_t k = 0; k < keep; ++k) t.words_.push_back(std::move(by_count[k].first));
  t.index_vocab();
  return t;
}

void Tokenizer::index_vocab() {
  ids_.clear();
  ids_.reserve(words_.size());
  for (size_t k = 0; k < words_.size(); ++k) {
    ids_.emplace(words_[k], static_cast<int64_t>(k) + kNumSpecial);
  }
}

int64_t Tokenizer::vocab_size() const {
  return kNumSpecial + (byte_level_ ? 256 : static_cast<int64_t>(words_.size()));
}

std::string Tokenizer::token(int64_t id) const {
  if (id == kPad) return "<pad>";
  if (id == kOov) return "<oov>";
  if (id < 0 || id >= vocab_size()) {
    throw Error("token id " + std::to_string(id) + " is outside [0, " +
                std::to_string(vocab_size()) + ")");
  }
  if (!byte_level_) return words_[static_cast<size_t>(id - kNumSpecial)];
  const char* hex = "0123456789abcdef";
  const auto b = static_cast<unsigned>(id - kNumSpecial);
  return std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
}

std::vector<int64_t> Tokenizer::encode(std::string_view text) const {
  if (max_len_ < 1) throw Error("Tokenizer::encode: the tokenizer was never built or loaded");
  std::vector<int64_t> out;
  if (byte_level_) {
    const size_t n = std::min(text.size(), static_cast<size_t>(max_len_));
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) out.push_back(static_cast<unsigned char>(text[i]) + kNumSpecial);
    return out;
  }
  for_each_word(text, [&](const std::string& w) {
    auto it = ids_.find(w);
    out.push_back(it == ids_.end() ? kOov : it->second);
    return static_cast<int64_t>(out.size()) < max_len_;
  });
  return out;
}

void Tokenizer::encode_batch(const std::vector<std::string>& texts, Tensor& ids,
                             Tensor& lengths) const {
  if (max_len_ < 1) throw Error("Tokenizer::encode: the tokenizer was never built or loaded");
  const auto n = static_cast<int64_t>(texts.size());
  ids = Tensor(DType::kI64, {n, max_len_});
  lengths = Tensor(DType::kI64, {n});
  int64_t* row = ids.data<int64_t>();
  std::fill(row, row + ids.numel(), kPad);
#pragma omp parallel for schedule(dynamic, 16) if (n > 64)
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> t = encode(texts[static_cast<size_t>(i)]);
    std::copy(t.begin(), t.end(), row + i * max_len_);
    lengths.data<int64_t>()[i] = static_cast<int64_t>(t.size());
  }
}

nlohmann::json Tokenizer::to_json() const {
  nlohmann::json j = {{"format", "minnow-tokenizer"},
                      {"version", kFormatVersion},
                      {"level", byte_level_ ? "byte" : "word"},
                      {"max_len", max_len_},
                      {"lowercase", !byte_level_}};
  if (!byte_level_) j["vocab"] = words_;
  return j;
}

Tokenizer Tokenizer::from_json(const nlohmann::json& j) {
  auto fail = [](const std::string& msg) { throw Error("tokenizer JSON: " + msg); };
  if (!j.is_object()) fail("expected an object, got " + std::string(j.type_name()));
  if (j.value("format", nlohmann::json()) != "minnow-tokenizer") {
    fail("\"format\" must be \"minnow-tokenizer\"");
  }
  if (!j.contains("version") || !j["version"].is_number_integer() ||
      j["version"].get<int64_t>() != kFormatVersion) {
    fail("\"version\" must be " + std::to_string(kFormatVersion));
  }
  const nlohmann::json level = j.value("level", nlohmann::json());
  if (level != "word" && level != "byte") fail("\"level\" must be \"word\" or \"byte\"");
  if (!j.contains("max_len") || !j["max_len"].is_number_integer() ||
      j["max_len"].get<int64_t>() < 1 || j["max_len"].get<int64_t>() > (int64_t{1} << 24)) {
    fail("\"max_len\" must be an integer in [1, 2^24]");
  }
  Tokenizer t;
  t.byte_level_ = level == "byte";
  t.max_len_ = j["max_len"].get<int64_t>();
  if (t.byte_level_) return t;
  if (!j.contains("vocab") || !j["vocab"].is_array()) fail("\"vocab\" must be an array of words");
  for (const nlohmann::json& w : j["vocab"]) {
    if (!w.is_string() || w.get<std::string>().empty() || !valid_utf8(w.get<std::string>())) {
      fail("vocab entry " + std::to_string(t.words_.size()) + " must be a non-empty string");
    }
    t.words_.push_back(w.get<std::string>());
  }
  t.index_vocab();
  if (t.ids_.size() != t.words_.size()) fail("\"vocab\" lists a word twice");
  return t;
}

}  // namespace minnow::data
