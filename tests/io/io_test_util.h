// Helpers for the io tests: a scratch directory, a sample model with every kind of content, and
// an independent implementation of the .mnw container layout (docs/mnw.md) used to craft
// corrupt files whose checksums are nevertheless valid.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/mnw.h"

namespace minnow::io::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }
  std::vector<std::string> list() const;  // sorted names, hidden files included

 private:
  std::string path_;
};

void write_raw(const std::string& path, const std::string& bytes);

// Section kinds as documented.
enum : uint32_t { kGraph = 1, kMetadata = 2, kTensors = 3, kOptimizer = 4, kTrainer = 5 };

struct RawSection {
  uint32_t kind = 0;
  std::string bytes;
  uint64_t offset = 0;  // as found by split_mnw; assemble_mnw recomputes it
};
struct RawFile {
  uint32_t version = 1;
  uint32_t flags = 0;
  std::vector<RawSection> sections;
  std::string& section(uint32_t kind);  // the section's bytes; fails the test when absent
};
RawFile split_mnw(const std::string& file);  // for well-formed files only
std::string assemble_mnw(const RawFile& f);  // valid checksums, 64-byte aligned sections
uint32_t crc32_of(const std::string& bytes);

// The TENSORS / OPTIMIZER section split into its JSON index and its data area.
struct RawTensorSection {
  nlohmann::json index;
  std::string data;
};
RawTensorSection split_tensor_section(const std::string& bytes);
std::string assemble_tensor_section(const RawTensorSection& s);

// A model exercising every attribute type, every dtype, quantization parameters, trainable
// flags, metadata, optimizer and trainer state. Its ops are not all shape-valid: use it with
// decode_mnw. `small_cnn_contents` is a valid Conv2d/Relu/Flatten/Linear model for parse_mnw.
MnwContents sample_contents();
MnwContents small_cnn_contents();

// gtest expectations: values and tensors compared bit for bit (NaN attributes equal NaN).
void expect_same_contents(const MnwContents& a, const MnwContents& b);
void expect_same_tensor(const Tensor& a, const Tensor& b, const std::string& name);

}  // namespace minnow::io::testing
