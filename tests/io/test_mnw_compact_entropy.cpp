// Dense deflated, half-precision and byte-shuffled compact tensors (docs/mnw.md "Compact
// tensors"): int8 weights and fp16-exact f32 scales shrink and round-trip bit for bit, halves
// are used only when exact, and every inconsistent spec or payload is a clean minnow::Error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "compact_test_util.h"
#include "core/rng.h"
#include "io/half_float.h"
#include "io/mnw_compact.h"
#include "io/zlib_codec.h"

namespace minnow::io {
namespace {

using namespace testing;
using nlohmann::json;

// Stores `t` as optimizer state (any dtype) of a valid file, checks that it loads bit for bit
// and that writing what was read gives the same bytes; returns its index entry.
json stored_entry(const Tensor& t) {
  MnwContents c = linear_model(weights({4, 4}, 0.0, 0, 1));
  c.optimizer_state["t"] = t;
  const std::string bytes = serialize_mnw(c);
  MnwContents back = decode_mnw(bytes.data(), bytes.size(), "model.mnw");
  expect_same_tensor(t, back.optimizer_state.at("t"), "t");
  EXPECT_EQ(serialize_mnw(back), bytes);
  return tensor_entry(bytes, "t", kOptimizer);
}

// Codes of a per-channel int8 weight: N(0, sigma) rounded and clipped to [-127, 127].
Tensor int8_codes(Shape shape, double sigma, uint64_t seed, DType dtype = DType::kI8) {
  Rng rng(seed);
  Tensor t(dtype, shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double v = std::clamp(std::round(sigma * rng.normal()), -127.0, 127.0);
    if (dtype == DType::kI8) {
      t.data<int8_t>()[i] = static_cast<int8_t>(v);
    } else {
      t.data<uint8_t>()[i] = static_cast<uint8_t>(v + 128);
    }
  }
  return t;
}

float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// f32 values that are all exactly halves: positive, of exponents in [lo, hi], random mantissas.
Tensor half_exact(Shape shape, int lo, int hi, uint64_t seed) {
  Rng rng(seed);
  Tensor t(DType::kF32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int e = lo + static_cast<int>(rng.below(hi - lo + 1));
    t.f32()[i] = std::ldexp(1.0f + static_cast<float>(rng.below(1024)) / 1024.0f, e);
  }
  return t;
}

bool has(const json& e, const char* key) { return e["compact"].contains(key); }

TEST(HalfFloat, EveryHalfWidensExactlyAndNarrowsBack) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint32_t f = half_to_f32_bits(static_cast<uint16_t>(h));
    const int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    const float sign = (h & 0x8000) ? -1.0f : 1.0f;
    if (exp == 31) {
      ASSERT_EQ(f & 0x7fffffffu, 0x7f800000u | (static_cast<uint32_t>(mant) << 13)) << h;
    } else {
      // The value: (mant + 1024 for normals) x 2^(max(exp, 1) - 25).
      const float expect =
          sign * std::ldexp(static_cast<float>(mant + (exp ? 1024 : 0)), std::max(exp, 1) - 25);
      ASSERT_EQ(f, bits_of(expect)) << h;
    }
    ASSERT_EQ(f >> 31, h >> 15) << h;
    std::optional<uint16_t> back = f32_bits_to_half_exact(f);
    ASSERT_TRUE(back.has_value()) << h;
    ASSERT_EQ(*back, h);
  }
}

