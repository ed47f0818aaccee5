#include "data/idx.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <vector>

#include "data/byte_source.h"
#include "io/atomic_file.h"
#include "minnow/error.h"

namespace minnow::data {
namespace {

struct IdxType {
  DType dtype;
  size_t file_size;  // bytes per element in the file
};

bool idx_type(uint8_t code, IdxType* out) {
  switch (code) {
    case 0x08:
      *out = {DType::kU8, 1};
      return true;
    case 0x09:
      *out = {DType::kI8, 1};
      return true;
    case 0x0B:
      *out = {DType::kI32, 2};
      return true;
    case 0x0C:
      *out = {DType::kI32, 4};
      return true;
    case 0x0D:
      *out = {DType::kF32, 4};
      return true;
    case 0x0E:
      *out = {DType::kF64, 8};
      return true;
    default:
      return false;
  }
}

std::string hex_byte(uint8_t b) {
  const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

// IDX stores elements big-endian; convert in place on little-endian hosts.
void big_endian_to_host(uint8_t* p, size_t count, size_t width) {
  if constexpr (std::endian::native == std::endian::big) return;
  if (width == 1) return;
  for (size_t i = 0; i < count; ++i, p += width) std::reverse(p, p + width);
}

}  // namespace

Tensor read_idx(const std::string& path) {
  ByteSource src(path);
  auto fail = [&](const std::string& what) -> Error {
    return Error("IDX file '" + path + "'" + (src.gzip() ? " (gzip)" : "") + ": " + what);
  };

  uint8_t magic[4];
  size_t got = src.read(magic, 4);
  if (got < 4) throw fail("truncated header: " + std::to_string(got) + " of 4 magic bytes");
  if (magic[0] != 0 || magic[1] != 0) {
    throw fail("bad magic " + hex_byte(magic[0]) + " " + hex_byte(magic[1]) +
               ", expected 0x00 0x00 (not an IDX file)");
  }
  IdxType type;
  if (!idx_type(magic[2], &type)) {
    throw fail("unsupported type code " + hex_byte(magic[2]) +
               " (expected 0x08 u8, 0x09 i8, 0x0b i16, 0x0c i32, 0x0d f32 or 0x0e f64)");
  }
  int rank = magic[3];
  if (rank == 0) throw fail("header declares 0 dimensions, expected at least 1");

  std::vector<uint8_t> dim_bytes(4 * static_cast<size_t>(rank));
  got = src.read(dim_bytes.data(), dim_bytes.size());
  if (got < dim_bytes.size()) {
    throw fail("truncated header: " + std::to_string(got) + " of " +
               std::to_string(dim_bytes.size()) + " dimension bytes");
  }
  Shape shape(rank);
  int64_t numel = 1;
  for (int i = 0; i < rank; ++i) {
    const uint8_t* b = &dim_bytes[4 * i];
    shape[i] = (int64_t{b[0]} << 24) | (int64_t{b[1]} << 16) | (int64_t{b[2]} << 8) | b[3];
  }
  for (int64_t d : shape) {
    // Each dim is < 2^32, so checking before every multiply keeps numel below 2^63.
    if (d != 0 && numel > kMaxIdxElements / d) {
      throw fail("absurd dimensions " + shape_str(shape) + ": more than 2^31 elements");
    }
    numel *= d;
  }

  const size_t data_bytes = static_cast<size_t>(numel) * type.file_size;
  const std::string promised =
      "the header " + shape_str(shape) + " promises " + std::to_string(data_bytes) + " data bytes";
  int64_t left = src.remaining_hint();
  if (left >= 0 && static_cast<uint64_t>(left) < data_bytes) {
    throw fail("truncated data: " + promised + ", the file holds only " + std::to_string(left));
  }
  if (left >= 0 && static_cast<uint64_t>(left) > data_bytes) {
    throw fail("trailing garbage: " + promised + ", the file holds " + std::to_string(left));
  }

  // Gzip sizes are unknown until decompressed. Deflate expands at most ~1032:1, so a claim beyond
  // that is truncated for sure; a moderate claim is read straight into the tensor; a huge one
  // goes through a buffer that grows with the data actually present, so that a small file
  // claiming 2^31 elements fails without allocating gigabytes first. Types that need widening
  // (i16) go through the same buffer.
  if (src.gzip() && data_bytes / 1100 > static_cast<uint64_t>(src.file_size()) + 4096) {
    throw fail("truncated data: " + promised + ", more than a gzip file of " +
               std::to_string(src.file_size()) + " bytes can hold");
  }
  constexpr size_t kDirectGzipBytes = size_t{256} << 20;
  Tensor t;
  const bool direct =
      dtype_size(type.dtype) == type.file_size && (left >= 0 || data_bytes <= kDirectGzipBytes);
  if (direct) {
    t = Tensor(type.dtype, shape);
    got = src.read(t.raw(), data_bytes);
    if (got < data_bytes) {
      throw fail("truncated data: " + promised + ", read only " + std::to_string(got));
    }
    big_endian_to_host(static_cast<uint8_t*>(t.raw()), numel, type.file_size);
  } else {
    std::vector<uint8_t> buf;
    size_t filled = 0;
    while (filled < data_bytes) {
      size_t grow = std::min(data_bytes - filled, std::max<size_t>(buf.size(), size_t{1} << 20));
      buf.resize(filled + grow);
      size_t n = src.read(buf.data() + filled, grow);
      filled += n;
      if (n < grow) {
        throw fail("truncated data: " + promised + ", read only " + std::to_string(filled));
      }
    }
    big_endian_to_host(buf.data(), numel, type.file_size);
    t = Tensor(type.dtype, shape);
    if (type.file_size == 2) {
      int32_t* out = t.data<int32_t>();
      for (int64_t i = 0; i < numel; ++i) {
        int16_t v;
        std::memcpy(&v, &buf[2 * i], 2);
        out[i] = v;
      }
    } else if (data_bytes) {
      std::memcpy(t.raw(), buf.data(), data_bytes);
    }
  }

  uint8_t extra;
  if (src.read(&extra, 1) != 0) throw fail("trailing garbage after " + promised);
  return t;
}

std::string encode_idx(const Tensor& t) {
  uint8_t code = 0;
  switch (t.dtype()) {
    case DType::kU8:
      code = 0x08;
      break;
    case DType::kI8:
      code = 0x09;
      break;
    case DType::kI32:
      code = 0x0C;
      break;
    case DType::kF32:
      code = 0x0D;
      break;
    case DType::kF64:
      code = 0x0E;
      break;
    default:
      throw Error("encode_idx: IDX has no type code for " + std::string(dtype_name(t.dtype())) +
                  " (expected u8, i8, i32, f32 or f64)");
  }
  if (t.rank() == 0 || t.rank() > 255) {
    throw Error("encode_idx: rank " + std::to_string(t.rank()) + " is outside [1, 255]");
  }
  std::string out = {'\0', '\0', static_cast<char>(code), static_cast<char>(t.rank())};
  for (int64_t d : t.shape()) {
    if (d < 0 || d > int64_t{0xFFFFFFFF}) {
      throw Error("encode_idx: dimension " + std::to_string(d) + " does not fit in a u32");
    }
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((d >> s) & 0xFF));
  }
  const size_t header = out.size();
  out.resize(header + t.nbytes());
  auto* p = reinterpret_cast<uint8_t*>(out.data() + header);
  std::memcpy(p, t.raw(), t.nbytes());
  // The byte swap is its own inverse.
  big_endian_to_host(p, static_cast<size_t>(t.numel()), dtype_size(t.dtype()));
  return out;
}

void write_idx(const std::string& path, const Tensor& t) {
  io::write_file_atomic(path, encode_idx(t));
}

}  // namespace minnow::data
