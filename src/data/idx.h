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

}  // namespace minnow::data
