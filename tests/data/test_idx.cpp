#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "data/idx.h"
#include "data_test_util.h"
#include "minnow/error.h"

namespace minnow::data {
namespace {

using testing::Bytes;
using testing::gzip;
using testing::idx_bytes;
using testing::idx_u8;
using testing::TempDir;
using testing::write_file;

// Big-endian bytes of each value, as IDX stores them.
template <class T>
Bytes big_endian(const std::vector<T>& values) {
  Bytes out;
  for (T v : values) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    if constexpr (std::endian::native == std::endian::little) std::reverse(b, b + sizeof(T));
    out.insert(out.end(), b, b + sizeof(T));
  }
  return out;
}

// read_idx(path) must throw minnow::Error whose message names the file and contains `what`.
void expect_idx_error(const std::string& path, const std::string& what) {
  try {
    read_idx(path);
    ADD_FAILURE() << "no error for " << path << " (expected '" << what << "')";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  }
}

Bytes iota_bytes(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 7 + 3);
  return b;
}

TEST(Idx, ReadsPlainU8WithHeaderShape) {
  TempDir dir;
  Bytes values = iota_bytes(24);
  write_file(dir.file("a.idx"), idx_u8({2, 3, 4}, values));
  Tensor t = read_idx(dir.file("a.idx"));
  EXPECT_EQ(t.dtype(), DType::kU8);
  EXPECT_EQ(t.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(Bytes(t.data<uint8_t>(), t.data<uint8_t>() + 24), values);
}

TEST(Idx, DetectsGzipByMagicNotByName) {
  TempDir dir;
  Bytes raw = idx_u8({5, 7}, iota_bytes(35));
  write_file(dir.file("compressed.idx"), gzip(raw));  // gzip without .gz
  write_file(dir.file("plain.gz"), raw);              // plain with .gz
  for (const char* name : {"compressed.idx", "plain.gz"}) {
    Tensor t = read_idx(dir.file(name));
    ASSERT_EQ(t.shape(), (Shape{5, 7})) << name;
    EXPECT_EQ(Bytes(t.data<uint8_t>(), t.data<uint8_t>() + 35), iota_bytes(35)) << name;
  }
}

TEST(Idx, ReadsEveryTypeBigEndianPlainAndGzip) {
  TempDir dir;
  const std::vector<int8_t> i8 = {-128, -1, 0, 127};
  const std::vector<int16_t> i16 = {-32768, -2, 300, 32767};
  const std::vector<int32_t> i32 = {std::numeric_limits<int32_t>::min(), -5, 1 << 30, 7};
  const std::vector<float> f32 = {1.5f, -0.25f, 3e38f, 1e-40f};
  const std::vector<double> f64 = {M_PI, -1e300, 0.0, 2.5};
  for (bool gz : {false, true}) {
    auto put = [&](const std::string& name, uint8_t code, const Bytes& payload) {
      Bytes b = idx_bytes(code, {2, 2}, payload);
      write_file(dir.file(name), gz ? gzip(b) : b);
      return dir.file(name);
    };
    Bytes i8_bytes(i8.size());
    std::memcpy(i8_bytes.data(), i8.data(), i8.size());
    Tensor t = read_idx(put("i8", 0x09, i8_bytes));
    ASSERT_EQ(t.dtype(), DType::kI8);
    EXPECT_EQ(std::vector<int8_t>(t.data<int8_t>(), t.data<int8_t>() + 4), i8);

    t = read_idx(put("i16", 0x0B, big_endian(i16)));
    ASSERT_EQ(t.dtype(), DType::kI32);  // widened
    EXPECT_EQ(t.shape(), (Shape{2, 2}));
    for (int i = 0; i < 4; ++i) EXPECT_EQ(t.data<int32_t>()[i], i16[i]);

    t = read_idx(put("i32", 0x0C, big_endian(i32)));
    ASSERT_EQ(t.dtype(), DType::kI32);
    EXPECT_EQ(std::vector<int32_t>(t.data<int32_t>(), t.data<int32_t>() + 4), i32);

    t = read_idx(put("f32", 0x0D, big_endian(f32)));
    ASSERT_EQ(t.dtype(), DType::kF32);
    EXPECT_EQ(std::vector<float>(t.f32(), t.f32() + 4), f32);

    t = read_idx(put("f64", 0x0E, big_endian(f64)));
    ASSERT_EQ(t.dtype(), DType::kF64);
    EXPECT_EQ(std::vector<double>(t.data<double>(), t.data<double>() + 4), f64);
  }
}

TEST(Idx, ReadsConcatenatedGzipMembers) {
  TempDir dir;
  Bytes raw = idx_u8({100}, iota_bytes(100));
  Bytes first(raw.begin(), raw.begin() + 30), second(raw.begin() + 30, raw.end());
  Bytes file = gzip(first);
  Bytes tail = gzip(second);
  file.insert(file.end(), tail.begin(), tail.end());
  write_file(dir.file("multi.gz"), file);
  Tensor t = read_idx(dir.file("multi.gz"));
  EXPECT_EQ(Bytes(t.data<uint8_t>(), t.data<uint8_t>() + 100), iota_bytes(100));
}

TEST(Idx, ReadsEmptyDimension) {
  TempDir dir;
  write_file(dir.file("empty"), idx_u8({0, 28, 28}, {}));
  Tensor t = read_idx(dir.file("empty"));
  EXPECT_EQ(t.shape(), (Shape{0, 28, 28}));
  EXPECT_EQ(t.numel(), 0);
}

TEST(Idx, ReadsLargeGzipAcrossManyChunks) {
  // Several MB so that both the compressed input and the staging buffer refill many times.
  TempDir dir;
  const uint32_t n = 3000 * 1000;
  Bytes values(n);
  uint32_t state = 12345;
  for (auto& v : values) v = static_cast<uint8_t>((state = state * 1103515245u + 12345u) >> 24);
  write_file(dir.file("big.gz"), gzip(idx_u8({3000, 1000}, values)));
  Tensor t = read_idx(dir.file("big.gz"));
  ASSERT_EQ(t.shape(), (Shape{3000, 1000}));
  EXPECT_EQ(std::memcmp(t.raw(), values.data(), n), 0);
}

TEST(IdxErrors, MissingFileAndDirectory) {
  TempDir dir;
  expect_idx_error(dir.file("nope-idx1-ubyte"), "cannot open");
  expect_idx_error(dir.str(), "directory");
}

TEST(IdxErrors, BadMagic) {
  TempDir dir;
  Bytes b = idx_u8({2}, {1, 2});
  b[0] = 0x12;
  write_file(dir.file("magic"), b);
  expect_idx_error(dir.file("magic"), "bad magic");
  write_file(dir.file("magic.gz"), gzip(b));
  expect_idx_error(dir.file("magic.gz"), "bad magic");
}

TEST(IdxErrors, UnsupportedTypeCode) {
  TempDir dir;
  for (uint8_t code : {0x00, 0x0A, 0x0F, 0xFF}) {
    write_file(dir.file("type"), idx_bytes(code, {2}, {1, 2}));
    expect_idx_error(dir.file("type"), "unsupported type code");
  }
}

TEST(IdxErrors, ZeroDimensions) {
  TempDir dir;
  write_file(dir.file("rank0"), idx_bytes(0x08, {}, {7}));
  expect_idx_error(dir.file("rank0"), "0 dimensions");
}

TEST(IdxErrors, TruncatedHeader) {
  TempDir dir;
  write_file(dir.file("short"), {0, 0, 8});
  expect_idx_error(dir.file("short"), "truncated header");
  Bytes dims_cut = idx_u8({2, 3}, {});
  dims_cut.resize(dims_cut.size() - 2);
  write_file(dir.file("dims"), dims_cut);
  expect_idx_error(dir.file("dims"), "truncated header");
  write_file(dir.file("dims.gz"), gzip(dims_cut));
  expect_idx_error(dir.file("dims.gz"), "truncated header");
  write_file(dir.file("empty"), {});
  expect_idx_error(dir.file("empty"), "truncated header");
}

TEST(IdxErrors, TruncatedData) {
  TempDir dir;
  Bytes b = idx_u8({4, 5}, iota_bytes(19));  // one byte short
  write_file(dir.file("trunc"), b);
  expect_idx_error(dir.file("trunc"), "truncated data");
  write_file(dir.file("trunc.gz"), gzip(b));
  expect_idx_error(dir.file("trunc.gz"), "truncated data");
  // Multi-byte types: 3 f32 promised, 2.5 present.
  Bytes f = idx_bytes(0x0D, {3}, Bytes(10, 0));
  write_file(dir.file("f32"), f);
  expect_idx_error(dir.file("f32"), "truncated data");
  write_file(dir.file("i16.gz"), gzip(idx_bytes(0x0B, {3}, Bytes(5, 0))));
  expect_idx_error(dir.file("i16.gz"), "truncated data");
}

TEST(IdxErrors, TrailingGarbage) {
  TempDir dir;
  Bytes b = idx_u8({4, 5}, iota_bytes(21));  // one byte too many
  write_file(dir.file("trail"), b);
  expect_idx_error(dir.file("trail"), "trailing garbage");
  write_file(dir.file("trail.gz"), gzip(b));
  expect_idx_error(dir.file("trail.gz"), "trailing garbage");
  // Garbage after a complete gzip stream (outside the compressed data).
  Bytes gz = gzip(idx_u8({4, 5}, iota_bytes(20)));
  for (uint8_t c : {'j', 'u', 'n', 'k'}) gz.push_back(c);
  write_file(dir.file("after.gz"), gz);
  expect_idx_error(dir.file("after.gz"), "trailing garbage after the gzip stream");
}

TEST(IdxErrors, CorruptOrCutGzip) {
  TempDir dir;
  Bytes gz = gzip(idx_u8({64, 64}, iota_bytes(64 * 64)));
  Bytes cut(gz.begin(), gz.begin() + gz.size() / 2);
  write_file(dir.file("cut.gz"), cut);
  expect_idx_error(dir.file("cut.gz"), "truncated");
  Bytes no_trailer(gz.begin(), gz.end() - 4);  // CRC present, length missing
  write_file(dir.file("trailer.gz"), no_trailer);
  expect_idx_error(dir.file("trailer.gz"), "truncated");
  Bytes bad_crc = gz;
  bad_crc[bad_crc.size() - 6] ^= 0xFF;  // inside the CRC32 of the trailer
  write_file(dir.file("crc.gz"), bad_crc);
  expect_idx_error(dir.file("crc.gz"), "corrupt gzip data");
  Bytes bad_method = gz;
  bad_method[2] = 7;  // compression method must be 8 (deflate)
  write_file(dir.file("method.gz"), bad_method);
  expect_idx_error(dir.file("method.gz"), "corrupt gzip data");
}

TEST(IdxErrors, AbsurdDimensions) {
  TempDir dir;
  write_file(dir.file("big"), idx_u8({65536, 65536}, {}));  // 2^32 elements
  expect_idx_error(dir.file("big"), "absurd dimensions");
  write_file(dir.file("overflow"), idx_u8({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {}));
  expect_idx_error(dir.file("overflow"), "absurd dimensions");
  write_file(dir.file("just-over"), idx_u8({(1u << 31) + 1}, {}));
  expect_idx_error(dir.file("just-over"), "absurd dimensions");
  // Allowed by count (2^30 u8 = 1 GiB) but the data is absent: an error, without reading or
  // allocating a gigabyte first (gzip sizes are only known by decompressing).
  write_file(dir.file("lie"), idx_u8({1u << 30}, {1, 2, 3}));
  expect_idx_error(dir.file("lie"), "truncated data");
  write_file(dir.file("lie.gz"), gzip(idx_u8({1u << 30}, {1, 2, 3})));
  expect_idx_error(dir.file("lie.gz"), "truncated data");
}

TEST(Idx, WriteReadRoundTrip) {
  TempDir dir;
  Tensor f(DType::kF32, {2, 3});
  for (int i = 0; i < 6; ++i) f.f32()[i] = 0.25f * static_cast<float>(i) - 1.0f;
  Tensor n(DType::kI32, {4});
  for (int i = 0; i < 4; ++i) n.data<int32_t>()[i] = -70000 * i + 3;
  for (const Tensor& t : {f, n}) {
    write_idx(dir.file("t.idx"), t);
    Tensor back = read_idx(dir.file("t.idx"));
    ASSERT_EQ(back.shape(), t.shape());
    ASSERT_EQ(back.dtype(), t.dtype());
    EXPECT_EQ(std::memcmp(back.raw(), t.raw(), t.nbytes()), 0);
  }
  EXPECT_EQ(encode_idx(n).substr(0, 8), std::string("\0\0\x0c\x01\0\0\0\x04", 8));
  EXPECT_THROW(encode_idx(Tensor(DType::kI64, {2})), Error);
}

}  // namespace
}  // namespace minnow::data
