// NumPy .npy tensors (format versions 1.0, 2.0 and 3.0; little-endian, C order).
//
// Supported dtypes: '<f4' f32, '<f8' f64, '<i8' i64, '<i4' i32, '|i1' i8, '|u1' u8. A .npy file
// is untrusted input: every header field is checked and errors name the file.
#pragma once

#include <cstddef>
#include <string>

#include "minnow/tensor.h"

namespace minnow::io {

// Throws minnow::Error naming the file for a missing file, bad magic or header, fortran_order
// True, big-endian or unsupported dtypes, absurd shapes, and data shorter or longer than the
// shape says.
Tensor read_npy(const std::string& path);
// Writes atomically (see write_file_atomic). Quantization parameters are not stored: .npy has
// no place for them.
void write_npy(const std::string& path, const Tensor& t);

// The same on bytes in memory; `label` names the source in error messages.
Tensor parse_npy(const void* data, size_t size, const std::string& label);
std::string serialize_npy(const Tensor& t);

}  // namespace minnow::io
