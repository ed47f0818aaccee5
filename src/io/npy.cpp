#include "io/npy.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>

#include "io/atomic_file.h"
#include "io/byte_order.h"
#include "minnow/error.h"

namespace minnow::io {
namespace {

constexpr std::string_view kMagic("\x93NUMPY", 6);
constexpr size_t kMaxHeaderBytes = size_t{1} << 20;  // numpy's own headers are < 200 bytes
constexpr int kMaxRank = 32;                         // numpy's NPY_MAXDIMS

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  Shape shape;
};

// Parses the header: a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// Only the literal forms numpy writes (and hand-written variants of them) are accepted; this is
// not a Python evaluator.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& label) : s_(text), label_(label) {}

  NpyHeader parse() {
    NpyHeader h;
    bool seen_descr = false, seen_fortran = false, seen_shape = false;
    skip_space();
    expect('{');
    skip_space();
    while (peek() != '}') {
      std::string key = parse_string();
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (seen_descr) fail("key 'descr' appears twice");
        seen_descr = true;
        if (peek() != '\'' && peek() != '"')
          fail("'descr' must be a string (structured dtypes are not supported)");
        h.descr = parse_string();
      } else if (key == "fortran_order") {
        if (seen_fortran) fail("key 'fortran_order' appears twice");
        seen_fortran = true;
        h.fortran_order = parse_bool();
      } else if (key == "shape") {
        if (seen_shape) fail("key 'shape' appears twice");
        seen_shape = true;
        h.shape = parse_shape();
      } else {
        fail("unexpected key '" + key + "' (expected descr, fortran_order, shape)");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        skip_space();
      } else if (peek() != '}') {
        fail("expected ',' or '}'");
      }
    }
    ++pos_;
    skip_space();
    if (pos_ != s_.size()) fail("unexpected text after '}'");
    if (!seen_descr || !seen_fortran || !seen_shape) {
      fail("missing key (needs 'descr', 'fortran_order' and 'shape')");
    }
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(label_ + ": bad .npy header: " + what + " at offset " + std::to_string(pos_));
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string parse_string() {
    char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    size_t end = s_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string out(s_.substr(pos_ + 1, end - pos_ - 1));
    if (out.find('\\') != std::string::npos) fail("escape sequences are not supported");
    pos_ = end + 1;
    return out;
  }
  bool parse_bool() {
    if (s_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (s_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    fail("'fortran_order' must be True or False");
  }
  int64_t parse_dim() {
    if (peek() == '-') fail("negative dimension in 'shape'");
    if (peek() < '0' || peek() > '9') fail("expected a dimension in 'shape'");
    int64_t v = 0;
    while (peek() >= '0' && peek() <= '9') {
      int digit = peek() - '0';
      if (v > (std::numeric_limits<int64_t>::max() - digit) / 10) fail("dimension too large");
      v = v * 10 + digit;
      ++pos_;
    }
    if (peek() == 'L') ++pos_;  // Python 2 long literal, as old numpy wrote
    return v;
  }
  Shape parse_shape() {
    if (peek() != '(') fail("'shape' must be a tuple");
    ++pos_;
    skip_space();
    Shape shape;
    bool comma = false;
    while (peek() != ')') {
      if (static_cast<int>(shape.size()) >= kMaxRank) fail("more than 32 dimensions");
      shape.push_back(parse_dim());
      skip_space();
      comma = false;
      if (peek() == ',') {
        comma = true;
        ++pos_;
        skip_space();
      } else if (peek() != ')') {
        fail("expected ',' or ')' in 'shape'");
      }
    }
    ++pos_;
    // "(3)" is the integer 3 in Python, not a tuple.
    if (shape.size() == 1 && !comma)
      fail("'shape' (n) is not a tuple; a 1-d shape is written (n,)");
    return shape;
  }

  std::string_view s_;
  size_t pos_ = 0;
  const std::string& label_;
};

DType dtype_from_descr(const std::string& descr, const std::string& label) {
  auto unsupported = [&]() -> Error {
    return Error(label + ": unsupported .npy dtype '" + descr +
                 "' (supported: <f4 <f8 <i8 <i4 |i1 |u1)");
  };
  if (descr.size() != 3) throw unsupported();
  char order = descr[0];
  std::string_view code(descr.data() + 1, 2);
  DType t;
  if (code == "f4") {
    t = DType::kF32;
  } else if (code == "f8") {
    t = DType::kF64;
  } else if (code == "i8") {
    t = DType::kI64;
  } else if (code == "i4") {
    t = DType::kI32;
  } else if (code == "i1") {
    t = DType::kI8;
  } else if (code == "u1") {
    t = DType::kU8;
  } else {
    throw unsupported();
  }
  if (order != '<' && order != '>' && order != '|' && order != '=') throw unsupported();
  bool little = order == '<' || (order == '=' && kHostIsLittleEndian);
  if (dtype_size(t) > 1 && !little) {
    throw Error(label + ": .npy dtype '" + descr +
                "' is big-endian; only little-endian is supported");
  }
  return t;
}

const char* descr_of(DType t) {
  switch (t) {
    case DType::kF32:
      return "<f4";
    case DType::kF64:
      return "<f8";
    case DType::kI64:
      return "<i8";
    case DType::kI32:
      return "<i4";
    case DType::kI8:
      return "|i1";
    case DType::kU8:
      return "|u1";
  }
  throw Error("write_npy: invalid dtype");
}

}  // namespace

Tensor parse_npy(const void* data, size_t size, const std::string& label) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  if (size == 0) throw Error(label + ": empty file (not a .npy file)");
  if (size < kMagic.size() || std::memcmp(bytes, kMagic.data(), kMagic.size()) != 0) {
    throw Error(label + ": not a .npy file (bad magic)");
  }
  if (size < 8) throw Error(label + ": truncated .npy header");
  int major = bytes[6], minor = bytes[7];
  size_t len_bytes = 0;
  if (major == 1 && minor == 0) {
    len_bytes = 2;
  } else if ((major == 2 || major == 3) && minor == 0) {
    len_bytes = 4;
  } else {
    throw Error(label + ": unsupported .npy version " + std::to_string(major) + "." +
                std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  }
  if (size < 8 + len_bytes) throw Error(label + ": truncated .npy header");
  size_t header_len = len_bytes == 2 ? load_le<uint16_t>(bytes + 8) : load_le<uint32_t>(bytes + 8);
  size_t header_start = 8 + len_bytes;
  if (header_len > kMaxHeaderBytes) {
    throw Error(label + ": .npy header length " + std::to_string(header_len) + " is absurd");
  }
  if (header_len > size - header_start) {
    throw Error(label + ": truncated (file is " + std::to_string(size) +
                " bytes, .npy header ends at " + std::to_string(header_start + header_len) + ")");
  }
  std::string_view text(reinterpret_cast<const char*>(bytes + header_start), header_len);
  NpyHeader h = HeaderParser(text, label).parse();
  if (h.fortran_order) {
    throw Error(label + ": .npy array is in Fortran order; only C order is supported");
  }
  DType dtype = dtype_from_descr(h.descr, label);

  size_t data_start = header_start + header_len;
  size_t available = size - data_start;
  // Overflow-safe: the product may only grow while it stays within what the file can hold,
  // except that a zero dimension makes every other dimension irrelevant.
  uint64_t numel = 1;
  bool has_zero = false;
  for (int64_t d : h.shape) has_zero |= d == 0;
  if (!has_zero) {
    for (int64_t d : h.shape) {
      if (numel > available / static_cast<uint64_t>(d)) {
        throw Error(label + ": .npy shape " + shape_str(h.shape) + " needs more data than the " +
                    std::to_string(available) + " bytes in the file (truncated or absurd shape)");
      }
      numel *= static_cast<uint64_t>(d);
    }
  } else {
    numel = 0;
  }
  uint64_t needed = numel * dtype_size(dtype);
  if (needed > available) {
    throw Error(label + ": truncated (.npy shape " + shape_str(h.shape) + " of " + h.descr +
                " needs " + std::to_string(needed) + " bytes of data, the file has " +
                std::to_string(available) + ")");
  }
  if (needed < available) {
    throw Error(label + ": .npy file has " + std::to_string(available) +
                " bytes of data but shape " + shape_str(h.shape) + " of " + h.descr + " needs " +
                std::to_string(needed));
  }
  Tensor t(dtype, h.shape);
  copy_le_elements(t.raw(), bytes + data_start, static_cast<size_t>(numel), dtype_size(dtype));
  return t;
}

std::string serialize_npy(const Tensor& t) {
  if (!t.defined()) throw Error("write_npy: the tensor has no data");
  std::string dict =
      std::string("{'descr': '") + descr_of(t.dtype()) + "', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < t.rank(); ++i) {
    if (i) dict += ", ";
    dict += std::to_string(t.dim(i));
  }
  if (t.rank() == 1) dict += ",";
  dict += "), }";
  // numpy's padding rule: spaces then '\n' so that the data starts 64-byte aligned.
  size_t text_len = dict.size() + 1;
  bool v1 = 10 + text_len + 64 <= 0xFFFF;
  size_t prefix = v1 ? 10 : 12;
  size_t pad = 64 - (prefix + text_len) % 64;
  size_t header_len = text_len + pad;
  std::string out(kMagic);
  out += static_cast<char>(v1 ? 1 : 2);
  out += '\0';
  if (v1) {
    append_le<uint16_t>(out, static_cast<uint16_t>(header_len));
  } else {
    append_le<uint32_t>(out, static_cast<uint32_t>(header_len));
  }
  out += dict;
  out.append(pad, ' ');
  out += '\n';
  size_t data_start = out.size();
  out.resize(data_start + t.nbytes());
  copy_le_elements(out.data() + data_start, t.raw(), static_cast<size_t>(t.numel()),
                   dtype_size(t.dtype()));
  return out;
}

Tensor read_npy(const std::string& path) {
  std::string bytes = read_file(path);
  return parse_npy(bytes.data(), bytes.size(), path);
}

void write_npy(const std::string& path, const Tensor& t) {
  write_file_atomic(path, serialize_npy(t));
}

}  // namespace minnow::io
