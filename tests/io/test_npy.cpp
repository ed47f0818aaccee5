#include <gtest/gtest.h>

#include <cstring>

#include "core/rng.h"
#include "io/atomic_file.h"
#include "io/npy.h"
#include "io_test_util.h"
#include "minnow/error.h"

namespace minnow::io {
namespace {

using namespace testing;

std::string golden(const std::string& name) {
  return std::string(MINNOW_SOURCE_DIR) + "/tests/io/golden/" + name;
}

std::string error_of(const std::string& bytes) {
  try {
    parse_npy(bytes.data(), bytes.size(), "x.npy");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_NPY_ERROR(bytes, needle)                                     \
  do {                                                                      \
    std::string msg_ = error_of(bytes);                                     \
    EXPECT_NE(msg_.find(needle), std::string::npos) << "message: " << msg_; \
    EXPECT_EQ(msg_.rfind("x.npy: ", 0), 0u) << msg_;                        \
  } while (0)

// A v1 file with the given header dict and data, padded the way numpy pads.
std::string npy_v1(const std::string& dict, const std::string& data) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

std::string floats(std::initializer_list<float> v) {
  return std::string(reinterpret_cast<const char*>(std::data(v)), v.size() * sizeof(float));
}

Tensor random_tensor(DType dtype, Shape shape, Rng& rng) {
  Tensor t(dtype, std::move(shape));
  auto* p = static_cast<unsigned char*>(t.raw());
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<unsigned char>(rng.next_u64());
  return t;
}

TEST(Npy, RoundTripEveryDtypeAndRank) {
  Rng rng(3);
  TempDir dir;
  std::vector<Shape> shapes = {{}, {1}, {7}, {2, 3}, {2, 1, 3, 5}, {0, 4}, {3, 0, 2}};
  for (DType dtype : {DType::kF32, DType::kF64, DType::kI64, DType::kI32, DType::kI8, DType::kU8}) {
    for (const Shape& shape : shapes) {
      Tensor t = random_tensor(dtype, shape, rng);
      std::string label = std::string(dtype_name(dtype)) + shape_str(shape);
      std::string bytes = serialize_npy(t);
      ASSERT_EQ((bytes.size() - t.nbytes()) % 64, 0u) << label << ": data not 64-byte aligned";
      expect_same_tensor(t, parse_npy(bytes.data(), bytes.size(), label), label);
      if (shape.size() == 4) {  // through a file once per dtype (each write is fsync'ed)
        std::string path = dir.file("t.npy");
        write_npy(path, t);
        expect_same_tensor(t, read_npy(path), label);
      }
    }
  }
  EXPECT_EQ(dir.list(), std::vector<std::string>{"t.npy"});
}

TEST(Npy, HeaderIsWhatNumpyWrites) {
  Tensor t(DType::kF32, {3});
  std::string bytes = serialize_npy(t);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
  EXPECT_EQ(bytes.substr(10, dict.size()), dict);
  EXPECT_EQ(bytes[bytes.size() - 12 - 1], '\n');
  Tensor s(DType::kU8, {});
  EXPECT_NE(serialize_npy(s).find("{'descr': '|u1', 'fortran_order': False, 'shape': (), }"),
            std::string::npos);
  Tensor m(DType::kI64, {2, 3, 4});
  EXPECT_NE(serialize_npy(m).find("'descr': '<i8'"), std::string::npos);
  EXPECT_NE(serialize_npy(m).find("'shape': (2, 3, 4)"), std::string::npos);
}

// Files written by numpy 1.24 (tests/io/golden/make_npy_golden.py): element k is k * 0.5 - 1
// for floats and k - 2 for signed ints, k + 2 for u8.
TEST(Npy, ReadsNumpyGoldenFiles) {
  struct Golden {
    const char* file;
    DType dtype;
    Shape shape;
  };
  std::vector<Golden> files = {
      {"f4_2x3.npy", DType::kF32, {2, 3}}, {"f8_scalar.npy", DType::kF64, {}},
      {"i8_4.npy", DType::kI64, {4}},      {"i4_1x2x1x3.npy", DType::kI32, {1, 2, 1, 3}},
      {"i1_5.npy", DType::kI8, {5}},       {"u1_2x2.npy", DType::kU8, {2, 2}},
      {"f4_0x3.npy", DType::kF32, {0, 3}}, {"f4_3_v2.npy", DType::kF32, {3}},
      {"f4_3_v3.npy", DType::kF32, {3}},
  };
  for (const Golden& g : files) {
    Tensor t = read_npy(golden(g.file));
    ASSERT_EQ(t.dtype(), g.dtype) << g.file;
    ASSERT_EQ(t.shape(), g.shape) << g.file;
    for (int64_t k = 0; k < t.numel(); ++k) {
      double v = 0, want = 0;
      switch (t.dtype()) {
        case DType::kF32:
          v = t.data<float>()[k], want = k * 0.5 - 1;
          break;
        case DType::kF64:
          v = t.data<double>()[k], want = k * 0.5 - 1;
          break;
        case DType::kI64:
          v = static_cast<double>(t.data<int64_t>()[k]), want = k - 2;
          break;
        case DType::kI32:
          v = t.data<int32_t>()[k], want = k - 2;
          break;
        case DType::kI8:
          v = t.data<int8_t>()[k], want = k - 2;
          break;
        case DType::kU8:
          v = t.data<uint8_t>()[k], want = k + 2;
          break;
      }
      EXPECT_EQ(v, want) << g.file << " element " << k;
    }
  }
}

TEST(Npy, RejectsNumpyFilesItCannotRepresent) {
  auto expect_file_error = [](const char* file, const std::string& needle) {
    try {
      read_npy(golden(file));
      ADD_FAILURE() << file << " was accepted";
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
      EXPECT_NE(msg.find(file), std::string::npos) << msg;
    }
  };
  expect_file_error("bad_big_endian.npy", "'>f4' is big-endian");
  expect_file_error("bad_fortran.npy", "Fortran order");
  expect_file_error("bad_bool.npy", "unsupported .npy dtype '|b1'");
  expect_file_error("bad_complex.npy", "unsupported .npy dtype '<c8'");
}

TEST(Npy, AcceptsHeaderVariants) {
  std::string data = floats({1, 2, 3});
  for (std::string dict : {
           "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
           "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}",
           "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3,)}",
           "{'shape': ( 3 , ), 'descr':'<f4','fortran_order':False}",
           "{'descr': '<f4', 'fortran_order': False, 'shape': (3L,), }",
           "  {'descr': '=f4', 'fortran_order': False, 'shape': (3,), }  ",
       }) {
    std::string file = npy_v1(dict, data);
    Tensor t = parse_npy(file.data(), file.size(), "x.npy");
    ASSERT_EQ(t.shape(), Shape{3}) << dict;
    EXPECT_EQ(t.f32()[2], 3.0f) << dict;
  }
  // Version 2.0: a 4-byte header length.
  std::string header = "{'descr': '|i1', 'fortran_order': False, 'shape': (2, 1), }";
  header.resize(128 - 12 - 1, ' ');
  header += '\n';
  std::string v2("\x93NUMPY\x02\x00", 8);
  v2 += std::string{static_cast<char>(header.size()), 0, 0, 0} + header + "\x05\xfb";
  Tensor t = parse_npy(v2.data(), v2.size(), "x.npy");
  ASSERT_EQ(t.shape(), (Shape{2, 1}));
  EXPECT_EQ(t.data<int8_t>()[1], -5);
}

TEST(Npy, BadHeadersAreErrors) {
  std::string d = floats({1, 2, 3});
  EXPECT_NPY_ERROR(npy_v1("{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }", d),
                   "Fortran order");
  EXPECT_NPY_ERROR(npy_v1("{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", d),
                   "big-endian");
  EXPECT_NPY_ERROR(npy_v1("{'descr': '<f2', 'fortran_order': False, 'shape': (6,), }", d),
                   "unsupported .npy dtype '<f2'");
  EXPECT_NPY_ERROR(npy_v1("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", d),
                   "structured dtypes");
  EXPECT_NPY_ERROR(npy_v1("{'descr': '<f4', 'shape': (3,), }", d), "missing key");
  EXPECT_NPY_ERROR(
      npy_v1("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", d),
      "'descr' appears twice");
  EXPECT_NPY_ERROR(npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}", d),
                   "unexpected key 'x'");
  EXPECT_NPY_ERROR(npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (3)}", d),
                   "not a tuple");
  EXPECT_NPY_ERROR(npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': [3]}", d),
                   "must be a tuple");
  EXPECT_NPY_ERROR(npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (-3,)}", d),
                   "negative dimension");
  EXPECT_NPY_ERROR(npy_v1("{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}", d),
                   "True or False");
  EXPECT_NPY_ERROR(npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)", d),
                   "bad .npy header");
  EXPECT_NPY_ERROR(npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} junk", d),
                   "after '}'");
  EXPECT_NPY_ERROR(
      npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", d),
      "dimension too large");
  std::string dims;
  for (int i = 0; i < 33; ++i) dims += "1, ";
  EXPECT_NPY_ERROR(npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + ")}", d),
                   "more than 32 dimensions");
}

