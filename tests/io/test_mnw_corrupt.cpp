// A .mnw file is untrusted input: every corruption must end in a clean minnow::Error that names
// the file and the field, never a crash or a giant allocation.
#include <gtest/gtest.h>
#include <zlib.h>

#include <functional>

#include "core/rng.h"
#include "io/mnw.h"
#include "io_test_util.h"
#include "minnow/error.h"

namespace minnow::io {
namespace {

using namespace testing;
using nlohmann::json;

std::string error_of(const std::string& bytes) {
  try {
    decode_mnw(bytes.data(), bytes.size(), "model.mnw");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_MNW_ERROR(bytes, needle)                                                    \
  do {                                                                                     \
    std::string msg_ = error_of(bytes);                                                    \
    EXPECT_NE(msg_.find(needle), std::string::npos) << "message: " << msg_;                \
    EXPECT_EQ(msg_.rfind("model.mnw: ", 0), 0u) << "not prefixed with the file: " << msg_; \
  } while (0)

const std::string& sample_file() {
  static const std::string bytes = serialize_mnw(sample_contents());
  return bytes;
}

void put_u64(std::string& s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}

void fix_header_crc(std::string& s, size_t sections) {
  uint32_t crc = static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef*>(s.data()), 20));
  crc = static_cast<uint32_t>(
      crc32_z(crc, reinterpret_cast<const Bytef*>(s.data()) + 24, 32 * sections));
  for (int i = 0; i < 4; ++i) s[20 + i] = static_cast<char>(crc >> (8 * i));
}

// The sample file with one JSON section rewritten; checksums stay valid.
std::string with_json_section(uint32_t kind, const std::function<void(json&)>& mutate) {
  RawFile f = split_mnw(sample_file());
  json j = json::parse(f.section(kind));
  mutate(j);
  f.section(kind) = j.dump();
  return assemble_mnw(f);
}

std::string with_tensor_index(uint32_t kind, const std::function<void(json&)>& mutate) {
  RawFile f = split_mnw(sample_file());
  RawTensorSection ts = split_tensor_section(f.section(kind));
  mutate(ts.index);
  f.section(kind) = assemble_tensor_section(ts);
  return assemble_mnw(f);
}

json& entry_named(json& index, const std::string& name) {
  for (json& e : index) {
    if (e["name"] == name) return e;
  }
  throw std::runtime_error("no tensor " + name);
}

TEST(MnwCorrupt, EmptyFile) { EXPECT_MNW_ERROR(std::string(), "model.mnw: empty file"); }

TEST(MnwCorrupt, BadMagic) {
  EXPECT_MNW_ERROR(std::string("hello, world, this is not a model file at all"),
                   "model.mnw: not a minnow model file (bad magic)");
  std::string bad = sample_file();
  bad[1] = 'X';
  EXPECT_MNW_ERROR(bad, "bad magic");
  EXPECT_MNW_ERROR(std::string("\x89MX", 3), "bad magic");  // a short prefix that differs
  EXPECT_MNW_ERROR(std::string("\x89MN", 3), "truncated");  // a short prefix that matches
}

TEST(MnwCorrupt, WrongVersion) {
  RawFile f = split_mnw(sample_file());
  f.version = 2;
  EXPECT_MNW_ERROR(assemble_mnw(f),
                   "model.mnw: unsupported .mnw version 2 (this minnow reads version 1)");
  f.version = 0;
  EXPECT_MNW_ERROR(assemble_mnw(f), "unsupported .mnw version 0");
  f.version = 1;
  f.flags = 4;
  EXPECT_MNW_ERROR(assemble_mnw(f), "unsupported header flags 4");
}

TEST(MnwCorrupt, EveryTruncationIsAnError) {
  const std::string& bytes = sample_file();
  ASSERT_LT(bytes.size(), 20000u);  // keeps this loop fast
  for (size_t len = 0; len < bytes.size(); ++len) {
    std::string msg = error_of(bytes.substr(0, len));
    ASSERT_NE(msg, "(no error)") << "prefix of " << len << " bytes decoded";
  }
}

TEST(MnwCorrupt, TruncationMessageNamesTheSection) {
  RawFile f = split_mnw(sample_file());
  uint64_t tensors_at = 0, tensors_end = 0;
  for (const RawSection& s : f.sections) {
    if (s.kind == kTensors) tensors_at = s.offset, tensors_end = s.offset + s.bytes.size();
  }
  std::string cut = sample_file().substr(0, tensors_at + 100);
  EXPECT_MNW_ERROR(cut, "model.mnw: truncated (file is " + std::to_string(cut.size()) +
                            " bytes, section TENSORS ends at " + std::to_string(tensors_end) + ")");
  EXPECT_MNW_ERROR(sample_file().substr(0, 30), "truncated (file is 30 bytes, the section table");
  EXPECT_MNW_ERROR(sample_file().substr(0, 10), "truncated (file is 10 bytes, the header");
}

TEST(MnwCorrupt, EverySingleByteChangeIsAnError) {
  const std::string& bytes = sample_file();
  Rng rng(1);
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ static_cast<char>(1 + rng.below(255)));
    ASSERT_NE(error_of(bad), "(no error)") << "change at offset " << i << " went unnoticed";
  }
}

