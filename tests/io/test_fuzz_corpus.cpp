// Replays the fuzzers' corpora (fuzz/corpus/{mnw,npy,onnx}: the seeds, and any input a
// fuzzing run found that once crashed) through the loaders in the normal build: each file loads
// or is refused with minnow::Error, nothing else.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/mnw.h"
#include "io/npy.h"
#include "minnow/error.h"
#include "onnx/onnx_import.h"
#include "runtime/inference_session.h"

namespace fs = std::filesystem;

namespace minnow {
namespace {

std::vector<std::pair<std::string, std::string>> corpus(const std::string& name) {
  std::vector<std::pair<std::string, std::string>> files;
  const fs::path dir = fs::path(MINNOW_SOURCE_DIR) / "fuzz" / "corpus" / name;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream f(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    files.emplace_back(e.path().filename().string(), ss.str());
  }
  return files;
}

TEST(FuzzCorpus, MnwFilesLoadOrFailCleanly) {
  const auto files = corpus("mnw");
  ASSERT_GE(files.size(), 4u);
  int loaded = 0;
  for (const auto& [name, bytes] : files) {
    SCOPED_TRACE(name);
    try {
      io::MnwContents c = io::parse_mnw(bytes.data(), bytes.size(), name);
      InferenceSession session(std::move(c.graph));
      ++loaded;
    } catch (const Error&) {
    }
  }
  EXPECT_GE(loaded, 4);  // the seeds are valid models
}

TEST(FuzzCorpus, OnnxFilesImportOrFailCleanly) {
  const auto files = corpus("onnx");
  ASSERT_GE(files.size(), 5u);
  int loaded = 0;
  for (const auto& [name, bytes] : files) {
    SCOPED_TRACE(name);
    try {
      InferenceSession session(onnx::import_onnx_bytes(bytes.data(), bytes.size(), name));
      ++loaded;
    } catch (const Error&) {
    }
  }
  EXPECT_GE(loaded, 5);  // the seeds are valid models
}

TEST(FuzzCorpus, NpyFilesLoadOrFailCleanly) {
  const auto files = corpus("npy");
  ASSERT_GE(files.size(), 5u);
  for (const auto& [name, bytes] : files) {
    SCOPED_TRACE(name);
    try {
      Tensor t = io::parse_npy(bytes.data(), bytes.size(), name);
      const std::string again = io::serialize_npy(t);
      EXPECT_EQ(io::parse_npy(again.data(), again.size(), name).shape(), t.shape());
    } catch (const Error&) {
    }
  }
}

}  // namespace
}  // namespace minnow
