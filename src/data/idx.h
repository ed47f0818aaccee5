// IDX files: the format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/).
//
// Layout: two zero bytes, a type code, the number of dimensions, one big-endian u32 per
// dimension, then the elements in big-endian row-major order. The file may be gzip-compressed
// (detected by its magic bytes, not its name).
#pragma once

#include <string>

#include "minnow/tensor.h"

namespace minnow::data {

// Largest element count read_idx accepts: bounds memory for untrusted headers.
inline constexpr int64_t kMaxIdxElements = int64_t{1} << 31;

// Reads an IDX file into a tensor shaped as the header says. Type codes: 0x08 u8, 0x09 i8,
// 0x0B i16 (widened to i32: minnow has no i16 dtype), 0x0C i32, 0x0D f32, 0x0E f64.
// Throws minnow::Error naming the file for: a missing file, bad magic, an unsupported type
// code, zero dimensions, more than kMaxIdxElements elements, truncated data (fewer bytes than
// the header promises), trailing bytes after the data, and corrupt gzip data.
Tensor read_idx(const std::string& path);

// The IDX encoding of `t` (uncompressed): u8 -> 0x08, i8 -> 0x09, i32 -> 0x0C, f32 -> 0x0D,
// f64 -> 0x0E. Throws minnow::Error for another dtype, rank 0 or > 255, or a dim >= 2^32.
std::string encode_idx(const Tensor& t);

// encode_idx(t) written with io::write_file_atomic (never a half file at `path`).
void write_idx(const std::string& path, const Tensor& t);

}  // namespace minnow::data