TEST(MnwCorrupt, RandomMultiByteDamageIsAnError) {
  const std::string& bytes = sample_file();
  Rng rng(2);
  for (int trial = 0; trial < 400; ++trial) {
    std::string bad = bytes;
    int n = 2 + static_cast<int>(rng.below(7));
    for (int k = 0; k < n; ++k) {
      size_t at = rng.below(bad.size());
      bad[at] = static_cast<char>(bad[at] ^ static_cast<char>(1 + rng.below(255)));
    }
    if (bad == bytes) continue;
    ASSERT_NE(error_of(bad), "(no error)") << "trial " << trial;
  }
}

TEST(MnwCorrupt, ChecksumMismatchNamesTheSection) {
  RawFile f = split_mnw(sample_file());
  for (const RawSection& s : f.sections) {
    std::string bad = sample_file();
    bad[s.offset + s.bytes.size() / 2] ^= 0x20;
    const char* names[] = {"", "GRAPH", "METADATA", "TENSORS", "OPTIMIZER", "TRAINER"};
    EXPECT_MNW_ERROR(bad, std::string("model.mnw: checksum mismatch in section ") + names[s.kind]);
  }
  std::string bad = sample_file();
  bad[24 + 4] ^= 1;  // a section's stored CRC, inside the table
  EXPECT_MNW_ERROR(bad, "model.mnw: checksum mismatch in the header");
}

TEST(MnwCorrupt, PaddingAndTrailingBytes) {
  std::string bad = sample_file();
  size_t table_end = 24 + 32 * 5;
  ASSERT_NE(table_end % 64, 0u);  // there is padding before the first section
  bad[table_end] = 1;
  EXPECT_MNW_ERROR(bad, "corrupt padding at offset " + std::to_string(table_end));
  EXPECT_MNW_ERROR(sample_file() + "x", "1 bytes of unexpected data after the last section");
}

TEST(MnwCorrupt, SectionTableProblems) {
  RawFile f = split_mnw(sample_file());
  RawFile extra = f;
  extra.sections.push_back({9, "{}", 0});
  extra.sections.erase(extra.sections.begin() + 1);  // stays within 5 sections
  EXPECT_MNW_ERROR(assemble_mnw(extra), "unknown section kind 9");
  RawFile twice = f;
  twice.sections[1] = twice.sections[0];
  EXPECT_MNW_ERROR(assemble_mnw(twice), "section GRAPH appears twice");
  RawFile missing = f;
  missing.sections.erase(missing.sections.begin() + 2);
  EXPECT_MNW_ERROR(assemble_mnw(missing), "missing section TENSORS");
  RawFile none = f;
  none.sections.clear();
  EXPECT_MNW_ERROR(assemble_mnw(none), "section count 0");

  // Absurd offsets and lengths with a valid header checksum: clean errors, no huge reads.
  const size_t entry1 = 24 + 32;  // METADATA's table entry
  std::string bad = sample_file();
  put_u64(bad, entry1 + 8, uint64_t{1} << 62);
  fix_header_crc(bad, 5);
  EXPECT_MNW_ERROR(bad, "section METADATA ends at " +
                            std::to_string((uint64_t{1} << 62) + f.sections[1].bytes.size()));
  bad = sample_file();
  put_u64(bad, entry1 + 16, ~uint64_t{0});
  fix_header_crc(bad, 5);
  EXPECT_MNW_ERROR(bad, "section METADATA ends at beyond 2^64");
  bad = sample_file();
  put_u64(bad, entry1 + 8, f.sections[1].offset + 8);
  fix_header_crc(bad, 5);
  EXPECT_MNW_ERROR(bad, "not 64-byte aligned");
  bad = sample_file();
  put_u64(bad, entry1 + 8, f.sections[0].offset);
  fix_header_crc(bad, 5);
  EXPECT_MNW_ERROR(bad, "overlaps the previous section");
  bad = sample_file();
  put_u64(bad, entry1 + 8, 0);
  fix_header_crc(bad, 5);
  EXPECT_MNW_ERROR(bad, "overlaps the header");
  bad = sample_file();
  put_u64(bad, entry1 + 24, 1);  // claims deflated JSON, holds plain JSON
  fix_header_crc(bad, 5);
  EXPECT_MNW_ERROR(bad, "deflated JSON: corrupt zlib data");
  bad = sample_file();
  put_u64(bad, entry1 + 24, uint64_t{1} << 40);
  fix_header_crc(bad, 5);
  EXPECT_MNW_ERROR(bad, "more than zlib can expand");
}