TEST(HalfFloat, OnlyExactValuesNarrow) {
  for (float f : {1.0f + 1.0f / 2048.0f, 65520.0f, 1e6f, std::ldexp(1.0f, -25),
                  std::ldexp(3.0f, -25), 1e-45f, 1e-40f, 0.1f}) {
    EXPECT_FALSE(f32_bits_to_half_exact(bits_of(f)).has_value()) << f;
    EXPECT_FALSE(f32_bits_to_half_exact(bits_of(-f)).has_value()) << -f;
  }
  EXPECT_FALSE(f32_bits_to_half_exact(0x7f800001u).has_value());  // NaN payload below half's
  EXPECT_EQ(f32_bits_to_half_exact(bits_of(65504.0f)), uint16_t{0x7bff});
  EXPECT_EQ(f32_bits_to_half_exact(bits_of(std::ldexp(1.0f, -24))), uint16_t{0x0001});
  EXPECT_EQ(f32_bits_to_half_exact(bits_of(-0.0f)), uint16_t{0x8000});
  EXPECT_EQ(f32_bits_to_half_exact(bits_of(-std::numeric_limits<float>::infinity())),
            uint16_t{0xfc00});
}

TEST(MnwCompactEntropy, Int8WeightsAreDeflated) {
  // 6144 codes (a 192x32 1x1 conv): ~7.4 bits of entropy each.
  Tensor w = int8_codes({192, 32, 1, 1}, 40.0, 7);
  json e = stored_entry(w);
  ASSERT_EQ(e["encoding"], "compact") << e.dump();
  EXPECT_EQ(e["compact"], json({{"zlib", 6144}}));
  EXPECT_LT(e["nbytes"].get<uint64_t>(), 6144u - 64);
  // Narrower codes (smaller weights) shrink more; u8 works the same.
  json narrow = stored_entry(int8_codes({64, 96}, 10.0, 8, DType::kU8));
  ASSERT_EQ(narrow["encoding"], "compact");
  EXPECT_LT(narrow["nbytes"].get<uint64_t>(), 6144u * 3 / 4);
  // With quantization parameters a tensor stays raw (compact entries cannot carry them).
  w.quant = QuantParams{{0.02f}, {0}, -1};
  EXPECT_FALSE(encode_compact(w).has_value());
}

TEST(MnwCompactEntropy, FpSixteenExactScalesAreStoredAsHalves) {
  Tensor s = half_exact({96}, -12, -6, 3);
  json e = stored_entry(s);
  ASSERT_EQ(e["encoding"], "compact") << e.dump();
  EXPECT_TRUE(has(e, "half")) << e.dump();
  EXPECT_LE(e["nbytes"].get<uint64_t>(), 192u);
  // 16 values: 64 raw bytes, 32 as halves.
  json small = stored_entry(half_exact({16}, -3, 3, 4));
  EXPECT_EQ(small["compact"], json({{"half", true}}));
  EXPECT_EQ(small["nbytes"], 32);
}

TEST(MnwCompactEntropy, ManyHalvesAreShuffledAndDeflated) {
  // Exponents in a narrow range: the high bytes of the halves repeat, the low bytes do not.
  json e = stored_entry(half_exact({4096}, -8, -5, 5));
  ASSERT_EQ(e["encoding"], "compact");
  EXPECT_TRUE(has(e, "half") && has(e, "zlib") && has(e, "shuffle")) << e.dump();
  EXPECT_LT(e["nbytes"].get<uint64_t>(), 4096u * 2 * 7 / 8);
}

TEST(MnwCompactEntropy, SparseHalves) {
  Tensor w = half_exact({40, 40}, -14, 15, 6);  // > 256 distinct values: no codebook
  Rng rng(9);
  for (int64_t i = 0; i < w.numel(); ++i) {
    if (rng.uniform() < 0.7f) w.f32()[i] = 0.0f;
  }
  json e = stored_entry(w);
  ASSERT_EQ(e["encoding"], "compact");
  EXPECT_TRUE(has(e, "nnz") && has(e, "half")) << e.dump();
  EXPECT_FALSE(has(e, "codebook"));
}

