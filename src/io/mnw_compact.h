// Compact tensor storage in .mnw (docs/mnw.md, "Compact tensors"): float tensors that are mostly
// zero (pruned) are stored as their non-zero values plus their positions (a bitmask or
// LEB128-coded gaps), tensors with at most 256 distinct values (clustered) as packed indices
// into a codebook, both together for pruned + clustered weights; f32 values that are all exactly
// binary16 as 2-byte halves (fp16-rounded scales); any of these, or plain dense values (int8
// weights), zlib-deflated, optionally byte-shuffled first. Loading expands them to dense tensors
// bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "io/json_check.h"
#include "minnow/tensor.h"

namespace minnow::io {

struct CompactTensor {
  nlohmann::json spec;  // the index entry's "compact" object
  std::string payload;  // the bytes stored in the data area
};

// The smallest compact form of `t` when it takes less room in the data area than the raw data
// (whole 64-byte blocks from 64 bytes on, 8-byte granules below); nullopt for tensors that do
// not qualify (i64, carrying `quant`, under 16 elements) or would not shrink. Deterministic.
std::optional<CompactTensor> encode_compact(const Tensor& t);

// Expands a compact tensor. `spec` is the entry's "compact" field, `stored` its data
// (`stored_bytes` long). The caller has bounded numel(shape); every other inconsistency (bad
// index, truncated or trailing bytes, positions out of range, counts that do not add up, a
// corrupt zlib stream) is a minnow::Error through spec.fail().
Tensor decode_compact(const detail::JsonField& spec, DType dtype, const Shape& shape,
                      const unsigned char* stored, size_t stored_bytes);

}  // namespace minnow::io
