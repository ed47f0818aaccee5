// zlib (RFC 1950) for the parts of .mnw files that compress: compact tensor payloads and large
// JSON texts (graph, metadata, tensor indexes). Inflation is exact: the caller states the
// inflated length (from the file, validated), and anything else is an error, never a guess.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace minnow::io {

// How deflate searches: kDefault finds repeated strings (LZ77) and Huffman-codes the rest;
// kHuffmanOnly only Huffman-codes bytes, which is often smaller for nearly i.i.d. data such as
// dense int8 weights (no match costs bits it never repays) and much faster.
enum class ZlibStrategy { kDefault, kHuffmanOnly };

// One zlib stream of `in`. At each offset of `block_starts` (increasing) a new deflate block
// begins, with Huffman codes of its own: parts of different statistics (a payload's values and
// positions, the byte planes of shuffled floats) then each get the code that suits them.
std::string zlib_deflate(const std::string& in, int level,
                         ZlibStrategy strategy = ZlibStrategy::kDefault,
                         const std::vector<size_t>& block_starts = {});

// Inflates `len` bytes that must hold exactly one zlib stream of exactly `inflated_len` bytes.
// Returns why not (a corrupt stream, a wrong length) instead of throwing, so each caller words
// the error for its own field; nullopt on success.
std::optional<std::string> zlib_inflate(const unsigned char* in, size_t len, uint64_t inflated_len,
                                        std::string& out);

// zlib cannot expand more than ~1032:1: a larger claimed length is a lie (or a zip bomb).
inline bool plausible_inflated_length(uint64_t inflated_len, uint64_t deflated_len) {
  return inflated_len <= deflated_len * 1032 + 64;
}

}  // namespace minnow::io