TEST(MnwCompactEntropy, ValuesThatAreNotHalvesStayFloats) {
  // One value off the half grid among exact ones disqualifies the whole tensor.
  Tensor s = half_exact({96}, -12, -6, 3);
  s.f32()[50] = from_bits(bits_of(s.f32()[50]) + 1);
  json e = stored_entry(s);
  if (e["encoding"] == "compact") {
    EXPECT_FALSE(has(e, "half")) << e.dump();
  }
  // Float weights: possibly deflated, shuffled, never halves.
  json w = stored_entry(weights({64, 64}, 0.0, 0, 4));
  if (w["encoding"] == "compact") {
    EXPECT_FALSE(has(w, "half")) << w.dump();
  }
  // f64 and i32 never use halves, even for values that are exactly halves.
  Tensor d(DType::kF64, {64});
  for (int64_t i = 0; i < d.numel(); ++i) d.data<double>()[i] = static_cast<double>(i % 7) - 3;
  json de = stored_entry(d);
  if (de["encoding"] == "compact") {
    EXPECT_FALSE(has(de, "half")) << de.dump();
  }
}

TEST(MnwCompactEntropy, SpecialHalvesSurviveExactly) {
  const float inf = std::numeric_limits<float>::infinity();
  const float specials[] = {-0.0f,
                            inf,
                            -inf,
                            std::ldexp(1.0f, -24),
                            std::ldexp(-3.0f, -24),
                            std::ldexp(1023.0f, -24),
                            std::ldexp(1.0f, -14),
                            65504.0f,
                            -65504.0f,
                            1.5f};
  Tensor t(DType::kF32, {40});
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = specials[i % 10];
  json e = stored_entry(t);  // bit-exact round trip checked there
  ASSERT_EQ(e["encoding"], "compact");
  // 10 distinct values: a codebook beats halves here; without one, halves must be chosen.
  Rng rng(3);
  Tensor many = half_exact({300}, -14, 15, 8);
  for (int64_t i = 0; i < many.numel(); i += 3) many.f32()[i] = specials[rng.below(10)];
  json m = stored_entry(many);
  ASSERT_EQ(m["encoding"], "compact");
  EXPECT_TRUE(has(m, "half")) << m.dump();
}

TEST(MnwCompactEntropy, OnlySavingsAreCompacted) {
  // Random bytes do not deflate: raw.
  Rng rng(4);
  Tensor noise(DType::kI8, {64, 64});
  for (int64_t i = 0; i < noise.numel(); ++i)
    noise.data<int8_t>()[i] = static_cast<int8_t>(rng.next_u64());
  EXPECT_EQ(stored_entry(noise)["encoding"], "raw");
  EXPECT_FALSE(encode_compact(noise).has_value());
  // A compact form is chosen only when it takes less room in the data area than the raw data.
  auto room = [](uint64_t n) { return n < 64 ? (n + 7) / 8 * 8 : (n + 63) / 64 * 64; };
  for (uint64_t seed = 0; seed < 12; ++seed) {
    const Tensor t = int8_codes({static_cast<int64_t>(16 + 97 * seed)}, 4.0 + 5.0 * seed, seed);
    if (std::optional<CompactTensor> c = encode_compact(t)) {
      EXPECT_LT(room(c->payload.size()), room(t.nbytes())) << seed << " " << c->spec.dump();
    }
  }
  // i64 never.
  Tensor ids(DType::kI64, {64});
  EXPECT_FALSE(encode_compact(ids).has_value());
}

// Dense float weights would shrink ~15% shuffled and deflated, but a float model's weights stay
// raw (memory-mappable); integer codes of the same distribution are deflated.
TEST(MnwCompactEntropy, DenseFloatsStayRaw) {
  Rng rng(5);
  Tensor w(DType::kF32, {96, 64}), d(DType::kF64, {64, 16});
  for (int64_t i = 0; i < w.numel(); ++i) w.f32()[i] = 0.05f * rng.normal();
  for (int64_t i = 0; i < d.numel(); ++i) d.data<double>()[i] = 0.05 * rng.normal();
  EXPECT_FALSE(encode_compact(w).has_value());
  EXPECT_FALSE(encode_compact(d).has_value());
  EXPECT_EQ(stored_entry(w)["encoding"], "raw");
  Tensor codes(DType::kI8, {96, 64});
  for (int64_t i = 0; i < codes.numel(); ++i) {
    codes.data<int8_t>()[i] = static_cast<int8_t>(
        std::clamp(std::nearbyint(w.f32()[i] / 0.2f * 127.0f), -127.0f, 127.0f));
  }
  EXPECT_TRUE(encode_compact(codes).has_value());
}

