// Compact tensor storage (docs/mnw.md "Compact tensors"): sparse, codebook and sparse+codebook
// tensors round-trip bit for bit, shrink the file, and every corruption of their index or
// payload is a clean minnow::Error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "compact_test_util.h"
#include "core/rng.h"
#include "io/mnw.h"
#include "minnow/error.h"

namespace minnow::io {
namespace {

using namespace testing;
using nlohmann::json;

void expect_round_trip(const Tensor& w) {
  MnwContents c = linear_model(w);
  std::string bytes = serialize_mnw(c);
  MnwContents back = parse_mnw(bytes.data(), bytes.size(), "model.mnw");
  expect_same_tensor(c.graph.initializers.at("w").value, back.graph.initializers.at("w").value,
                     "w");
  // Writing what was read gives the same bytes (deterministic encoder).
  EXPECT_EQ(serialize_mnw(back), bytes);
}

TEST(MnwCompact, SparseTensorsAreStoredAsValuesAndPositions) {
  for (double zeros : {0.6, 0.9, 0.99, 1.0}) {
    Tensor w = weights({37, 29}, zeros, 0, 11);
    expect_round_trip(w);
    json e = tensor_entry(serialize_mnw(linear_model(w)), "w");
    EXPECT_EQ(e["encoding"], "compact") << zeros;
    EXPECT_TRUE(e["compact"].contains("nnz")) << e.dump();
    EXPECT_LT(e["nbytes"].get<uint64_t>(), w.nbytes()) << zeros;
  }
}

TEST(MnwCompact, FewValuedTensorsUseACodebook) {
  for (int values : {1, 2, 3, 16, 100, 255}) {
    Tensor w = weights({40, 33}, 0.0, values, 5);
    expect_round_trip(w);
    json e = tensor_entry(serialize_mnw(linear_model(w)), "w");
    ASSERT_EQ(e["encoding"], "compact") << values;
    EXPECT_TRUE(e["compact"].contains("codebook")) << e.dump();
    EXPECT_LE(e["compact"]["codebook"].get<int>(), values);
  }
}

TEST(MnwCompact, PrunedAndClusteredTensorsCombineBoth) {
  Tensor w = weights({300, 784}, 0.92, 31, 3);
  expect_round_trip(w);
  std::string bytes = serialize_mnw(linear_model(w));
  json e = tensor_entry(bytes, "w");
  ASSERT_EQ(e["encoding"], "compact");
  EXPECT_TRUE(e["compact"].contains("nnz"));
  EXPECT_TRUE(e["compact"].contains("codebook"));
  // ~18.8k non-zeros: ~5 bits of position and ~5 bits of index each, well under 1/25 of the
  // 940 KB of raw floats.
  EXPECT_LT(e["nbytes"].get<uint64_t>(), w.nbytes() / 25) << e.dump();
  EXPECT_LT(bytes.size(), w.nbytes() / 25);
}

TEST(MnwCompact, SpecialValuesSurviveExactly) {
  Tensor w(DType::kF32, {8, 16});
  const float specials[] = {-0.0f, std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(), 1e-45f};
  for (int64_t i = 0; i < w.numel(); ++i) w.f32()[i] = i % 5 == 4 ? specials[i % 4] : 0.0f;
  expect_round_trip(w);
  Tensor d = weights({20, 20}, 0.8, 7, 9, DType::kF64);
  expect_round_trip(d);
}

TEST(MnwCompact, IncompressibleAndTinyTensorsStayRaw) {
  // Random bit patterns: no zeros, no repeats, nothing for zlib; not halves.
  Rng rng(2);
  Tensor w(DType::kF32, {30, 40});
  for (int64_t i = 0; i < w.numel(); ++i) {
    const uint32_t bits = static_cast<uint32_t>(rng.next_u64());
    std::memcpy(w.f32() + i, &bits, 4);
  }
  std::string bytes = serialize_mnw(linear_model(w));
  EXPECT_EQ(tensor_entry(bytes, "w")["encoding"], "raw");
  // The bias of 30 zeros is a sparse tensor with an empty payload.
  json b = tensor_entry(bytes, "b");
  EXPECT_EQ(b["encoding"], "compact");
  EXPECT_EQ(b["nbytes"], 0);
  // Under 16 elements nothing is considered, even all zeros.
  EXPECT_EQ(
      tensor_entry(serialize_mnw(linear_model(Tensor(DType::kF32, {15, 1}))), "b")["encoding"],
      "raw");
  EXPECT_EQ(
      tensor_entry(serialize_mnw(linear_model(Tensor(DType::kF32, {16, 1}))), "b")["encoding"],
      "compact");
}

TEST(MnwCompact, OptimizerStateIsCompactedToo) {
  MnwContents c = linear_model(weights({30, 40}, 0.1, 0, 2));
  c.optimizer_state["adam.m/w"] = Tensor(DType::kF32, {30, 40});  // all zero
  std::string bytes = serialize_mnw(c);
  MnwContents back = parse_mnw(bytes.data(), bytes.size(), "model.mnw");
  expect_same_tensor(c.optimizer_state.at("adam.m/w"), back.optimizer_state.at("adam.m/w"),
                     "adam.m/w");
  EXPECT_LT(bytes.size(), 30 * 40 * 4 * 2u);
}

// ---------------------------------------------------------------------------------------------
// Corruption

// Payloads written by hand from docs/mnw.md, independently of the encoder, for a 16x16 f32
// tensor: [codebook][values or packed indices][positions].
const Tensor& base16() {
  static const Tensor w = weights({16, 16}, 0.9, 0, 8);  // stored compact
  return w;
}

std::string packed(const std::vector<unsigned>& idx, int bits) {
  std::string out((idx.size() * bits + 7) / 8, '\0');
  size_t pos = 0;
  for (unsigned x : idx) {
    for (int b = 0; b < bits; ++b, ++pos) {
      if ((x >> b) & 1) out[pos / 8] |= static_cast<char>(1 << (pos % 8));
    }
  }
  return out;
}

// 256 indices into a codebook {1, 2, 3, 4, 5} (3 bits: 96 bytes, no padding).
std::string codebook_payload(unsigned first_index = 0) {
  std::string p;
  for (int k = 1; k <= 5; ++k) append_f32(p, static_cast<float>(k));
  std::vector<unsigned> idx(256);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i % 5;
  idx[0] = first_index;
  return p + packed(idx, 3);
}

// Values 7 and 9 at positions 3 and 250, with the positions as a bitmask or as LEB128 gaps.
std::string sparse_payload(bool bitmask) {
  std::string p;
  append_f32(p, 7.0f);
  append_f32(p, 9.0f);
  if (bitmask) {
    std::string mask(32, '\0');
    mask[0] = 1 << 3;
    mask[250 / 8] = static_cast<char>(1 << (250 % 8));
    return p + mask;
  }
  p += '\x03';      // position 3
  p += "\xf6\x01";  // gap 246: position 3 + 1 + 246 = 250
  return p;
}

const json kCodebookSpec = {{"codebook", 5}, {"index_bits", 3}};
const json kBitmaskSpec = {{"nnz", 2}, {"positions", "bitmask"}};
const json kGapsSpec = {{"nnz", 2}, {"positions", "gaps"}};

TEST(MnwCompact, HandWrittenPayloadsFollowTheDocumentedLayout) {
  ASSERT_EQ(tensor_entry(serialize_mnw(linear_model(base16())), "w")["encoding"], "compact");
  Tensor c = decoded_w(mutated(base16(), hand_made(kCodebookSpec, codebook_payload())));
  for (int64_t i = 0; i < 256; ++i) ASSERT_EQ(c.f32()[i], 1.0f + i % 5) << i;
  for (bool bitmask : {true, false}) {
    Tensor s = decoded_w(
        mutated(base16(), hand_made(bitmask ? kBitmaskSpec : kGapsSpec, sparse_payload(bitmask))));
    for (int64_t i = 0; i < 256; ++i) {
      ASSERT_EQ(s.f32()[i], i == 3 ? 7.0f : i == 250 ? 9.0f : 0.0f) << i;
    }
  }
  json both = {{"nnz", 2}, {"positions", "gaps"}, {"codebook", 1}, {"index_bits", 1}};
  std::string p;
  append_f32(p, -2.0f);
  p += '\0';  // two 1-bit indices, both 0
  p += "\x03\xf6\x01";
  Tensor b = decoded_w(mutated(base16(), hand_made(both, p)));
  EXPECT_EQ(b.f32()[3], -2.0f);
  EXPECT_EQ(b.f32()[250], -2.0f);
  EXPECT_EQ(b.f32()[4], 0.0f);
}

TEST(MnwCompact, BadIndexIntoTheCodebook) {
  EXPECT_MNW_ERROR(mutated(base16(), hand_made(kCodebookSpec, codebook_payload(7))),
                   "index 7 of value 0 is outside the codebook of 5 entries");
  EXPECT_MNW_ERROR(mutated(base16(), hand_made(kCodebookSpec, codebook_payload(5))),
                   "index 5 of value 0 is outside");
  std::string p = codebook_payload();
  EXPECT_EQ(error_of(mutated(base16(), hand_made(kCodebookSpec, p))), "(no error)");
  p.back() = static_cast<char>(0xff);  // the last indices become 7
  EXPECT_MNW_ERROR(mutated(base16(), hand_made(kCodebookSpec, p)), "outside the codebook");
}

TEST(MnwCompact, PaddingBitsAfterTheIndicesMustBeZero) {
  // Codebook of 1 value with 1-bit indices over 2 non-zeros: 6 padding bits.
  json spec = {{"nnz", 2}, {"positions", "gaps"}, {"codebook", 1}, {"index_bits", 1}};
  std::string p;
  append_f32(p, 1.0f);
  p += '\x80';
  p += "\x03\xf6\x01";
  EXPECT_MNW_ERROR(mutated(base16(), hand_made(spec, p)), "padding bits after the indices");
}

TEST(MnwCompact, InconsistentCountsAndSizes) {
  struct Case {
    json spec;
    std::string payload;
    std::string needle;
  };
  std::string bitmask = sparse_payload(true), gaps = sparse_payload(false);
  std::string extra_bit = bitmask;
  extra_bit[8 + 1] = 1;  // a third bit set
  std::string no_bits = bitmask;
  no_bits[8] = 0;  // only one bit left
  std::string tail_gap = gaps.substr(0, gaps.size() - 1);
  std::string beyond = gaps;
  beyond[10] = 0x7f;  // gap 0x76 + 0x7f * 128: past the end
  std::vector<Case> cases = {
      {{{"nnz", uint64_t{1} << 62}, {"positions", "gaps"}}, gaps, "exceeds the 256 elements"},
      {{{"nnz", 3}, {"positions", "bitmask"}}, bitmask, "the layout needs"},
      {kBitmaskSpec, bitmask.substr(0, bitmask.size() - 3), "the layout needs"},
      {kBitmaskSpec, extra_bit, "bitmask has more than nnz = 2 bits set"},
      {kBitmaskSpec, no_bits, "bitmask has 1 bits set, nnz is 2"},
      {{{"nnz", 2}, {"positions", "rle"}}, gaps, "unknown positions 'rle'"},
      {{{"nnz", 2}}, gaps, "'nnz' and 'positions' go together"},
      {json::object(), gaps, "needs 'nnz', 'codebook', 'zlib' or 'half'"},
      {{{"nnz", 2}, {"positions", "gaps"}, {"extra", 1}}, gaps, "extra"},
      {kGapsSpec, tail_gap, "data ends inside the positions"},
      {kGapsSpec, gaps + '\x01', "1 bytes left over"},
      {kGapsSpec, beyond, "lies beyond the 256 elements"},
      {kGapsSpec, gaps.substr(0, 8) + std::string(9, '\xff') + "\x7f" + '\0', "overflows"},
      {kGapsSpec, gaps.substr(0, 8) + std::string(11, '\x80'), "longer than 10 bytes"},
      {{{"codebook", 5}, {"index_bits", 9}}, codebook_payload(), "index_bits 9 not in 1..8"},
      {{{"codebook", 300}, {"index_bits", 8}},
       codebook_payload(),
       "codebook size 300 is not in 1..256"},
      {{{"codebook", 0}, {"index_bits", 8}}, codebook_payload(), "codebook size 0"},
      {{{"codebook", 5}}, codebook_payload(), "'codebook' and 'index_bits' go together"},
      {kCodebookSpec, codebook_payload() + "x", "the layout needs 116"},
      {{{"codebook", 5}, {"index_bits", 3}, {"zlib", 116}},
       codebook_payload(),
       "corrupt zlib data"},
  };
  for (const Case& c : cases) {
    EXPECT_MNW_ERROR(mutated(base16(), hand_made(c.spec, c.payload)), c.needle);
  }
  struct EntryCase {
    std::function<void(json&, std::string&)> mutate;
    std::string needle;
  };
  std::vector<EntryCase> entry_cases = {
      {[](json& e, std::string&) { e.erase("compact"); }, "missing field 'compact'"},
      {[](json& e, std::string&) { e["encoding"] = "raw"; }, "only a tensor with encoding"},
      {[](json& e, std::string&) { e["encoding"] = "sparse"; }, "unsupported encoding 'sparse'"},
      {[](json& e, std::string&) { e["dtype"] = "i64"; }, "i8 or u8 tensors, not i64"},
      {[](json& e, std::string&) {
         e["shape"] = {uint64_t{1} << 20, uint64_t{1} << 20};
       },
       "expands to more than"},
      {[](json& e, std::string&) {
         e["quant"] = {{"scale", {1.0}}, {"zero_point", {0}}, {"axis", -1}};
       },
       "cannot carry quantization"},
  };
  for (const EntryCase& c : entry_cases) EXPECT_MNW_ERROR(mutated(base16(), c.mutate), c.needle);
}

TEST(MnwCompact, CorruptZlibData) {
  Tensor w = weights({300, 784}, 0.92, 31, 3);
  json e = tensor_entry(serialize_mnw(linear_model(w)), "w");
  ASSERT_TRUE(e["compact"].contains("zlib")) << e.dump();
  EXPECT_MNW_ERROR(mutated(w, [](json&, std::string& p) { p[p.size() / 2] ^= 0x5a; }), "zlib");
  EXPECT_MNW_ERROR(mutated(w, [](json&, std::string& p) { p.resize(p.size() - 10); }),
                   "corrupt zlib data");
  EXPECT_MNW_ERROR(mutated(w, [](json&, std::string& p) { p += "junk"; }), "corrupt zlib data");
  EXPECT_MNW_ERROR(mutated(w,
                           [](json& e, std::string&) {
                             e["compact"]["zlib"] = e["compact"]["zlib"].get<uint64_t>() + 1;
                           }),
                   "");
  EXPECT_MNW_ERROR(
      mutated(w, [](json& e, std::string&) { e["compact"]["zlib"] = uint64_t{1} << 60; }),
      "the layout needs");
}

// Compact tensors may expand, but a tiny file cannot make the reader allocate gigabytes.
TEST(MnwCompact, ExpansionIsBounded) {
  Tensor w(DType::kF32, {16, 16});  // all zero: "gaps" with nnz 0 and an empty payload
  EXPECT_MNW_ERROR(mutated(w,
                           [](json& e, std::string&) {
                             e["shape"] = {uint64_t{1} << 30, 16};
                           }),
                   "expands to more than");
}

TEST(MnwCompact, EveryTruncationAndByteFlipIsHandled) {
  MnwContents c = linear_model(weights({24, 40}, 0.85, 9, 6));
  const std::string bytes = serialize_mnw(c);
  for (size_t len = 0; len < bytes.size(); ++len) {
    ASSERT_NE(error_of(bytes.substr(0, len)), "(no error)") << len;
  }
  // Flipped bytes inside the tensor section (checksums recomputed) decode or fail cleanly.
  RawFile f = split_mnw(bytes);
  const std::string section = f.section(kTensors);
  Rng rng(1);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string s = section;
    s[rng.below(s.size())] ^= static_cast<char>(1 + rng.below(255));
    f.section(kTensors) = s;
    std::string file = assemble_mnw(f);
    try {
      decode_mnw(file.data(), file.size(), "model.mnw");
    } catch (const Error&) {
    }
  }
}

}  // namespace
}  // namespace minnow::io