TEST(MnwCorrupt, GraphSchemaErrorsNameTheField) {
  struct Case {
    std::function<void(json&)> mutate;
    std::string needle;
  };
  const std::string at = "model.mnw: section GRAPH: ";
  std::vector<Case> cases = {
      {[](json& j) { j["nodes"][0]["op"] = "NoSuchOp"; },
       at + "nodes[0].op: unknown op 'NoSuchOp'"},
      {[](json& j) { j["nodes"][1]["name"] = 5; },
       at + "nodes[1].name: expected a string, got integer"},
      {[](json& j) { j["nodes"][1]["inputs"] = "h"; }, at + "nodes[1].inputs: expected an array"},
      {[](json& j) { j["nodes"][1]["inputs"][0] = nullptr; },
       at + "nodes[1].inputs[0]: expected a string, got null"},
      {[](json& j) { j["inputs"][0]["dtype"] = "f16"; },
       at + "inputs[0].dtype: unknown dtype 'f16'"},
      {[](json& j) { j["inputs"][0]["shape"][0] = -2; }, at + "inputs[0].shape[0]: dimension -2"},
      {[](json& j) { j["outputs"][0]["shape"] = "N,3"; },
       at + "outputs[0].shape: expected an array"},
      {[](json& j) { j["inputs"][0]["shape"] = json(std::vector<int>(33, 1)); },
       "more than 32 dimensions"},
      {[](json& j) {
         j["nodes"][0]["attrs"]["an_int"] = {{"int", 1.5}};
       },
       at + "nodes[0].attrs.an_int.int: expected an integer, got number"},
      {[](json& j) {
         j["nodes"][0]["attrs"]["an_int"] = {{"int", 1}, {"float", 2.0}};
       },
       "nodes[0].attrs.an_int: expected exactly one of"},
      {[](json& j) {
         j["nodes"][0]["attrs"]["an_int"] = {{"bool", true}};
       },
       "nodes[0].attrs.an_int: unexpected field 'bool'"},
      {[](json& j) { j["nodes"][0]["attrs"]["an_int"] = 3; },
       "nodes[0].attrs.an_int: expected an object"},
      {[](json& j) {
         j["nodes"][0]["attrs"]["an_int"] = {{"int", 18446744073709551615u}};
       },
       "integer 18446744073709551615 is out of range"},
      {[](json& j) {
         j["nodes"][0]["attrs"]["floats"] = {{"floats", {1.0, "NaN"}}};
       },
       "nodes[0].attrs.floats.floats[1]: expected a number, got string"},
      {[](json& j) { j["nodes"][0]["attrs"] = json::array(); },
       "nodes[0].attrs: expected an object"},
      {[](json& j) { j.erase("nodes"); }, at + "missing field 'nodes'"},
      {[](json& j) { j["nodes"][0]["color"] = "red"; }, "nodes[0]: unexpected field 'color'"},
      {[](json& j) { j = json::array(); }, at + "expected a JSON object, got array"},
  };
  for (const Case& c : cases) EXPECT_MNW_ERROR(with_json_section(kGraph, c.mutate), c.needle);
}

TEST(MnwCorrupt, MalformedJson) {
  RawFile f = split_mnw(sample_file());
  f.section(kGraph) = "{\"name\": ";
  EXPECT_MNW_ERROR(assemble_mnw(f), "model.mnw: section GRAPH: malformed JSON");
  f.section(kGraph) = "{\"name\": \"\xff\xfe\"}";
  EXPECT_MNW_ERROR(assemble_mnw(f), "malformed JSON");
  f = split_mnw(sample_file());
  f.section(kMetadata) = "{\"a\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_MNW_ERROR(assemble_mnw(f), "model.mnw: section METADATA: JSON nested deeper than 64");
  f.section(kMetadata) = "[1, 2]";
  EXPECT_MNW_ERROR(assemble_mnw(f), "section METADATA: expected a JSON object, got array");
  f = split_mnw(sample_file());
  f.section(kTrainer) = "7";
  EXPECT_MNW_ERROR(assemble_mnw(f), "section TRAINER: expected a JSON object, got number");
}