// ---------------------------------------------------------------------------------------------
// Payloads written by hand from docs/mnw.md for the 16x16 f32 "w" of linear_model.

const Tensor& base16() {
  static const Tensor w = weights({16, 16}, 0.9, 0, 8);  // stored compact
  return w;
}

void append_u16(std::string& s, uint16_t v) {
  s.push_back(static_cast<char>(v & 0xff));
  s.push_back(static_cast<char>(v >> 8));
}

// 256 halves: element i is (i - 128) / 4, except element 0 = -0.0, 1 = inf and 2 = 2^-24.
std::vector<uint16_t> halves256() {
  std::vector<uint16_t> h;
  for (int i = 0; i < 256; ++i) {
    const float v = static_cast<float>(i - 128) / 4.0f;
    h.push_back(*f32_bits_to_half_exact(bits_of(v)));
  }
  h[0] = 0x8000;
  h[1] = 0x7c00;
  h[2] = 0x0001;
  return h;
}

float expected256(int i) {
  if (i == 0) return -0.0f;
  if (i == 1) return std::numeric_limits<float>::infinity();
  if (i == 2) return std::ldexp(1.0f, -24);
  return static_cast<float>(i - 128) / 4.0f;
}

std::string plain_halves() {
  std::string p;
  for (uint16_t h : halves256()) append_u16(p, h);
  return p;
}

// All low bytes, then all high bytes.
std::string shuffled_halves() {
  std::string p;
  for (uint16_t h : halves256()) p.push_back(static_cast<char>(h & 0xff));
  for (uint16_t h : halves256()) p.push_back(static_cast<char>(h >> 8));
  return p;
}

void expect_halves256(const Tensor& t) {
  for (int i = 0; i < 256; ++i) ASSERT_EQ(bits_of(t.f32()[i]), bits_of(expected256(i))) << i;
}

TEST(MnwCompactEntropy, HandWrittenPayloadsFollowTheDocumentedLayout) {
  expect_halves256(decoded_w(mutated(base16(), hand_made({{"half", true}}, plain_halves()))));
  expect_halves256(
      decoded_w(mutated(base16(), hand_made({{"half", true}, {"zlib", 512}, {"shuffle", true}},
                                            zlib_deflate(shuffled_halves(), 6)))));
  // Dense f32 deflated, shuffled: bytes 0 of all elements, then bytes 1, 2, 3.
  std::string plain, shuffled(1024, '\0');
  for (int i = 0; i < 256; ++i) append_f32(plain, expected256(i));
  for (int i = 0; i < 256; ++i) {
    for (int j = 0; j < 4; ++j) shuffled[j * 256 + i] = plain[i * 4 + j];
  }
  expect_halves256(
      decoded_w(mutated(base16(), hand_made({{"zlib", 1024}}, zlib_deflate(plain, 6)))));
  expect_halves256(decoded_w(mutated(
      base16(), hand_made({{"zlib", 1024}, {"shuffle", true}}, zlib_deflate(shuffled, 6)))));
  // Sparse halves: values 7 and -0.5 at positions 3 and 250; positions are not shuffled.
  std::string values;
  append_u16(values, 0x4700);  // 7
  append_u16(values, 0xb800);  // -0.5
  const std::string gaps = "\x03\xf6\x01";
  const json sparse = {{"nnz", 2}, {"positions", "gaps"}, {"half", true}};
  std::string shuffled_values = {values[0], values[2], values[1], values[3]};
  for (const auto& [spec, payload] :
       {std::pair{sparse, values + gaps},
        std::pair{
            json{{"nnz", 2}, {"positions", "gaps"}, {"half", true}, {"zlib", 7}, {"shuffle", true}},
            zlib_deflate(shuffled_values + gaps, 6)}}) {
    Tensor s = decoded_w(mutated(base16(), hand_made(spec, payload)));
    for (int64_t i = 0; i < 256; ++i) {
      ASSERT_EQ(s.f32()[i], i == 3 ? 7.0f : i == 250 ? -0.5f : 0.0f) << i << spec.dump();
    }
  }
}

