// The TENSORS and OPTIMIZER sections of a .mnw file: a JSON index followed by little-endian
// tensor data (raw, or compact for sparse and clustered weights), every tensor 64-byte aligned
// (docs/mnw.md).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "minnow/tensor.h"

namespace minnow::io {

struct TensorRecord {
  std::string name;
  Tensor value;
  bool trainable = false;
};

// The section's bytes. The section must be placed at a 64-byte aligned file offset for the
// tensor data to be aligned in the file. With `compact`, sparse and few-valued float tensors are
// stored compactly when that is smaller (io/mnw_compact.h). Throws minnow::Error for an undefined
// tensor, an empty name or inconsistent quantization parameters (`what` names the section).
std::string encode_tensor_section(const std::vector<TensorRecord>& records, const std::string& what,
                                  bool compact = true);

// Validates the index (schema, dtypes, shapes, sizes, bounds, overlaps, duplicate names,
// quantization parameters) before allocating anything; errors are prefixed with `where`.
std::vector<TensorRecord> decode_tensor_section(const unsigned char* data, size_t size,
                                                const std::string& where);

// Why `q` does not fit tensor `t`, or "" when it does. Shared by encoder and decoder so that
// minnow never writes a file it would refuse to read.
std::string quant_params_problem(const QuantParams& q, DType dtype, const Shape& shape);

}  // namespace minnow::io
