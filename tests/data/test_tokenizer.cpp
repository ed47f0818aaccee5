#include <gtest/gtest.h>

#include "data/tokenizer.h"
#include "data_test_util.h"
#include "minnow/error.h"

namespace minnow::data {
namespace {

using testing::expect_error;
using Ids = std::vector<int64_t>;

TEST(Tokenizer, SplitsWordsLowercasesAndKeepsPunctuation) {
  EXPECT_EQ(Tokenizer::split_words("Hello, WORLD!  win $100\tnow\r\n"),
            (std::vector<std::string>{"hello", ",", "world", "!", "win", "$", "100", "now"}));
  // UTF-8 stays inside the word; only ASCII letters are lower-cased.
  EXPECT_EQ(Tokenizer::split_words("Caf\xc3\xa9 OK"),
            (std::vector<std::string>{"caf\xc3\xa9", "ok"}));
  EXPECT_TRUE(Tokenizer::split_words(" \n\t").empty());
}

TEST(Tokenizer, VocabularyMostFrequentFirstTiesByteOrder) {
  TokenizerOptions o;
  o.vocab_size = 5;  // PAD, OOV + 3 words
  o.max_len = 8;
  Tokenizer t = Tokenizer::build({"b a c c", "d c b a", "e"}, o);
  // counts: c 3, a 2, b 2, d 1, e 1 -> c, a, b (a before b: tie broken byte-wise)
  EXPECT_EQ(t.vocab_size(), 5);
  EXPECT_EQ(t.token(2), "c");
  EXPECT_EQ(t.token(3), "a");
  EXPECT_EQ(t.token(4), "b");
  EXPECT_EQ(t.token(Tokenizer::kPad), "<pad>");
  EXPECT_EQ(t.encode("C a D b"), (Ids{2, 3, Tokenizer::kOov, 4}));
  // Input order does not change the vocabulary.
  Tokenizer t2 = Tokenizer::build({"e", "d c b a", "b a c c"}, o);
  EXPECT_EQ(t2.to_json(), t.to_json());
}

TEST(Tokenizer, PadsAndTruncates) {
  TokenizerOptions o;
  o.max_len = 3;
  Tokenizer t = Tokenizer::build({"x y z w"}, o);
  Tensor ids, lengths;
  t.encode_batch({"x y", "x y z w w", ""}, ids, lengths);
  ASSERT_EQ(ids.shape(), (Shape{3, 3}));
  const int64_t* p = ids.data<int64_t>();
  const int64_t x = t.encode("x")[0], y = t.encode("y")[0], z = t.encode("z")[0];
  EXPECT_EQ(Ids(p, p + 9), (Ids{x, y, 0, x, y, z, 0, 0, 0}));
  EXPECT_EQ(Ids(lengths.data<int64_t>(), lengths.data<int64_t>() + 3), (Ids{2, 3, 0}));
}

TEST(Tokenizer, ByteLevel) {
  TokenizerOptions o;
  o.byte_level = true;
  o.max_len = 4;
  Tokenizer t = Tokenizer::build({}, o);
  EXPECT_EQ(t.vocab_size(), 258);
  EXPECT_EQ(t.encode("Ab\xff"), (Ids{'A' + 2, 'b' + 2, 255 + 2}));
  EXPECT_EQ(t.encode("abcdef").size(), 4u);
  EXPECT_EQ(t.token(2 + 0x41), "<0x41>");
  Tokenizer back = Tokenizer::from_json(t.to_json());
  EXPECT_TRUE(back.byte_level());
  EXPECT_EQ(back.encode("Ab\xff"), t.encode("Ab\xff"));
}

TEST(Tokenizer, JsonRoundTrip) {
  TokenizerOptions o;
  o.max_len = 6;
  Tokenizer t = Tokenizer::build({"the cat sat on the mat", "The dog!"}, o);
  nlohmann::json j = nlohmann::json::parse(t.to_json().dump());
  Tokenizer back = Tokenizer::from_json(j);
  EXPECT_EQ(back.max_len(), 6);
  EXPECT_EQ(back.vocab_size(), t.vocab_size());
  EXPECT_EQ(back.encode("the dog sat on a mat"), t.encode("the dog sat on a mat"));
  EXPECT_EQ(j["vocab"][0], "the");
}

TEST(Tokenizer, InvalidUtf8WordsStayOutOfTheVocabulary) {
  TokenizerOptions o;
  Tokenizer t = Tokenizer::build({"caf\xe9 caf\xe9 ok"}, o);  // Latin-1 e-acute
  EXPECT_EQ(t.vocab_size(), 3);
  EXPECT_EQ(t.encode("caf\xe9 ok"), (Ids{Tokenizer::kOov, 2}));
  EXPECT_NO_THROW(t.to_json().dump());
}

TEST(TokenizerErrors, BadOptionsAndJson) {
  TokenizerOptions o;
  o.max_len = 0;
  expect_error([&] { Tokenizer::build({}, o); }, {"max_len", "at least 1"});
  o.max_len = 4;
  o.vocab_size = 2;
  expect_error([&] { Tokenizer::build({}, o); }, {"vocab_size", "at least 3"});
  expect_error([] { Tokenizer::from_json(nlohmann::json::array()); }, {"tokenizer JSON"});
  nlohmann::json good = {{"format", "minnow-tokenizer"},
                         {"version", 1},
                         {"level", "word"},
                         {"max_len", 4},
                         {"vocab", {"a", "b"}}};
  EXPECT_NO_THROW(Tokenizer::from_json(good));
  nlohmann::json j = good;
  j["vocab"] = {"a", "a"};
  expect_error([&] { Tokenizer::from_json(j); }, {"twice"});
  j = good;
  j["vocab"] = {"a", 3};
  expect_error([&] { Tokenizer::from_json(j); }, {"vocab entry 1"});
  j = good;
  j["max_len"] = -1;
  expect_error([&] { Tokenizer::from_json(j); }, {"max_len"});
  j = good;
  j["level"] = "char";
  expect_error([&] { Tokenizer::from_json(j); }, {"level"});
  j = good;
  j["version"] = 2;
  expect_error([&] { Tokenizer::from_json(j); }, {"version"});
  expect_error([] { Tokenizer().encode("x"); }, {"never built"});
}

}  // namespace
}  // namespace minnow::data