TEST(MnwCompactEntropy, InconsistentSpecsAreRejected) {
  struct Case {
    json spec;
    std::string payload;
    std::string needle;
  };
  const std::string halves = plain_halves();
  const std::string deflated = zlib_deflate(halves, 6);
  std::string cb;
  for (int k = 0; k < 2; ++k) append_f32(cb, static_cast<float>(k));
  cb += std::string(32, '\0');
  std::vector<Case> cases = {
      {{{"half", true}, {"codebook", 2}, {"index_bits", 1}}, cb, "'half' does not go with"},
      {{{"half", true}, {"shuffle", true}}, halves, "'shuffle' needs 'zlib'"},
      {{{"shuffle", true}}, halves, "'shuffle' needs 'zlib'"},
      {{{"codebook", 2}, {"index_bits", 1}, {"zlib", 40}, {"shuffle", true}},
       zlib_deflate(cb, 6),
       "'shuffle' does not go with 'codebook'"},
      {{{"half", false}}, halves, "written only as true"},
      {{{"half", 1}}, halves, "half"},
      {{{"half", true}, {"zlib", 512}, {"shuffle", false}}, deflated, "written only as true"},
      {{{"half", true}}, halves.substr(0, 511), "the layout needs 512"},
      {{{"half", true}}, halves + "xy", "the layout needs 512"},
      {{{"nnz", 2}, {"positions", "gaps"}, {"half", true}},
       std::string(8, '\0') + "\x03\xf6\x01",
       "5 bytes left over"},
      {{{"half", true}, {"zlib", 510}}, deflated, "the layout needs 512"},
      {{{"half", true}, {"zlib", 512}},
       deflated.substr(0, deflated.size() - 4),
       "corrupt zlib data"},
      {{{"zlib", 1024}}, deflated, "corrupt zlib data"},
      {{{"zlib", 1023}}, deflated, "the layout needs 1024"},
      {{{"half", true}, {"nibble", true}}, halves, "nibble"},
  };
  for (const Case& c : cases) {
    EXPECT_MNW_ERROR(mutated(base16(), hand_made(c.spec, c.payload)), c.needle);
  }
  // Halves and shuffling need a dtype they apply to.
  auto as_i8 = [](json spec, std::string payload) {
    return [spec, payload](json& e, std::string& p) {
      e["dtype"] = "i8";
      e["compact"] = spec;
      p = payload;
    };
  };
  EXPECT_MNW_ERROR(mutated(base16(), as_i8({{"half", true}}, halves)),
                   "halves store f32 values, not i8");
  EXPECT_MNW_ERROR(mutated(base16(), as_i8({{"zlib", 256}, {"shuffle", true}},
                                           zlib_deflate(std::string(256, '\1'), 6))),
                   "more than one byte, not i8");
  EXPECT_EQ(
      error_of(mutated(base16(), as_i8({{"zlib", 256}}, zlib_deflate(std::string(256, '\1'), 6)))),
      "(no error)");
  auto as_f64 = [](json& e, std::string& p) {
    e["dtype"] = "f64";
    e["compact"] = {{"half", true}};
    p = plain_halves();
  };
  EXPECT_MNW_ERROR(mutated(base16(), as_f64), "halves store f32 values, not f64");
}

}  // namespace
}  // namespace minnow::io
