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
// A large index is stored zlib-deflated; `index_json_length` then receives its inflated length
// (the section table's JSON length field), else 0.
std::string encode_tensor_section(const std::vector<TensorRecord>& records, const std::string& what,
                                  uint64_t* index_json_length, bool compact = true);

// Validates the index (schema, dtypes, shapes, sizes, bounds, overlaps, duplicate names,
// quantization parameters) before allocating anything; errors are prefixed with `where`.
// `index_json_length` is the section table's JSON length field: 0 for a plain index, else the
// inflated length of a deflated one.
std::vector<TensorRecord> decode_tensor_section(const unsigned char* data, size_t size,
                                                const std::string& where,
                                                uint64_t index_json_length = 0);

// Where stored tensor data may start in the data area: tensors of 64 bytes or more at 64-byte
// boundaries (memory-mappable, aligned for SIMD), smaller ones (scales, zero points, biases of
// thin layers: a quantized graph has hundreds) packed at 8-byte boundaries.
uint64_t stored_alignment(uint64_t stored_bytes);

// Bytes `t` takes in the data area of a .mnw file as minnow writes it (compact when smaller).
uint64_t stored_tensor_bytes(const Tensor& t);

// JSON texts of at least this many bytes are stored deflated (docs/mnw.md): tiny files stay
// readable, graphs shrink 3-10x (a quantized graph's JSON rivals its int8 weights, and a
// kilobyte is a percent of a small int8 model).
inline constexpr size_t kDeflateJsonBytes = 2048;
// The stored bytes of a JSON text and its JSON length field (0: stored as is).
std::pair<std::string, uint64_t> store_json_text(std::string text);
// The JSON text of stored bytes, inflated when `json_length` is not 0; errors name `where`.
std::string load_json_text(const unsigned char* data, size_t size, uint64_t json_length,
                           const std::string& where);

// Why `q` does not fit tensor `t`, or "" when it does. Shared by encoder and decoder so that
// minnow never writes a file it would refuse to read.
std::string quant_params_problem(const QuantParams& q, DType dtype, const Shape& shape);

}  // namespace minnow::io
