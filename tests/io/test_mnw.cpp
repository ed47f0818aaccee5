// .mnw round trips and format properties. Corrupt files: test_mnw_corrupt.cpp.
#include <gtest/gtest.h>

#include <cstring>

#include "io/atomic_file.h"
#include "io/mnw.h"
#include "io/mnw_graph.h"
#include "io_test_util.h"
#include "minnow/error.h"

namespace minnow::io {
namespace {

using namespace testing;

MnwContents round_trip(const MnwContents& c) {
  std::string bytes = serialize_mnw(c);
  return decode_mnw(bytes.data(), bytes.size(), "mem.mnw");
}

TEST(Mnw, RoundTripPreservesEverything) {
  MnwContents c = sample_contents();
  expect_same_contents(c, round_trip(c));
}

TEST(Mnw, AttributeTypesSurviveExactly) {
  MnwContents back = round_trip(sample_contents());
  const Attrs& a = back.graph.nodes[0].attrs;
  // A float holding an integral value stays a float; empty lists keep their element type.
  EXPECT_TRUE(std::holds_alternative<double>(a.all().at("integral_float")));
  EXPECT_TRUE(std::holds_alternative<std::vector<int64_t>>(a.all().at("no_ints")));
  EXPECT_TRUE(std::holds_alternative<std::vector<double>>(a.all().at("no_floats")));
  EXPECT_EQ(a.get_float("a_float", 0), 0.1);  // bit-exact, not merely close
  EXPECT_EQ(a.get_int("big_int", 0), std::numeric_limits<int64_t>::min());
}

TEST(Mnw, EmptyOptionalPartsRoundTrip) {
  MnwContents c;
  c.graph.name = "empty";
  MnwContents back = round_trip(c);
  expect_same_contents(c, back);
  EXPECT_TRUE(back.metadata.is_object());
  EXPECT_TRUE(back.trainer_state.is_object());
}

TEST(Mnw, SerializationIsDeterministicAndCanonical) {
  MnwContents c = sample_contents();
  std::string a = serialize_mnw(c);
  EXPECT_EQ(a, serialize_mnw(c));
  EXPECT_EQ(a, serialize_mnw(decode_mnw(a.data(), a.size(), "a.mnw")));
}

TEST(Mnw, HeaderMatchesTheDocumentedLayout) {
  std::string bytes = serialize_mnw(sample_contents());
  ASSERT_GE(bytes.size(), 24u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89MNW\r\n\x1a\n", 8));
  RawFile f = split_mnw(bytes);
  EXPECT_EQ(f.version, kMnwVersion);
  EXPECT_EQ(f.flags, 0u);
  ASSERT_EQ(f.sections.size(), 5u);
  // The test's own writer of the documented layout reproduces the file byte for byte.
  EXPECT_EQ(assemble_mnw(f), bytes);
}

// Large JSON parts are stored deflated, with their inflated length in the section table, and
// read back exactly; small ones stay plain (readable in a hex dump).
TEST(Mnw, LargeJsonIsDeflated) {
  MnwContents c = sample_contents();
  std::string text;
  for (int i = 0; i < 400; ++i) text += "normalization mean and std per channel ";
  c.metadata["notes"] = text;
  const std::string bytes = serialize_mnw(c);
  const RawFile f = split_mnw(bytes);
  uint64_t metadata_json = 0, graph_json = 0;
  for (size_t i = 0; i < f.sections.size(); ++i) {
    const char* e = bytes.data() + 24 + i * 32;
    uint64_t json_length = 0;
    std::memcpy(&json_length, e + 24, 8);  // little-endian host (x86-64)
    if (f.sections[i].kind == 2) metadata_json = json_length;
    if (f.sections[i].kind == 1) graph_json = json_length;
  }
  EXPECT_GE(metadata_json, text.size());
  EXPECT_EQ(graph_json, 0u);
  EXPECT_LT(bytes.size(), text.size());
  EXPECT_EQ(round_trip(c).metadata, c.metadata);
}

// Every tensor of 64 bytes or more starts at a file offset that is a multiple of 64 (smaller
// ones at multiples of 8), and the bytes there are the tensor's raw little-endian data: the file
// can be memory-mapped.
TEST(Mnw, TensorDataIsAlignedInTheFile) {
  MnwContents c = sample_contents();
  std::string bytes = serialize_mnw(c);
  RawFile f = split_mnw(bytes);
  int checked = 0;
  for (const RawSection& s : f.sections) {
    if (s.kind != kTensors && s.kind != kOptimizer) continue;
    EXPECT_EQ(s.offset % 64, 0u);
    RawTensorSection ts = split_tensor_section(s.bytes);
    uint64_t data_start = s.offset + (s.bytes.size() - ts.data.size());
    EXPECT_EQ(data_start % 64, 0u);
    for (const auto& entry : ts.index) {
      uint64_t at = data_start + entry["offset"].get<uint64_t>();
      std::string name = entry["name"];
      const Tensor& t =
          s.kind == kTensors ? c.graph.initializers.at(name).value : c.optimizer_state.at(name);
      EXPECT_EQ(at % (t.nbytes() < 64 ? 8 : 64), 0u) << name;
      ASSERT_LE(at + t.nbytes(), bytes.size());
      EXPECT_EQ(std::memcmp(bytes.data() + at, t.raw(), t.nbytes()), 0) << name;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 13);
}

TEST(Mnw, SaveAndLoadThroughAFile) {
  TempDir dir;
  MnwContents c = small_cnn_contents();
  save_mnw(dir.file("model.mnw"), c);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"model.mnw"});
  MnwContents back = load_mnw(dir.file("model.mnw"));
  expect_same_contents(c, back);
  auto shapes = back.graph.infer_shapes();
  EXPECT_EQ(shapes.at("y").shape, (Shape{kDynamic, 3}));
}

TEST(Mnw, LoadMissingFileNamesIt) {
  try {
    load_mnw("/nonexistent/dir/model.mnw");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.mnw"), std::string::npos)
        << e.what();
  }
}

std::string serialize_error(const MnwContents& c) {
  try {
    serialize_mnw(c);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// minnow never writes a file it would refuse to read.
TEST(Mnw, SerializeRejectsWhatLoadWouldReject) {
  MnwContents c = small_cnn_contents();
  c.graph.nodes[3].inputs[0] = "missing";
  EXPECT_NE(serialize_error(c).find("'missing'"), std::string::npos) << serialize_error(c);

  c = small_cnn_contents();
  c.graph.initializers["fc.w"].value = Tensor();
  EXPECT_NE(serialize_error(c).find("'fc.w'"), std::string::npos) << serialize_error(c);

  c = small_cnn_contents();
  c.optimizer_state["m"] = Tensor();
  EXPECT_NE(serialize_error(c).find("'m'"), std::string::npos) << serialize_error(c);

  c = small_cnn_contents();
  c.optimizer_state[""] = Tensor(DType::kF32, {1});
  EXPECT_NE(serialize_error(c).find("empty name"), std::string::npos) << serialize_error(c);

  c = small_cnn_contents();
  Tensor q(DType::kI8, {4});
  q.quant.scale = {0.5f, 0.5f};
  q.quant.zero_point = {0, 0};
  c.graph.initializers["q"] = Initializer{q, false};
  EXPECT_NE(serialize_error(c).find("per-tensor"), std::string::npos) << serialize_error(c);
  q.quant.axis = 0;
  c.graph.initializers["q"] = Initializer{q, false};
  EXPECT_NE(serialize_error(c).find("needs 4 scales"), std::string::npos) << serialize_error(c);
  q.quant.scale = {1, 1, 1, std::numeric_limits<float>::infinity()};
  q.quant.zero_point = {0, 0, 0, 0};
  c.graph.initializers["q"] = Initializer{q, false};
  EXPECT_NE(serialize_error(c).find("scale[3]"), std::string::npos) << serialize_error(c);
  q.quant.scale = {1, 1, 1, 1};
  q.quant.zero_point = {0, 0, 0, 200};
  c.graph.initializers["q"] = Initializer{q, false};
  EXPECT_NE(serialize_error(c).find("zero_point[3]"), std::string::npos) << serialize_error(c);

  c = small_cnn_contents();
  c.metadata = nlohmann::json::array();
  EXPECT_NE(serialize_error(c).find("metadata"), std::string::npos) << serialize_error(c);

  c = small_cnn_contents();
  c.trainer_state = 3;
  EXPECT_NE(serialize_error(c).find("trainer state"), std::string::npos) << serialize_error(c);

  c = small_cnn_contents();
  c.graph.name = "bad \xff utf-8";
  EXPECT_NE(serialize_error(c).find("UTF-8"), std::string::npos) << serialize_error(c);
}

TEST(Mnw, SaveFailureLeavesTheOldFile) {
  TempDir dir;
  std::string path = dir.file("model.mnw");
  save_mnw(path, small_cnn_contents());
  std::string before = read_file(path);
  MnwContents bad = small_cnn_contents();
  bad.graph.initializers["fc.w"].value = Tensor();
  try {
    save_mnw(path, bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(path), before);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"model.mnw"});
}

TEST(Mnw, GraphChecksRunAfterDecoding) {
  // Structurally bad graphs decode (the JSON is well-formed) but fail check_mnw_graph, with the
  // file named in the message.
  auto expect_graph_error = [](MnwContents c, const std::string& needle) {
    MnwContents carrier;  // a valid file holding c's tensors, then c's graph put in
    carrier.graph.initializers = c.graph.initializers;
    RawFile f = split_mnw(serialize_mnw(carrier));
    f.section(kGraph) = graph_to_json(c.graph).dump();
    std::string bytes = assemble_mnw(f);
    EXPECT_NO_THROW(decode_mnw(bytes.data(), bytes.size(), "bad.mnw"));
    try {
      parse_mnw(bytes.data(), bytes.size(), "bad.mnw");
      ADD_FAILURE() << "expected an error mentioning " << needle;
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_EQ(msg.rfind("bad.mnw: invalid graph: ", 0), 0u) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    }
  };
  MnwContents c = small_cnn_contents();
  c.graph.nodes[3].inputs[0] = "nowhere";  // dangling value name
  expect_graph_error(c, "'nowhere'");
  c = small_cnn_contents();
  std::swap(c.graph.nodes[2], c.graph.nodes[3]);  // reads "xf" before it is produced
  expect_graph_error(c, "'xf'");
  c = small_cnn_contents();
  c.graph.nodes[1].name = "conv";  // duplicate node name
  expect_graph_error(c, "'conv'");
  c = small_cnn_contents();
  c.graph.nodes[1].inputs.push_back("x");  // Relu takes one input
  expect_graph_error(c, "'act'");
  c = small_cnn_contents();
  c.graph.outputs[0].name = "never";
  expect_graph_error(c, "'never'");
  c = small_cnn_contents();
  c.graph.nodes[2].attrs.set("axis", std::string("one"));  // wrong attribute type
  expect_graph_error(c, "'axis'");
  c = small_cnn_contents();
  c.graph.nodes[0].attrs.set("strides", std::vector<double>{1.0, 1.0});
  expect_graph_error(c, "'strides'");
  c = small_cnn_contents();
  c.graph.nodes[0].attrs.set("pads", std::vector<int64_t>{1, 1, 1});
  expect_graph_error(c, "'pads'");
  c = small_cnn_contents();
  c.graph.initializers["fc.w"].value = Tensor(DType::kF32, {3, 5});  // shapes do not fit
  expect_graph_error(c, "'fc'");
}

}  // namespace
}  // namespace minnow::io