TEST(Npy, SizeMismatchesAreErrors) {
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
  EXPECT_NPY_ERROR(npy_v1(dict, floats({1, 2})), "truncated");
  EXPECT_NPY_ERROR(npy_v1(dict, floats({1, 2, 3, 4})), "16 bytes of data but shape [3]");
  // Absurd dimensions: a clean error, no allocation of 2^80 bytes.
  EXPECT_NPY_ERROR(
      npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776)}",
             floats({1})),
      "truncated or absurd shape");
  EXPECT_NPY_ERROR(
      npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775807,)}",
             floats({1, 2})),
      "truncated or absurd shape");
}

TEST(Npy, FramingErrors) {
  EXPECT_NPY_ERROR(std::string(), "empty file");
  EXPECT_NPY_ERROR(std::string("PK\x03\x04 a zip file"), "not a .npy file (bad magic)");
  std::string good = serialize_npy(Tensor(DType::kF32, {2, 2}));
  std::string v4 = good;
  v4[6] = 4;
  EXPECT_NPY_ERROR(v4, "unsupported .npy version 4.0");
  std::string long_header = good;
  long_header[8] = '\xff';
  long_header[9] = '\xff';
  EXPECT_NPY_ERROR(long_header, "truncated (file is");
  for (size_t len = 0; len < good.size(); ++len) {
    ASSERT_NE(error_of(good.substr(0, len)), "(no error)") << "prefix of " << len << " bytes";
  }
}

TEST(Npy, FileErrorsNameTheFile) {
  TempDir dir;
  try {
    read_npy(dir.file("missing.npy"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.npy"), std::string::npos) << e.what();
  }
  write_raw(dir.file("junk.npy"), "junk");
  try {
    read_npy(dir.file("junk.npy"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("junk.npy") + ": not a .npy file (bad magic)");
  }
  EXPECT_THROW(write_npy(dir.file("t.npy"), Tensor()), Error);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"junk.npy"});
}

}  // namespace
}  // namespace minnow::io