TEST(MnwCorrupt, TensorIndexErrorsNameTheField) {
  struct Case {
    std::function<void(json&)> mutate;
    std::string needle;
  };
  const std::string at = "model.mnw: section TENSORS: ";
  std::vector<Case> cases = {
      // A valid checksum but a 4 GiB shape: rejected before any allocation.
      {[](json& j) {
         json& e = entry_named(j, "w");
         e["shape"] = {uint64_t{1} << 20, 1024};
         e["nbytes"] = uint64_t{1} << 32;
       },
       "needs more than the section's"},
      {[](json& j) {
         entry_named(j, "w")["shape"] = {uint64_t{1} << 40, uint64_t{1} << 40};
       },
       "shape [1099511627776,1099511627776] of f32 needs more"},
      {[](json& j) {
         entry_named(j, "w")["shape"] = {int64_t{-3}, -4};
       },
       "shape[0]: negative dimension -3"},
      {[](json& j) { entry_named(j, "w")["offset"] = uint64_t{1} << 63; },
       "lies outside the section's"},
      {[](json& j) { entry_named(j, "w")["offset"] = 4; },
       "offset 4 of 48 bytes is not 8-byte aligned"},
      {[](json& j) {
         entry_named(j, "w")["shape"] = {4, 4};
         entry_named(j, "w")["nbytes"] = 64;
         entry_named(j, "w")["offset"] = 8;
       },
       "offset 8 of 64 bytes is not 64-byte aligned"},
      {[](json& j) { entry_named(j, "w")["offset"] = -64; },
       "expected a non-negative integer, got -64"},
      {[](json& j) { entry_named(j, "w")["nbytes"] = 44; },
       "nbytes 44 does not match shape [3,4] of f32 (48 bytes)"},
      {[](json& j) { entry_named(j, "w")["dtype"] = "bf16"; }, "dtype: unknown dtype 'bf16'"},
      {[](json& j) { entry_named(j, "w")["encoding"] = "sparse"; },
       "unsupported encoding 'sparse'"},
      {[](json& j) { entry_named(j, "w")["trainable"] = "yes"; },
       "trainable: expected true or false, got string"},
      {[](json& j) { entry_named(j, "w").erase("trainable"); }, "missing field 'trainable'"},
      {[](json& j) { entry_named(j, "w")["name"] = ""; }, "empty tensor name"},
      {[](json& j) { entry_named(j, "w")["name"] = "b"; }, "duplicate tensor name 'b'"},
      {[](json& j) {
         entry_named(j, "w")["offset"] = entry_named(j, "b")["offset"];
         entry_named(j, "w")["shape"] = {3};
         entry_named(j, "w")["nbytes"] = 12;
       },
       "overlap"},
      {[](json& j) { entry_named(j, "q8")["quant"]["axis"] = 5; },
       "quantization axis 5 is out of range"},
      {[](json& j) { entry_named(j, "q8")["quant"]["scale"] = {1.0}; },
       "has 1 scales but 2 zero points"},
      {[](json& j) {
         entry_named(j, "q8")["quant"]["scale"] = {1.0, 1e300};
       },
       "quant.scale[1]: not a finite float"},
      {[](json& j) { entry_named(j, "qu8")["quant"]["zero_point"] = {256}; },
       "zero_point[0] = 256 is out of range for u8"},
      {[](json& j) { entry_named(j, "qu8")["quant"]["zero_point"] = {int64_t{1} << 40}; },
       "zero_point[0]: out of the int32 range"},
      {[](json& j) { j = json::object(); }, at + "expected an array, got object"},
  };
  for (const Case& c : cases) EXPECT_MNW_ERROR(with_tensor_index(kTensors, c.mutate), c.needle);
  EXPECT_MNW_ERROR(with_tensor_index(kOptimizer, [](json& j) { j[1]["name"] = j[0]["name"]; }),
                   "model.mnw: section OPTIMIZER: ");
}

TEST(MnwCorrupt, TensorSectionFraming) {
  RawFile f = split_mnw(sample_file());
  std::string& t = f.section(kTensors);
  std::string saved = t;
  put_u64(t, 0, ~uint64_t{0});
  EXPECT_MNW_ERROR(assemble_mnw(f), "index length 18446744073709551615 exceeds the section");
  t = saved.substr(0, 5);
  EXPECT_MNW_ERROR(assemble_mnw(f), "section TENSORS: section is 5 bytes, too short");
  // The section stops right after its index, before the padding that precedes the data.
  t = std::string(8, '\0') + "[]";
  put_u64(t, 0, 2);
  EXPECT_MNW_ERROR(assemble_mnw(f), "section TENSORS: section ends inside the padding");
  t.resize(64, '\0');  // with the padding it is a valid empty section
  EXPECT_EQ(error_of(assemble_mnw(f)), "(no error)");
}

}  // namespace
}  // namespace minnow::io
