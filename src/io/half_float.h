// IEEE 754 binary16 ("half") <-> binary32 bit patterns for .mnw compact tensors stored as halves
// (docs/mnw.md, "Compact tensors"). Widening is exact for every half (±0, subnormals, inf, NaN
// payloads); the writer stores halves only when every value narrows and widens back bit for bit,
// so no rounding rule is ever needed.
#pragma once

#include <cstdint>
#include <optional>

namespace minnow::io {

// The binary32 bit pattern of the value of half `h`.
inline uint32_t half_to_f32_bits(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return sign | 0x7f800000u | (mant << 13);  // inf, NaN (payload kept)
  if (exp != 0) return sign | ((exp + 112) << 23) | (mant << 13);
  if (mant == 0) return sign;  // ±0
  // Subnormal half: mant x 2^-24. Shift the leading 1 up to the implicit bit position.
  uint32_t e = 113;  // binary32 exponent of 2^-14, the smallest normal half
  while (!(mant & 0x400u)) {
    mant <<= 1;
    --e;
  }
  return sign | (e << 23) | ((mant & 0x3ffu) << 13);
}

// The half whose value is exactly binary32 `f` (bit pattern), or nullopt when there is none
// (too large or small, too many mantissa bits, f32 subnormals, NaN payloads in the low bits).
inline std::optional<uint16_t> f32_bits_to_half_exact(uint32_t f) {
  const uint32_t sign = (f >> 16) & 0x8000u;
  const int exp = static_cast<int>((f >> 23) & 0xffu);
  const uint32_t mant = f & 0x7fffffu;
  uint32_t h = 0;
  if (exp == 0xff) {
    h = sign | 0x7c00u | (mant >> 13);
  } else if (exp == 0) {
    h = sign;  // only ±0 can match; an f32 subnormal fails the check below
  } else if (exp - 112 >= 31) {
    return std::nullopt;
  } else if (exp - 112 >= 1) {
    h = sign | (static_cast<uint32_t>(exp - 112) << 10) | (mant >> 13);
  } else if (exp - 112 >= -9) {
    h = sign | ((0x800000u | mant) >> (126 - exp));  // a subnormal half
  } else {
    return std::nullopt;
  }
  if (half_to_f32_bits(static_cast<uint16_t>(h)) != f) return std::nullopt;
  return static_cast<uint16_t>(h);
}

}  // namespace minnow::io
